"""Problem documents (RFC 9457): every error the API answers is one of these, as application/problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.services.errors import ServiceError

TYPE_BASE = "/api/v1/problems/"  # a URI reference per kind of problem, relative to the server
TITLES = {
    400: "Bad request", 401: "Not authenticated", 403: "Not allowed", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Request too large", 415: "Unsupported media type",
    422: "Validation failed", 429: "Too many requests", 500: "Internal error",
}
KINDS = {400: "bad-request", 401: "unauthenticated", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
         409: "conflict", 413: "too-large", 415: "unsupported-media-type", 422: "validation", 429: "rate-limited",
         500: "internal"}
PYDANTIC_MESSAGES = {  # pydantic's wording, made plainer where it is not already
    "extra_forbidden": "Unknown field.",
    "missing": "This field is required.",
    "json_invalid": "The body is not valid JSON.",
}


@dataclass
class Problem(Exception):
    """An error answer: status, a one-line title, a sentence of detail and, for bad input, the fields at fault."""

    status: int
    detail: str
    errors: list[dict[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    kind: str | None = None  # the last part of `type`; the status's own kind when None

    def document(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": TYPE_BASE + (self.kind or KINDS.get(self.status, "error")),
                                "title": TITLES.get(self.status, "Error"), "status": self.status,
                                "detail": self.detail}
        if self.errors:
            body["errors"] = self.errors
        return body


def invalid(errors: list[dict[str, str]], detail: str = "Some fields are not right; see `errors`.") -> Problem:
    return Problem(422, detail, errors)


def field_error(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message}


def from_validation(error: ValidationError, prefix: str = "") -> Problem:
    """pydantic's errors as field errors, e.g. `contacts[3].phone`."""
    items = error.errors(include_url=False)
    return invalid([field_error(_path(prefix, item["loc"]), _message(item)) for item in items])


def _message(item: Mapping[str, Any]) -> str:
    if item["type"] == "value_error":  # our own validators' sentences, without pydantic's "Value error, "
        return str(item["ctx"]["error"]).rstrip(".") + "."
    return PYDANTIC_MESSAGES.get(item["type"], item["msg"].rstrip(".") + ".")


def from_service(error: ServiceError, field_names: Mapping[str, str] | None = None, status: int = 422) -> Problem:
    """A service's broken rule; `field_names` maps the service's field name to the API's."""
    names = field_names or {}
    errors = [field_error(names.get(error.field, error.field), error.message)] if error.field else []
    return Problem(status, error.message, errors)


def _path(prefix: str, location: tuple) -> str:
    text = prefix
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"
