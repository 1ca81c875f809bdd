"""Filling a campaign's template for one contact, and what stops a campaign from launching.

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

from sqlalchemy import func, or_, select, true

from app.extensions import db
from app.models import Campaign, Contact, MessageTemplate, TemplateStatus
from app.services.campaigns import audience
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
STATUS_WORDS = {TemplateStatus.PENDING: "still waiting for Meta's approval", TemplateStatus.REJECTED: "rejected",
                TemplateStatus.PAUSED: "paused by Meta", TemplateStatus.DISABLED: "disabled by Meta"}


@dataclass(frozen=True)
class Rendered:
    components: list[dict[str, Any]]  # exactly the Cloud API's template.components
    preview: str  # readable text of the message
    empty: list[str]  # variable keys still empty after fallbacks


@dataclass(frozen=True)
class EmptyCounts:
    total: int  # eligible recipients with at least one empty parameter
    by_key: dict[str, int]


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


def empty_counts(campaign: Campaign) -> EmptyCounts:
    """How many eligible recipients would get each variable empty (after fallbacks), in one query."""
    conditions = _empty_conditions(campaign)
    if not conditions:
        return EmptyCounts(0, {})
    counts = db.session.execute(
        select(func.count().filter(or_(*conditions.values())),
               *[func.count().filter(condition) for condition in conditions.values()])
        .select_from(Contact).where(audience.eligible_condition(campaign.audience))).one()
    return EmptyCounts(total=counts[0], by_key={key: count for key, count in zip(conditions, counts[1:], strict=True)
                                                if count})


def _empty_conditions(campaign: Campaign) -> dict[str, Any]:
    if campaign.template is None:
        return {}
    mapping = campaign.variables or {}
    conditions = {variable.key: _empty_condition(mapping.get(variable.key))
                  for variable in template_variables(campaign.template) if is_mapped(mapping.get(variable.key))}
    return {key: condition for key, condition in conditions.items() if condition is not None}


def _empty_condition(mapping: Mapping[str, Any]):
    """SQL for "this contact's value would be empty", or None when it never can be."""
    if clean(mapping.get("fallback")):
        return None
    source = mapping["source"]
    if source == "name":
        return audience.name_is_empty()
    if source == "attribute":
        return audience.attribute_is_empty(clean(mapping.get("value")))
    if source == "literal" and not clean(mapping.get("value")):
        return true()
    return None


@dataclass(frozen=True)
class SamplePreview:
    contact: Contact
    bubble: Bubble
    empty: list[str]


def sample_previews(campaign: Campaign, limit: int = 3) -> list[SamplePreview]:
    """The message as a few real recipients would get it; one of them lacks a value, if anyone does."""
    if campaign.template is None:
        return []
    contacts = audience.sample(campaign.audience, limit)
    conditions = _empty_conditions(campaign)
    if conditions and len(contacts) == limit:
        lacking = audience.sample(campaign.audience, 1, extra=or_(*conditions.values()))
        if lacking and lacking[0] not in contacts:
            contacts[-1] = lacking[0]
    parts, found = _parsed(campaign.template)
    previews = []
    for contact in contacts:
        values = _values(campaign, found, contact)
        previews.append(SamplePreview(contact, bubble(parts, values), [key for key, value in values.items()
                                                                       if not value]))
    return previews


def launch_problems(campaign: Campaign, counts: audience.AudienceSummary | None = None,
                    empty: EmptyCounts | None = None) -> list[str]:
    """Sentences saying what blocks launching this campaign; empty when it may go.

    The composer passes the counts it already has, so a live preview does not count the audience twice.
    """
    problems = _template_problems(campaign)
    if not campaign.phone_number_id:
        problems.append("WhatsApp is not set up: no sender phone number id is configured.")
    counts = counts or audience.summary(campaign.audience)
    if counts.matching == 0:
        problems.append("No contacts match this audience.")
    elif counts.eligible == 0:
        problems.append("Everyone in this audience has opted out, so no one would receive it.")
    if campaign.template is not None:
        problems.extend(_mapping_problems(campaign, empty))
    return problems


def _template_problems(campaign: Campaign) -> list[str]:
    template = campaign.template
    if template is None:
        return ["Choose a message template."]
    if template.status != TemplateStatus.APPROVED:
        state = STATUS_WORDS.get(template.status, template.status.lower())
        return [f"The template “{template.name}” is {state}; choose an approved template."]
    return []


def _mapping_problems(campaign: Campaign, empty: EmptyCounts | None) -> list[str]:
    found = template_variables(campaign.template)
    mapping = campaign.variables or {}
    unmapped = [variable.label for variable in found if not is_mapped(mapping.get(variable.key))]
    if unmapped:
        return [f"Choose what fills {', '.join(unmapped)}."]
    if campaign.accept_fallbacks:
        return []
    total = (empty or empty_counts(campaign)).total
    if total:
        people = "recipient" if total == 1 else "recipients"
        return [f"{total:,} {people} would get an empty value; add a fallback or accept sending them empty values."]
    return []
