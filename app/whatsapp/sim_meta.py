"""How the simulator judges a POST /messages like Meta: what it refuses at once (the checks of `sim_rules.py` and
the template's parameters), and what it accepts but then fails by webhook because of who the customer is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.whatsapp.sim_config import EVERYONE, digits
from app.whatsapp.sim_rules import (
    BAD_PARAMETER_DETAILS,
    BAD_PARAMETER_TEXT,
    CAPTIONED_MEDIA,
    SERVICE_WINDOW_S,
    GraphError,
    MediaExists,
    MetaError,
    interactive_problem,
    media_problem,
    text_problem,
)
from app.whatsapp.sim_store import Customers, SimTemplate, TemplateButton, TemplateStore

MESSAGE_TYPES = frozenset({"text", "template", "image", "video", "audio", "document", "sticker", "location",
                           "contacts", "interactive", "reaction"})
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
HEADER_MEDIA = frozenset({"IMAGE", "VIDEO", "DOCUMENT"})
_PARAMETER_OBJECTS = frozenset({"currency", "date_time"})  # body parameters other than text, filled by Meta


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


def _no_media(media_id: str) -> bool:
    return False


def validate_message(payload: Any, templates: TemplateStore,
                     media_exists: MediaExists = _no_media) -> SendRequest | MetaError | GraphError:
    """Check a send the way the Cloud API does, returning the accepted request or Meta's error."""
    if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
        return GraphError(100, "(#100) The parameter messaging_product is required.")
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
    if kind == "template":
        template_or_error = _template(payload.get("template"), templates, media_exists)
        if isinstance(template_or_error, MetaError):
            return template_or_error
        template = template_or_error
    elif problem := _content_problem(kind, payload.get(kind), media_exists):
        return problem
    callback = payload.get("biz_opaque_callback_data")
    return SendRequest(to=to, wa_id=wa_id, kind=kind, template=template,
                       biz_opaque_callback_data=callback if isinstance(callback, str) and callback else None)


def policy_failure(request: SendRequest, customers: Customers, wrote_recently: tuple[str, ...],
                   now: float) -> int | None:
    """The code Meta fails an accepted message with because of the customer, reported by a status webhook: free-form
    messages outside the 24-hour window (131047), marketing to someone who stopped it (131050)."""
    if request.template is None:
        last_wrote = customers.last_wrote(request.wa_id)
        in_window = last_wrote is not None and now - last_wrote < SERVICE_WINDOW_S
        if not (in_window or EVERYONE in wrote_recently or request.wa_id in wrote_recently):
            return 131047
    elif request.template.category == "MARKETING" and customers.stopped_marketing(request.wa_id):
        return 131050
    return None


def _content_problem(kind: str, content: Any, media_exists: MediaExists) -> MetaError | None:
    if kind == "text":
        return text_problem(content)
    if kind in MEDIA_TYPES:
        return media_problem(kind, content, media_exists, caption_allowed=kind in CAPTIONED_MEDIA)
    if kind == "interactive":
        return interactive_problem(content)
    return None if isinstance(content, dict) else MetaError(131008, f"The parameter {kind} is required.")


# --- templates -------------------------------------------------------------------------------------------------

def _template(spec: Any, templates: TemplateStore, media_exists: MediaExists) -> SimTemplate | MetaError:
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
    return _components_problem(template, components, media_exists) or template


def _unapproved(template: SimTemplate, status: str) -> MetaError:
    name = template.data["name"]
    if status == "PAUSED":
        return MetaError(132015, f"Template {name} is paused because of low quality.")
    if status == "DISABLED":
        return MetaError(132016, f"Template {name} is disabled.")
    return MetaError(132001, f"template name ({name}) is not approved in {template.data['language']} ({status})")


def _components_problem(template: SimTemplate, components: list[dict[str, Any]],
                        media_exists: MediaExists) -> MetaError | None:
    sections = {str(c.get("type", "")).lower(): c for c in components}
    buttons = [c for c in components if str(c.get("type", "")).lower() == "button"]
    body = sections.get("body")
    checks: list[Callable[[], MetaError | None]] = [
        lambda: _section_problem("body", template.body_params, body, template.named),
        lambda: _header_problem(template, sections.get("header"), media_exists),
        lambda: _buttons_problem(template.buttons, buttons),
        lambda: _hydrated_length_problem(template, body),
    ]
    return next((problem for check in checks if (problem := check()) is not None), None)


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
    return next((problem for param in params if (problem := _parameter_problem(section, param))), None)


