"""Filling a campaign's template for one contact.

Campaign.variables maps each template variable key ("body.1", "header.1", "button.0", "body.first_name",
"header.media") to {"source": "name|phone|attribute|literal", "value": str, "fallback": str}. `render` runs once
per message at send time, so it works only on the rows it is given and never queries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from app.models import Campaign, Contact, MessageTemplate
from app.services.templates.parts import (
    MEDIA_KEY,
    Bubble,
    TemplateParts,
    TemplateVariable,
    bubble,
    parse,
    plain_text,
    variables,
)
from app.whatsapp.payloads import (
    body_parameters,
    copy_code_button,
    header_media,
    header_text_parameters,
    url_button,
)

SHARE_URL = "https://wa.me/?text="
SOURCES = {"name": "Contact's name", "phone": "Phone number", "attribute": "Contact field", "literal": "Fixed text"}
# Meta refuses parameter text with new lines, tabs or more than four spaces in a row (error 132007).
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Rendered:
    components: list[dict[str, Any]]  # exactly the Cloud API's template.components
    preview: str  # readable text of the message
    empty: list[str]  # variable keys still empty after fallbacks


_PARSED: dict[tuple, tuple[TemplateParts, list[TemplateVariable]]] = {}
_PARSED_LIMIT = 256


def template_parts(template: MessageTemplate) -> TemplateParts:
    return _parsed(template)[0]


def template_variables(template: MessageTemplate) -> list[TemplateVariable]:
    """Every variable a send of this template fills (header, body, URL/copy-code buttons)."""
    return list(_parsed(template)[1])


def _parsed(template: MessageTemplate) -> tuple[TemplateParts, list[TemplateVariable]]:
    """Parsing is most of a render's cost and templates rarely change, so each version is parsed once."""
    key = (template.id, template.updated_at, template.parameter_format, id(template.components))
    found = _PARSED.get(key) if template.id is not None else None
    if found is None:
        parts = parse(template.components, template.parameter_format)
        found = (parts, variables(parts))
        if template.id is not None:
            if len(_PARSED) >= _PARSED_LIMIT:
                _PARSED.clear()
            _PARSED[key] = found
    return found


class ContactFields(Protocol):
    """What rendering reads of a contact: a Contact, or the plain columns dispatch reads for a whole batch."""

    name: str | None
    phone: str
    attributes: dict | None


def render(campaign: Campaign, contact: ContactFields) -> Rendered:
    """The send components and readable text for one contact; no queries."""
    template = campaign.template
    if template is None:
        raise ValueError(f"campaign {campaign.id} has no template")
    parts, found = _parsed(template)
    values = _values(campaign, found, contact)
    return Rendered(components=_components(parts, found, values), preview=plain_text(parts, values),
                    empty=[key for key, value in values.items() if not value])


def render_sample(campaign: Campaign, contact: Contact | None) -> Rendered:
    """The message for a test send or a share link: as `contact` would get it (or anyone, from fallbacks and fixed
    texts, when there is no one), with the template's example value (or the {{placeholder}} itself) wherever it
    would still be empty, because WhatsApp refuses an empty parameter. `empty` lists the variables that took one."""
    template = campaign.template
    if template is None:
        raise ValueError(f"campaign {campaign.id} has no template")
    parts, found = _parsed(template)
    values = _values(campaign, found, contact or Contact(attributes={}))
    empty = [key for key, value in values.items() if not value]
    examples = {variable.key: clean(variable.example) or "{{" + variable.name + "}}" for variable in found}
    values = {key: value or examples[key] for key, value in values.items()}
    return Rendered(components=_components(parts, found, values), preview=plain_text(parts, values), empty=empty)


def bubble_for(campaign: Campaign, contact: ContactFields) -> tuple[Bubble, list[str]]:
    """The message bubble as this contact would get it, and the variable keys left empty for them."""
    if campaign.template is None:
        raise ValueError(f"campaign {campaign.id} has no template")
    parts, found = _parsed(campaign.template)
    values = _values(campaign, found, contact)
    return bubble(parts, values), [key for key, value in values.items() if not value]


def share_link(campaign: Campaign, contact: Contact | None) -> str | None:
    """A wa.me link that opens WhatsApp with the message's text (header, body, footer) ready to forward."""
    if campaign.template is None:
        return None
    return SHARE_URL + quote(render_sample(campaign, contact).preview, safe="")


def _values(campaign: Campaign, found: list[TemplateVariable], contact: ContactFields) -> dict[str, str]:
    mapping = campaign.variables or {}
    return {variable.key: value_for(mapping.get(variable.key), contact) for variable in found}


def value_for(mapping: Mapping[str, Any] | None, contact: ContactFields) -> str:
    """One variable's value for a contact: its source, else the fallback, else ""."""
    if not mapping:
        return ""
    source = mapping.get("source")
    if source == "name":
        raw = contact.name
    elif source == "phone":
        raw = contact.phone
    elif source == "attribute":
        raw = (contact.attributes or {}).get(mapping.get("value") or "")
    elif source == "literal":
        raw = mapping.get("value")
    else:
        raw = None
    return clean(raw) or clean(mapping.get("fallback"))


def clean(value: Any) -> str:
    return "" if value is None else _SPACES.sub(" ", str(value)).strip()


def _components(parts: TemplateParts, found: list[TemplateVariable], values: dict[str, str]) -> list[dict]:
    components: list[dict[str, Any]] = []
    by_component: dict[str, list[TemplateVariable]] = {"header": [], "body": []}
    for variable in found:
        if variable.key == MEDIA_KEY:
            components.append(_media_header(variable.kind, values[variable.key]))
        elif variable.component in by_component:
            by_component[variable.component].append(variable)
    for name, builder in (("header", header_text_parameters), ("body", body_parameters)):
        if by_component[name]:
            components.append(builder(_parameter_values(parts.named, by_component[name], values)))
    for variable in found:
        if variable.kind == "url_suffix":
            components.append(url_button(int(variable.name), values[variable.key]))
        elif variable.kind == "coupon_code":
            components.append(copy_code_button(int(variable.name), values[variable.key]))
    return components


def _parameter_values(named: bool, found: list[TemplateVariable], values: dict[str, str]):
    if named:
        return {variable.name: values[variable.key] for variable in found}
    ordered = sorted(found, key=lambda variable: int(variable.name) if variable.name.isdigit() else 0)
    return [values[variable.key] for variable in ordered]  # {{1}}, {{2}}… in number order, as Meta fills them


def _media_header(kind: str, link: str) -> dict[str, Any]:
    if link:
        return header_media(kind, link=link)
    return {"type": "header", "parameters": [{"type": kind, kind: {"link": ""}}]}


def is_mapped(mapping: Mapping[str, Any] | None) -> bool:
    if not mapping or mapping.get("source") not in SOURCES:
        return False
    return mapping["source"] != "attribute" or bool(clean(mapping.get("value")))
