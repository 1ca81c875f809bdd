"""Meta's rules for POST /messages, as the simulator's own copy: error codes and texts, limits, and the checks of a
message's content (text, media, interactive). Template parameters are checked in `sim_meta.py`.

Titles and descriptions come from Meta's Cloud API documentation (the error codes page; the messages, media and
interactive messages guides). The simulator must not borrow them from the product's app/whatsapp/errors.py: a
simulator reading Meta the way the product does would agree with the product's mistakes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
SERVICE_WINDOW_S = 24 * 60 * 60  # free-form messages only within 24 hours of the customer's last message
TEXT_BODY_MAX = 4096
CAPTION_MAX = 1024
INTERACTIVE_BODY_MAX = 1024
INTERACTIVE_HEADER_MAX = 60
INTERACTIVE_FOOTER_MAX = 60
REPLY_BUTTONS_MAX = 3
REPLY_BUTTON_TITLE_MAX = 20
REPLY_BUTTON_ID_MAX = 256
LIST_BUTTON_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10  # in all sections together
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
LIST_ROW_ID_MAX = 200
LIST_SECTION_TITLE_MAX = 24
CAPTIONED_MEDIA = frozenset({"image", "video", "document"})
INTERACTIVE_TYPES = frozenset({"button", "list", "cta_url", "flow", "product", "product_list", "catalog_message",
                               "location_request_message", "address_message"})
# More than 4 consecutive spaces, a new line or a tab: refused in template text parameters.
BAD_PARAMETER_TEXT = re.compile(r"[\n\t]| {5}")
BAD_PARAMETER_DETAILS = "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


@dataclass(frozen=True)
class MetaCode:
    title: str  # Meta's title: "(#code) title" is the message of a Graph error
    details: str  # Meta's description, the error_data.details unless a check says more
    http_status: int = 400
    asynchronous: bool = False  # accepted, then reported by a failed status webhook
    retry_after: int | None = None  # seconds, for the Retry-After header (not documented by Meta)


CODES: dict[int, MetaCode] = {
    0: MetaCode("AuthException", "We were unable to authenticate the app user.", 401),
    1: MetaCode("API Unknown", "Invalid request or possible server error."),
    2: MetaCode("API Service", "Temporary due to downtime or due to being overloaded.", 503),
    3: MetaCode("API Method", "Capability or permissions issue.", 403),
    4: MetaCode("API Too Many Calls", "The app has reached its API call rate limit.", 429, retry_after=60),
    10: MetaCode("Permission Denied", "Permission is either not granted or has been removed.", 403),
    100: MetaCode("Invalid parameter", "The request included one or more unsupported or misspelled parameters."),
    190: MetaCode("Access token has expired", "Your access token has expired.", 401),
    368: MetaCode("Temporarily blocked for policies violations", "The WhatsApp Business Account associated with the "
                  "app has been restricted or disabled for violating a platform policy.", 403),
    80007: MetaCode("Rate limit issues", "The WhatsApp Business Account has reached its rate limit.", 429,
                    retry_after=60),
    130429: MetaCode("Rate limit hit", "Message failed to send because there were too many messages sent from this "
                     "phone number in a short period of time", 429, retry_after=1),
    130472: MetaCode("User's number is part of an experiment", "Message was not sent as part of an experiment.",
                     asynchronous=True),
    130497: MetaCode("Business account is restricted from messaging users in this country", "The WhatsApp Business "
                     "Account is restricted from messaging to users in certain countries.", 403),
    131000: MetaCode("Something went wrong", "Message failed to send due to an unknown error.", 500),
    131005: MetaCode("Access denied", "Permission is either not granted or has been removed.", 403),
    131008: MetaCode("Required parameter is missing", "The request is missing a required parameter."),
    131009: MetaCode("Parameter value is not valid", "One or more parameter values are invalid."),
    131016: MetaCode("Service unavailable", "A service is temporarily unavailable.", 503),
    131021: MetaCode("Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: MetaCode("Message Undeliverable", "Unable to deliver message.", asynchronous=True),
    131030: MetaCode("Recipient phone number not in allowed list", "Sending phone number not in allowed list."),
    131031: MetaCode("Account has been locked", "The WhatsApp Business Account is restricted or disabled for "
                     "violating a platform policy, or the data in the request could not be verified."),
    131042: MetaCode("Business eligibility payment issue", "There was an error related to your payment method."),
    131045: MetaCode("Incorrect certificate", "Message failed to send due to a phone number registration error."),
    131047: MetaCode("Re-engagement message", "Message failed to send because more than 24 hours have passed since "
                     "the customer last replied to this number.", asynchronous=True),
    131048: MetaCode("Spam rate limit hit", "Message failed to send because there are restrictions on how many "
                     "messages can be sent from this phone number. This may be because too many previous messages "
                     "were blocked or flagged as spam.", asynchronous=True),
    131049: MetaCode("Meta chose not to deliver.", "This message was not delivered to maintain healthy ecosystem "
                     "engagement.", asynchronous=True),
    131050: MetaCode("Unable to deliver the message. This recipient has chosen to stop receiving marketing messages "
                     "on WhatsApp from your business.", "Unable to deliver the message. This recipient has chosen to "
                     "stop receiving marketing messages on WhatsApp from your business.", asynchronous=True),
    131051: MetaCode("Unsupported message type", "Unsupported message type.", asynchronous=True),
    131052: MetaCode("Media download error", "Unable to download the media sent by the user.", asynchronous=True),
    131053: MetaCode("Media upload error", "Unable to upload the media used in the message.", asynchronous=True),
    131056: MetaCode("(Business Account, Consumer Account) pair rate limit hit", "Too many messages sent from the "
                     "sender phone number to the same recipient phone number in a short period of time."),
    131057: MetaCode("Account in maintenance mode", "Business Account is in maintenance mode.", 503),
    132000: MetaCode("Number of parameters does not match the expected number of params", "The number of variable "
                     "parameter values included in the request did not match the number of variable parameters "
                     "defined in the template."),
    132001: MetaCode("Template name does not exist in the translation", "The template does not exist in the "
                     "specified language or the template has not been approved.", 404),
    132005: MetaCode("Template Hydrated Text Too Long", "Translated text is too long."),
    132007: MetaCode("Template Format Character Policy Violated", "Template content violates a WhatsApp policy."),
    132012: MetaCode("Template Parameter Format Mismatch", "Variable parameter values formatted incorrectly."),
    132015: MetaCode("Template is Paused", "Template is paused due to low quality so it cannot be sent in a "
                     "template message."),
    132016: MetaCode("Template is Disabled", "Template has been paused too many times due to low quality and is now "
                     "permanently disabled."),
    132018: MetaCode("There was an issue with the parameters in your template.", "One or more parameter values in "
                     "the template are invalid."),
    133004: MetaCode("Server temporarily unavailable", "Server is temporarily unavailable.", 503),
    133010: MetaCode("Phone number Not Registered", "The phone number is not registered on the WhatsApp Business "
                     "Platform."),
}
ASYNC_CODES = frozenset(code for code, meta in CODES.items() if meta.asynchronous)


def meta_code(code: int) -> MetaCode:
    """Meta's description of a code; codes Meta documents as a range (200-299) or not at all get a generic one."""
    known = CODES.get(code)
    if known is not None:
        return known
    if 200 <= code < 300:
        return MetaCode("API Permission", "Permission is either not granted or has been removed.", 403)
    return MetaCode(f"Error {code}", f"Simulated error {code}.")