def _parameter_problem(section: str, param: dict[str, Any]) -> MetaError | None:
    kind = param.get("type")
    if kind in _PARAMETER_OBJECTS:
        valid = isinstance(param.get(kind), dict)
        return None if valid else MetaError(131008, f"{section}: Parameter of type {kind} is missing {kind} value")
    if kind != "text":
        return MetaError(131009, f"{section}: Parameter type {kind!r} is not valid; use text, currency or date_time.")
    text = param.get("text")
    if not isinstance(text, str) or not text:
        return MetaError(131008, f"{section}: Parameter of type text is missing text value")
    if BAD_PARAMETER_TEXT.search(text):
        return MetaError(132018, f"{section}: {BAD_PARAMETER_DETAILS}")
    return None


def _header_problem(template: SimTemplate, component: dict[str, Any] | None,
                    media_exists: MediaExists) -> MetaError | None:
    if template.header_format == "TEXT":
        return _section_problem("header", template.header_params, component, template.named)
    if template.header_format in HEADER_MEDIA:
        return _media_header_problem(template.header_format, component, media_exists)
    if template.header_format is None and component and component.get("parameters"):
        count = len(component["parameters"]) if isinstance(component["parameters"], list) else 1
        return MetaError(132000, f"header: number of localizable_params ({count}) does not match the expected "
                                 "number of params (0)")
    return None


def _media_header_problem(expected: str, component: dict[str, Any] | None,
                          media_exists: MediaExists) -> MetaError | None:
    params = component.get("parameters") if component else None
    kind = params[0].get("type") if isinstance(params, list) and params and isinstance(params[0], dict) else None
    if kind != expected.lower() or not isinstance(params[0].get(kind), dict):
        received = str(kind).upper() if kind else "UNKNOWN"
        return MetaError(132012, f"header: Format mismatch, expected {expected}, received {received}")
    return media_problem(kind, params[0][kind], media_exists, caption_allowed=False)


def _buttons_problem(template_buttons: list[TemplateButton], given: list[dict[str, Any]]) -> MetaError | None:
    """Button components fill in the template's buttons by index: a dynamic URL's suffix, a coupon code, a quick
    reply's payload. Meta answers every mismatch with 131008."""
    if given and not template_buttons:
        return MetaError(131008, "buttons: the template has no buttons, so no button component can be sent.")
    filled: set[int] = set()
    for component in given:
        index = _button_index(component.get("index"))
        if index is None or not 0 <= index < len(template_buttons):
            return MetaError(131008, f"buttons: Button at index {component.get('index')!r} does not exist; the "
                                     f"template has {len(template_buttons)} button(s), indexed from 0.")
        button = template_buttons[index]
        if str(component.get("sub_type", "")).lower() != button.sub_type:
            return MetaError(131008, f"buttons: Button at index {index} is of type {button.sub_type}, not "
                                     f"{component.get('sub_type')!r}.")
        if problem := _button_parameter_problem(index, button, component.get("parameters")):
            return problem
        filled.add(index)
    missing = [(i, button) for i, button in enumerate(template_buttons) if button.needs_parameter and i not in filled]
    if missing:
        index, button = missing[0]
        return MetaError(131008, f"buttons: Button at index {index} of type {button.sub_type.capitalize()} requires "
                                 "a parameter")  # Meta's own wording, as recorded in the contract fixture
    return None


def _button_index(index: Any) -> int | None:
    if isinstance(index, bool) or not isinstance(index, int | str):
        return None
    try:
        return int(index)
    except ValueError:
        return None


_BUTTON_PARAMETERS = {"url": ("text", "text"), "quick_reply": ("payload", "payload"),
                      "copy_code": ("coupon_code", "coupon_code")}


def _button_parameter_problem(index: int, button: TemplateButton, params: Any) -> MetaError | None:
    where = f"buttons: Button at index {index} of type {button.sub_type}"
    if button.sub_type == "url" and not button.needs_parameter:
        return MetaError(131008, f"{where} has a fixed URL; it takes no parameter.")
    if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], dict):
        return MetaError(131008, f"{where} requires exactly one parameter.")
    kind, field_name = _BUTTON_PARAMETERS.get(button.sub_type, (None, None))
    if kind is None:
        return None
    value = params[0].get(field_name)
    if params[0].get("type") != kind or not isinstance(value, str) or not value:
        return MetaError(131008, f"{where}: Parameter of type {kind} is missing {field_name} value")
    return None


def _hydrated_length_problem(template: SimTemplate, body: dict[str, Any] | None) -> MetaError | None:
    values = [p.get("text") for p in (body or {}).get("parameters", [])]
    filled = sum(len(v) for v in values if isinstance(v, str))
    placeholders = sum(len(name) + 4 for name in template.body_params)
    if len(template.body_text) - placeholders + filled > 1024:
        return MetaError(132005, "body: the message is longer than 1024 characters once variables are filled in.")
    return None
