"""The one table of Cloud API error codes: what we do about each, and how we explain it to a shop owner.

Meta recommends handling errors by `code` (titles are being deprecated), so titles here are ours and only shown
next to the explanation. Codes not in the table fall back by HTTP status, erring towards retrying transient
failures and failing fast on request errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

DAY_SECONDS = 24 * 60 * 60


class ErrorAction(Enum):
    RETRY = "retry"  # transient: send the same message again later, with backoff
    PERMANENT = "permanent"  # this message to this recipient will never work: mark it failed
    PAUSE = "pause"  # the campaign (template or sending quality) has a problem: pause it for staff
    DEFER_RECIPIENT = "defer_recipient"  # this recipient cannot take it now: retry no sooner than retry_after_min
    STOP = "stop"  # the sender account/token is unusable: stop all sending until staff fix it


@dataclass(frozen=True)
class ErrorInfo:
    code: int | None
    action: ErrorAction
    title: str
    explanation: str
    retry_after_min: int = 0  # seconds to wait at least before the next attempt
    recipient_opted_out: bool = False  # Meta tells us the customer stopped marketing messages

    @property
    def retryable(self) -> bool:
        return self.action in (ErrorAction.RETRY, ErrorAction.DEFER_RECIPIENT)


RETRY, PERMANENT, PAUSE = ErrorAction.RETRY, ErrorAction.PERMANENT, ErrorAction.PAUSE
DEFER, STOP = ErrorAction.DEFER_RECIPIENT, ErrorAction.STOP

_ENTRIES = (
    # Transient: throttling and temporary outages.
    ErrorInfo(1, RETRY, "Unknown API error", "WhatsApp had an unexpected problem; the message will be retried.", 30),
    ErrorInfo(2, RETRY, "Temporary service error",
              "WhatsApp was briefly unavailable; the message will be retried.", 30),
    ErrorInfo(4, RETRY, "Too many API calls",
              "We made too many requests to WhatsApp in a short time; the message will be retried shortly.", 60),
    ErrorInfo(80007, RETRY, "Business account rate limit",
              "Your WhatsApp business account reached its request limit for now; sending resumes shortly.", 60),
    ErrorInfo(130429, RETRY, "Throughput limit reached",
              "WhatsApp asked us to slow down because we were sending too fast; the message will be retried.", 1),
    ErrorInfo(131000, RETRY, "Something went wrong",
              "WhatsApp had an unexpected problem sending this message; it will be retried.", 30),
    ErrorInfo(131016, RETRY, "Service unavailable",
              "WhatsApp is temporarily unavailable; the message will be retried.", 60),
    ErrorInfo(131056, RETRY, "Too many messages to this person",
              "Too many messages went to this customer in a short time; we will try again in a minute.", 60),
    ErrorInfo(131057, RETRY, "Account in maintenance mode",
              "Your WhatsApp business account is briefly under maintenance; the message will be retried.", 300),
    ErrorInfo(132069, RETRY, "Flow is throttled",
              "The WhatsApp form in this message was sent too often this hour; the message will be retried.", 600),
    ErrorInfo(133004, RETRY, "Server temporarily unavailable",
              "WhatsApp's servers are temporarily unavailable; the message will be retried.", 60),
    # Permanent for this message and recipient.
    ErrorInfo(100, PERMANENT, "Invalid parameter",
              "WhatsApp rejected the message because some of its details were invalid."),
    ErrorInfo(130472, PERMANENT, "Customer is in a WhatsApp experiment",
              "WhatsApp held this message back because the customer is part of a WhatsApp marketing experiment."),
    ErrorInfo(130497, PERMANENT, "Country not allowed",
              "Your business is not allowed to message customers in this person's country."),
    ErrorInfo(131008, PERMANENT, "Required parameter is missing",
              "The message was missing required information, such as a template variable."),
    ErrorInfo(131009, PERMANENT, "Parameter value is not valid",
              "A value in the message was not accepted by WhatsApp, for example a malformed phone number or link."),
    ErrorInfo(131021, PERMANENT, "Recipient cannot be sender",
              "You cannot send a message to your own business number."),
    ErrorInfo(131026, PERMANENT, "Message undeliverable",
              "This number is not on WhatsApp or cannot receive messages from businesses."),
    ErrorInfo(131030, PERMANENT, "Recipient not in allowed list",
              "While your business number is in test mode it can only message numbers on its allowed list."),
    ErrorInfo(131047, PERMANENT, "Outside the 24-hour window",
              "More than 24 hours have passed since this customer last wrote to you, so only a template can be sent."),
    ErrorInfo(131050, PERMANENT, "Customer stopped marketing messages",
              "This customer has turned off marketing messages from your business in WhatsApp.",
              recipient_opted_out=True),
    ErrorInfo(131051, PERMANENT, "Unsupported message type", "WhatsApp does not support this kind of message."),
    ErrorInfo(131052, PERMANENT, "Media download error",
              "WhatsApp could not download the picture or file attached to the message."),
    ErrorInfo(131053, PERMANENT, "Media upload error",
              "WhatsApp could not process the picture or file attached to the message."),
    ErrorInfo(131055, PERMANENT, "Method not allowed", "WhatsApp does not allow this kind of request."),
    ErrorInfo(132000, PERMANENT, "Template variable count mismatch",
              "The number of variables filled in does not match what the approved template expects."),
    ErrorInfo(132001, PERMANENT, "Template does not exist",
              "This template does not exist in that language or is not approved yet."),
    ErrorInfo(132005, PERMANENT, "Template text too long",
              "After filling in the variables, the message is longer than WhatsApp allows."),
    ErrorInfo(132007, PERMANENT, "Template content not allowed",
              "A variable contains something WhatsApp does not allow, such as line breaks, tabs or many spaces."),
    ErrorInfo(132018, PERMANENT, "Template variable format invalid",
              "A variable contains a line break, a tab or more than four spaces in a row, which WhatsApp does not "
              "allow in template variables."),
    ErrorInfo(132008, PERMANENT, "Template variables invalid",
              "The variables in this message do not fit the approved template."),
    ErrorInfo(132012, PERMANENT, "Template variable format mismatch",
              "A variable, such as the header picture, is not the kind the template was approved with."),
    ErrorInfo(132068, PERMANENT, "Flow is blocked", "The WhatsApp form in this message is blocked and cannot be sent."),
    ErrorInfo(133010, PERMANENT, "Business number not registered",
              "Your business phone number is not registered with WhatsApp, so it cannot send messages."),
    ErrorInfo(135000, PERMANENT, "Generic user error", "WhatsApp refused the message without giving a reason."),
    # The campaign has a problem that staff must look at.
    ErrorInfo(131048, PAUSE, "Spam rate limit hit",
              "Too many customers blocked or reported your messages, so WhatsApp limited sending for now."),
    ErrorInfo(132015, PAUSE, "Template is paused",
              "WhatsApp paused this template because customers rated it poorly; edit it or wait before sending again."),
    ErrorInfo(132016, PAUSE, "Template is disabled",
              "WhatsApp disabled this template after repeated quality problems; create a new template to continue."),
    # This recipient only: try again much later.
    ErrorInfo(131049, DEFER, "Marketing limit for this customer",
              "WhatsApp limits marketing messages per person: refused as we send, it is tried again in 24 hours; "
              "reported later, it is not sent.",
              DAY_SECONDS),
    # The sender itself is unusable.
    ErrorInfo(0, STOP, "Authentication error",
              "WhatsApp could not confirm our login details; check the access token in Settings."),
    ErrorInfo(3, STOP, "App lacks a capability",
              "The connected WhatsApp app lacks a capability needed to send messages."),
    ErrorInfo(10, STOP, "Permission denied",
              "The access token does not have permission to send from this WhatsApp number."),
    ErrorInfo(190, STOP, "Access token expired or invalid",
              "The WhatsApp access token has expired or is wrong; update it in Settings to resume sending."),
    ErrorInfo(368, STOP, "Temporarily blocked for policy violations",
              "WhatsApp temporarily blocked your business number for breaking its policies."),
    ErrorInfo(131005, STOP, "Access denied", "WhatsApp denied the access token permission to send messages."),
    ErrorInfo(131031, STOP, "Business account locked",
              "WhatsApp locked your business account, usually over a policy problem or a wrong two-step PIN."),
    ErrorInfo(131037, STOP, "Display name not approved",
              "Your business display name must be approved by WhatsApp before you can send messages."),
    ErrorInfo(131042, STOP, "Payment problem",
              "There is a problem with your WhatsApp payment method; fix billing in Meta Business Manager to resume."),
    ErrorInfo(131045, STOP, "Phone number certificate problem",
              "Your business phone number's registration certificate is wrong; register the number again."),
)

ERROR_TABLE: dict[int, ErrorInfo] = {info.code: info for info in _ENTRIES if info.code is not None}

# Graph API codes 200-299 are all "missing permission" variants; one entry covers the range.
PERMISSION_RANGE = range(200, 300)
_PERMISSION = ErrorInfo(None, STOP, "API permission missing",
                        "The WhatsApp app is missing a permission it needs; reconnect it with messaging permissions.")

_HTTP_THROTTLED = ErrorInfo(None, RETRY, "Too many requests",
                            "WhatsApp asked us to slow down; the message will be retried shortly.", 5)
_HTTP_SERVER = ErrorInfo(None, RETRY, "WhatsApp server error",
                         "WhatsApp's servers had a temporary problem; the message will be retried.", 30)
_HTTP_REJECTED = ErrorInfo(None, PERMANENT, "Rejected by WhatsApp",
                           "WhatsApp refused this message; check the number and the template.")
_REPORTED_FAILURE = ErrorInfo(None, PERMANENT, "Not delivered",
                              "WhatsApp reported that this message could not be delivered.")
_CONNECT_FAILED = ErrorInfo(None, RETRY, "Could not reach WhatsApp",
                            "We could not reach WhatsApp's servers, so the message was not sent; it will be retried.",
                            5)
# Long minimum wait on purpose: the message may already be on its way, and a status webhook usually settles it.
_OUTCOME_UNKNOWN = ErrorInfo(None, RETRY, "No answer from WhatsApp",
                             "WhatsApp may have received this message but did not answer in time; we wait for its "
                             "delivery report before trying again.", 300)


def classify(code: int | None, http_status: int | None = None) -> ErrorInfo:
    """Map a Cloud API error code (and the HTTP status it came with, if any) to an action and an explanation."""
    if code is not None:
        known = ERROR_TABLE.get(code)
        if known is not None:
            return known
        if code in PERMISSION_RANGE:
            return _with_code(_PERMISSION, code)
        if http_status is None:
            # An unknown code from a webhook: Meta judged this message, it was not a network problem.
            return _with_code(_REPORTED_FAILURE, code)
    return _with_code(_by_http_status(http_status), code)


def classify_transport(outcome_unknown: bool) -> ErrorInfo:
    """Explain a send that got no HTTP answer: connect failures are safe to retry, lost answers are ambiguous."""
    return _OUTCOME_UNKNOWN if outcome_unknown else _CONNECT_FAILED


def _by_http_status(http_status: int | None) -> ErrorInfo:
    if http_status is None:
        return _CONNECT_FAILED
    if http_status == 429:
        return _HTTP_THROTTLED
    if http_status >= 500:
        return _HTTP_SERVER
    return _HTTP_REJECTED


def _with_code(info: ErrorInfo, code: int | None) -> ErrorInfo:
    if code is None or info.code == code:
        return info
    return ErrorInfo(code, info.action, info.title, info.explanation, info.retry_after_min, info.recipient_opted_out)