@dataclass(frozen=True)
class MetaError:
    """A Cloud API error: `(#code) title` with `error_data.details` saying what exactly was wrong."""

    code: int
    details: str = ""
    subcode: int | None = None

    @property
    def http_status(self) -> int:
        return meta_code(self.code).http_status

    @property
    def retry_after(self) -> int | None:
        return meta_code(self.code).retry_after

    def body(self) -> dict[str, Any]:
        meta = meta_code(self.code)
        details = self.details or meta.details
        error: dict[str, Any] = {"message": f"(#{self.code}) {meta.title}", "type": "OAuthException",
                                 "code": self.code, "error_data": {"messaging_product": "whatsapp", "details": details},
                                 "fbtrace_id": _trace_id()}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


@dataclass(frozen=True)
class GraphError:
    """An error the Graph API answers before the Cloud API looks at the message: a bad token, an unknown object, a
    missing messaging_product. Graph's shape has the whole story in `message` and no `error_data`."""

    code: int
    message: str
    type: str = "OAuthException"
    subcode: int | None = None

    @property
    def http_status(self) -> int:
        return meta_code(self.code).http_status

    @property
    def retry_after(self) -> int | None:
        return None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = _trace_id()
        return {"error": error}


INVALID_TOKEN = GraphError(190, "Invalid OAuth access token - Cannot parse access token")


