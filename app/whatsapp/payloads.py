"""Builders for Cloud API send payloads, so the rest of the app never writes one by hand.

Template parameters come in two flavours: positional (`{{1}}`, `{{2}}`), filled in order, and named
(`{{first_name}}`), where each parameter carries its `parameter_name`. Values that are already parameter
objects (dicts such as a currency or date_time parameter) are passed through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

Component = dict[str, Any]
ParameterValues = Sequence[Any] | Mapping[str, Any]

MEDIA_TYPES = ("image", "video", "document")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def template_placeholders(text: str | None) -> list[str]:
    """Placeholder names in template text, in order of first appearance: ["1", "2"] or ["first_name"]."""
    seen: list[str] = []
    for name in _PLACEHOLDER.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def text_parameters(values: ParameterValues, named: bool = False) -> list[dict[str, Any]]:
    """Text parameters in Meta's shape; a mapping (or named=True with pairs) gives named parameters."""
    if isinstance(values, Mapping):
        return [_text_parameter(value, str(name)) for name, value in values.items()]
    if named:
        return [_text_parameter(value, str(name)) for name, value in values]
    return [_text_parameter(value, None) for value in values]


def body_parameters(values: ParameterValues, named: bool = False) -> Component:
    """The body component filling the template's body variables."""
    return {"type": "body", "parameters": text_parameters(values, named)}


def header_text_parameters(values: ParameterValues, named: bool = False) -> Component:
    """The header component for a TEXT header with a variable."""
    return {"type": "header", "parameters": text_parameters(values, named)}


def header_media(kind: str, link: str | None = None, media_id: str | None = None,
                 filename: str | None = None) -> Component:
    """The header component for an IMAGE/VIDEO/DOCUMENT header, by public link or uploaded media id."""
    kind = kind.lower()
    if kind not in MEDIA_TYPES:
        raise ValueError(f"header media kind must be one of {MEDIA_TYPES}, not {kind!r}")
    if bool(link) == bool(media_id):
        raise ValueError("give exactly one of link or media_id")
    media: dict[str, Any] = {"link": link} if link else {"id": media_id}
    if filename and kind == "document":
        media["filename"] = filename
    return {"type": "header", "parameters": [{"type": kind, kind: media}]}


def quick_reply_button(index: int, payload: str) -> Component:
    """Sets the payload returned to our webhook when the customer taps quick-reply button `index`."""
    return _button("quick_reply", index, {"type": "payload", "payload": payload})


def url_button(index: int, url_suffix: str) -> Component:
    """Fills the variable part of a dynamic URL button."""
    return _button("url", index, {"type": "text", "text": url_suffix})


def copy_code_button(index: int, coupon_code: str) -> Component:
    """Fills the coupon code of a copy-code button."""
    return _button("copy_code", index, {"type": "coupon_code", "coupon_code": coupon_code})


def template_message(to: str, name: str, language: str, components: Sequence[Component] | None = None,
                     biz_opaque_callback_data: str | None = None) -> dict[str, Any]:
    """The full POST /messages body for a template send."""
    template: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        template["components"] = list(components)
    return _message(to, "template", {"template": template}, biz_opaque_callback_data)


def text_message(to: str, body: str, preview_url: bool = False,
                 biz_opaque_callback_data: str | None = None) -> dict[str, Any]:
    """The full POST /messages body for a free-form text (only inside the 24-hour customer service window)."""
    return _message(to, "text", {"text": {"body": body, "preview_url": preview_url}}, biz_opaque_callback_data)


def _message(to: str, kind: str, content: dict[str, Any], biz_opaque_callback_data: str | None) -> dict[str, Any]:
    payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
                               "type": kind, **content}
    if biz_opaque_callback_data:
        payload["biz_opaque_callback_data"] = biz_opaque_callback_data
    return payload


def _text_parameter(value: Any, name: str | None) -> dict[str, Any]:
    if isinstance(value, Mapping):
        parameter = dict(value)
    else:
        parameter = {"type": "text", "text": "" if value is None else str(value)}
    if name is not None:
        parameter["parameter_name"] = name
    return parameter


def _button(sub_type: str, index: int, parameter: dict[str, Any]) -> Component:
    return {"type": "button", "sub_type": sub_type, "index": str(index), "parameters": [parameter]}
