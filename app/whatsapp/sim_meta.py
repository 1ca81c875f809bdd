"""How the simulator answers like Meta: Graph-shaped errors and validation of POST /messages payloads."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from app.whatsapp.errors import classify
from app.whatsapp.sim_config import digits
from app.whatsapp.sim_store import SimTemplate, TemplateStore

ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
# Codes Meta reports after accepting the send, as a "failed" status webhook, rather than in the HTTP answer.
ASYNC_CODES = frozenset({130472, 131026, 131047, 131048, 131049, 131050, 131051, 131052, 131053})
MESSAGE_TYPES = frozenset({"text", "template", "image", "video", "audio", "document", "sticker", "location",
                           "contacts", "interactive", "reaction"})
_HTTP_STATUS = {0: 401, 190: 401, 3: 403, 10: 403, 131005: 403, 4: 429, 80007: 429, 130429: 429,
                131000: 500, 131016: 503, 131057: 503, 133004: 503}
_RETRY_AFTER = {130429: 1, 4: 60, 80007: 60}
_BAD_TEXT = ("\n", "\t", "     ")


@dataclass(frozen=True)
class MetaError:
    code: int
    details: str
    subcode: int | None = None

    @property
    def http_status(self) -> int:
        if 200 <= self.code < 300:
            return 403
        return _HTTP_STATUS.get(self.code, 400)

    @property
    def retry_after(self) -> int | None:
        return _RETRY_AFTER.get(self.code)

    def body(self) -> dict[str, Any]:
        title = classify(self.code, self.http_status).title
        error: dict[str, Any] = {"message": f"(#{self.code}) {title}", "type": "OAuthException", "code": self.code,
                                 "error_data": {"messaging_product": "whatsapp", "details": self.details},
                                 "fbtrace_id": "A" + secrets.token_urlsafe(16)}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


def status_error(code: int) -> dict[str, Any]:
    """The errors[] item of a failed status webhook."""
    title = classify(code).title
    return {"code": code, "title": title, "message": title, "error_data": {"details": classify(code).explanation},
            "href": ERROR_DOCS}


@dataclass(frozen=True)
class SendRequest:
    to: str
    wa_id: str
    kind: str
    template: SimTemplate | None
    biz_opaque_callback_data: str | None

    @property
    def pricing_category(self) -> str:
        return str(self.template.data["category"]).lower() if self.template else "service"


def validate_message(payload: Any, templates: TemplateStore) -> SendRequest | MetaError:
    """Check a send the way the Cloud API does, returning the accepted request or Meta's error."""
    if not isinstance(payload, dict):
        return MetaError(100, "The request body must be a JSON object.")
    if payload.get("messaging_product") != "whatsapp":
        return MetaError(100, "The parameter messaging_product is required and must be 'whatsapp'.")
    to = payload.get("to")
    if not isinstance(to, str) or not to.strip():
        return MetaError(100, "The parameter to is required.")
    wa_id = digits(to)
    if not 7 <= len(wa_id) <= 15:
        return MetaError(131009, f"Recipient phone number {to!r} is not a valid phone number.")
    kind = payload.get("type", "text")
    if kind not in MESSAGE_TYPES:
        return MetaError(100, f"Param type must be one of {{{', '.join(sorted(MESSAGE_TYPES))}}}.")
    template: SimTemplate | None = None
    if kind == "text":
        problem = _text_problem(payload.get("text"))
    elif kind == "template":
        template_or_error = _template(payload.get("template"), templates)
        if isinstance(template_or_error, MetaError):
            return template_or_error
        template, problem = template_or_error, None
    else:
        has_content = isinstance(payload.get(kind), dict)
        problem = None if has_content else MetaError(131008, f"The parameter {kind} is required.")
    if problem:
        return problem
    callback = payload.get("biz_opaque_callback_data")
    return SendRequest(to=to, wa_id=wa_id, kind=kind, template=template,
                       biz_opaque_callback_data=callback if isinstance(callback, str) and callback else None)