def unsupported(method: str, object_id: str) -> GraphError:
    """Graph's answer for an object id it does not know (or a method the object does not take)."""
    return GraphError(100, f"Unsupported {method.lower()} request. Object with ID '{object_id}' does not exist, "
                           "cannot be loaded due to missing permissions, or does not support this operation. Please "
                           "read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                      type="GraphMethodException", subcode=33)


def status_error(code: int) -> dict[str, Any]:
    """The errors[] item of a failed status webhook."""
    meta = meta_code(code)
    return {"code": code, "title": meta.title, "message": meta.title, "error_data": {"details": meta.details},
            "href": ERROR_DOCS}


def _trace_id() -> str:
    return "A" + secrets.token_urlsafe(16)


# --- message content -------------------------------------------------------------------------------------------

MediaExists = Callable[[str], bool]


def text_problem(text: Any) -> MetaError | None:
    body = text.get("body") if isinstance(text, dict) else None
    if not isinstance(body, str) or not body.strip():
        return MetaError(100, "The parameter text['body'] is required.")
    if len(body) > TEXT_BODY_MAX:
        return MetaError(100, f"Param text['body'] must be at most {TEXT_BODY_MAX} characters long.")
    return None


def media_problem(kind: str, media: Any, media_exists: MediaExists, caption_allowed: bool) -> MetaError | None:
    """A media object (a media message, or a template's media header): exactly one of a link or a known id."""
    if not isinstance(media, dict):
        return MetaError(131008, f"The parameter {kind} is required.")
    link, media_id = media.get("link"), media.get("id")
    if link is not None and media_id is not None:
        return MetaError(131009, f"{kind}: give either link or id, not both.")
    if media_id is not None:
        if not isinstance(media_id, str) or not media_id.strip():
            return MetaError(131008, f"Parameter of type {kind} is missing id value")
        if not media_exists(media_id):
            return MetaError(131009, f"{kind}: media id {media_id} is not valid or was not uploaded by this phone "
                                     "number.")
    elif not isinstance(link, str) or not link.strip():
        return MetaError(131008, f"Parameter of type {kind} is missing link or id")
    elif not link.startswith(("https://", "http://")):
        return MetaError(131009, f"{kind}: link must be an http or https URL.")
    return _caption_problem(kind, media.get("caption"), caption_allowed)


def _caption_problem(kind: str, caption: Any, allowed: bool) -> MetaError | None:
    if caption is None:
        return None
    if not allowed:
        return MetaError(131009, f"{kind}: caption is not allowed here.")
    if not isinstance(caption, str) or len(caption) > CAPTION_MAX:
        return MetaError(131009, f"{kind}: caption must be text of at most {CAPTION_MAX} characters.")
    return None


def interactive_problem(interactive: Any) -> MetaError | None:
    """Reply buttons and lists in full; the other interactive types only need a known type."""
    if not isinstance(interactive, dict):
        return MetaError(131008, "The parameter interactive is required.")
    kind = interactive.get("type")
    if not isinstance(kind, str) or kind not in INTERACTIVE_TYPES:
        return MetaError(131009, f"Interactive type {kind!r} is not valid; use one of "
                                 f"{', '.join(sorted(INTERACTIVE_TYPES))}.")
    if kind not in ("button", "list", "cta_url", "flow"):
        return None
    action = interactive.get("action")
    problem = _frame_problem(interactive)
    if problem is None and not isinstance(action, dict):
        problem = MetaError(131008, "The parameter interactive['action'] is required.")
    if problem is None and kind == "button":
        problem = _reply_buttons_problem(action.get("buttons"))
    elif problem is None and kind == "list":
        problem = _list_problem(action)
    return problem


def _frame_problem(interactive: dict[str, Any]) -> MetaError | None:
    """The body every button, list, link and flow message needs, and the optional text header and footer."""
    body = interactive.get("body")
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        return MetaError(131008, "The parameter interactive['body']['text'] is required.")
    problem = _length_problem("Body text", text, INTERACTIVE_BODY_MAX)
    header = interactive.get("header")
    if problem is None and isinstance(header, dict) and header.get("type") == "text":
        problem = _length_problem("Header text", header.get("text"), INTERACTIVE_HEADER_MAX)
    footer = interactive.get("footer")
    if problem is None and footer is not None:
        problem = _length_problem("Footer text", footer.get("text") if isinstance(footer, dict) else None,
                                  INTERACTIVE_FOOTER_MAX)
    return problem


def _reply_buttons_problem(buttons: Any) -> MetaError | None:
    if not isinstance(buttons, list) or not buttons:
        return MetaError(131008, "The parameter interactive['action']['buttons'] is required.")
    if len(buttons) > REPLY_BUTTONS_MAX:
        return MetaError(131009, f"Buttons count invalid. Min count: 1, Max count: {REPLY_BUTTONS_MAX}")
    ids: set[str] = set()
    for button in buttons:
        reply = button.get("reply") if isinstance(button, dict) and button.get("type") == "reply" else None
        if not isinstance(reply, dict):
            return MetaError(131009, "Each button must be {\"type\": \"reply\", \"reply\": {\"id\", \"title\"}}.")
        problem = (_length_problem("Button title", reply.get("title"), REPLY_BUTTON_TITLE_MAX)
                   or _length_problem("Button id", reply.get("id"), REPLY_BUTTON_ID_MAX))
        if problem:
            return problem
        if reply["id"] in ids:
            return MetaError(131009, f"Button IDs must be unique; {reply['id']!r} is used twice.")
        ids.add(reply["id"])
    return None


def _list_problem(action: dict[str, Any]) -> MetaError | None:
    if problem := _length_problem("Button text", action.get("button"), LIST_BUTTON_MAX):
        return problem
    sections = action.get("sections")
    if not isinstance(sections, list) or not sections or not all(isinstance(section, dict) for section in sections):
        return MetaError(131008, "The parameter interactive['action']['sections'] is required.")
    if len(sections) > LIST_SECTIONS_MAX:
        return MetaError(131009, f"Sections count invalid. Min count: 1, Max count: {LIST_SECTIONS_MAX}")
    for section in sections:  # a title is required once there is more than one section
        if len(sections) > 1 or section.get("title") is not None:
            if problem := _length_problem("Section title", section.get("title"), LIST_SECTION_TITLE_MAX):
                return problem
    rows = [row for section in sections if isinstance(section.get("rows"), list) for row in section["rows"]]
    if not 1 <= len(rows) <= LIST_ROWS_MAX:
        return MetaError(131009, f"Total row count invalid. Min count: 1, Max count: {LIST_ROWS_MAX}")
    return _rows_problem(rows)


def _rows_problem(rows: list[Any]) -> MetaError | None:
    ids: set[str] = set()
    for row in rows:
        if not isinstance(row, dict):
            return MetaError(131009, "Each row must be an object with an id and a title.")
        problem = (_length_problem("Row title", row.get("title"), LIST_ROW_TITLE_MAX)
                   or _length_problem("Row id", row.get("id"), LIST_ROW_ID_MAX))
        if problem is None and row.get("description") is not None:
            problem = _length_problem("Row description", row["description"], LIST_ROW_DESCRIPTION_MAX)
        if problem:
            return problem
        if row["id"] in ids:
            return MetaError(131009, f"Row IDs must be unique; {row['id']!r} is used twice.")
        ids.add(row["id"])
    return None


def _length_problem(name: str, value: Any, maximum: int) -> MetaError | None:
    """A required text field: missing is 131008, empty or too long 131009, as Meta's length messages put it."""
    if value is None:
        return MetaError(131008, f"{name} is required.")
    if not isinstance(value, str) or not 1 <= len(value) <= maximum:
        return MetaError(131009, f"{name} length invalid. Min length: 1, Max length: {maximum}")
    return None
