"""Domain errors: views turn these into a message on the page, never a 500."""


class ServiceError(Exception):
    """A rule was broken by user input; the message is safe to show to the user."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    pass