def _text_problem(text: Any) -> MetaError | None:
    body = text.get("body") if isinstance(text, dict) else None
    if not isinstance(body, str) or not body.strip():
        return MetaError(100, "The parameter text['body'] is required.")
    if len(body) > 4096:
        return MetaError(100, "Param text['body'] must be at most 4096 characters long.")
    return None


def _template(spec: Any, templates: TemplateStore) -> SimTemplate | MetaError:
    spec = spec if isinstance(spec, dict) else {}
    name, language = spec.get("name"), (spec.get("language") or {})
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(name, str) or not name:
        return MetaError(131008, "Parameter template['name'] is required.")
    if not isinstance(code, str) or not code:
        return MetaError(131008, "Parameter template['language']['code'] is required.")
    template = templates.get(name, code)
    if template is None:
        return MetaError(132001, f"template name ({name}) does not exist in {code}")
    status = template.data["status"]
    if status != "APPROVED":
        return _unapproved(template, status)
    components = spec.get("components") or []
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        return MetaError(100, "Param template['components'] must be a list of objects.")
    return _parameters_problem(template, components) or template


def _unapproved(template: SimTemplate, status: str) -> MetaError:
    name = template.data["name"]
    if status == "PAUSED":
        return MetaError(132015, f"Template {name} is paused because of low quality.")
    if status == "DISABLED":
        return MetaError(132016, f"Template {name} is disabled.")
    return MetaError(132001, f"template name ({name}) is not approved in {template.data['language']} ({status})")


def _parameters_problem(template: SimTemplate, components: list[dict[str, Any]]) -> MetaError | None:
    by_type = {str(c.get("type", "")).lower(): c for c in components}
    body = by_type.get("body")
    problem = _section_problem("body", template.body_params, body, template.named)
    if problem is None and template.header_format == "TEXT":
        problem = _section_problem("header", template.header_params, by_type.get("header"), template.named)
    elif problem is None and template.header_format in ("IMAGE", "VIDEO", "DOCUMENT"):
        problem = _media_header_problem(template.header_format, by_type.get("header"))
    if problem is None and _hydrated_length(template, body) > 1024:
        problem = MetaError(132005, "body: the message is longer than 1024 characters once variables are filled in.")
    return problem


def _section_problem(section: str, expected: list[str], component: dict[str, Any] | None,
                     named: bool) -> MetaError | None:
    params = component.get("parameters", []) if component else []
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        return MetaError(100, f"{section}: parameters must be a list of objects.")
    if not named and len(params) != len(expected):
        return MetaError(132000, f"{section}: number of localizable_params ({len(params)}) does not match the "
                                 f"expected number of params ({len(expected)})")
    if named and sorted(str(p.get("parameter_name")) for p in params) != sorted(expected):
        given = [p.get("parameter_name") for p in params]
        return MetaError(132000, f"{section}: parameter names {given} do not match the template's {expected}")
    for param in params:
        if param.get("type", "text") == "text":
            text = param.get("text")
            if not isinstance(text, str):
                return MetaError(131008, f"{section}: Parameter text is required for every text parameter.")
            if any(bad in text for bad in _BAD_TEXT):
                return MetaError(132007, f"{section}: Param text cannot have new-line/tab characters or more than "
                                         f"4 consecutive spaces")
    return None


def _media_header_problem(expected: str, component: dict[str, Any] | None) -> MetaError | None:
    params = component.get("parameters") if component else None
    kind = params[0].get("type") if isinstance(params, list) and params and isinstance(params[0], dict) else None
    if kind != expected.lower() or not isinstance(params[0].get(kind), dict):
        received = str(kind).upper() if kind else "UNKNOWN"
        return MetaError(132012, f"header: Format mismatch, expected {expected}, received {received}")
    return None


def _hydrated_length(template: SimTemplate, body: dict[str, Any] | None) -> int:
    values = [p.get("text") for p in (body or {}).get("parameters", [])]
    filled = sum(len(v) for v in values if isinstance(v, str))
    placeholders = sum(len(name) + 4 for name in template.body_params)
    return len(template.body_text) - placeholders + filled
