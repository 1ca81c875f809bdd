"""Domain errors services raise: ServiceError (a broken rule, shown on the page) and NotFound (a 404 page).

Views turn a ServiceError into a message or a re-rendered form; NotFound is left to the app-level handler in
app/errors.py, so no view catches it just to answer 404.
"""


class ServiceError(Exception):
    """A rule was broken by user input; the message is safe to show to the user."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(Exception):
    """The row (campaign, contact, export …) the request names does not exist, or is not the user's to see."""

    def __init__(self, message: str = "That does not exist.") -> None:
        super().__init__(message)
        self.message = message
