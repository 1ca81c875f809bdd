"""Who a campaign goes to: tag and attribute rules over contacts, stored as Campaign.audience.

The shape (documented on the model): {"tags_any": [keys], "tags_all": [keys], "exclude_tags": [keys],
"attributes": [{"key": str, "op": "equals|contains|empty|not_empty|gt|lt", "value": str}]}; {} means everyone.
The composer hands its choice over as an `AudienceChoice`; `build` checks it and returns that shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Numeric, and_, case, cast, exists, func, not_, or_, select

from app.extensions import db
from app.models import Contact, Tag, contact_tags
from app.services.contacts.tags import tag_key
from app.services.errors import ServiceError

OPERATORS = {"equals": "is", "contains": "contains", "empty": "is empty", "not_empty": "is not empty",
             "gt": "is more than", "lt": "is less than"}
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
MAX_RULES = 20
KEY_SAMPLE = 500  # recent contacts read to suggest attribute names; enough to know the shop's fields


@dataclass(frozen=True)
class AudienceChoice:
    """Who the composer says to send to, as typed; `build` turns it into the stored shape above."""

    everyone: bool = True  # False: filter by the tags and rules below
    match_all_tags: bool = False  # contacts need all of `tags`, not just any
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    rules: tuple[tuple[str, str, str], ...] = ()  # (contact field, operator, value); rows without a field are ignored


@dataclass(frozen=True)
class AudienceSummary:
    matching: int  # contacts matching the rules, opted-out ones included
    opted_out: int  # of those, opted out: they will be recorded as skipped
    eligible: int  # will actually be sent to


def condition(audience: Mapping[str, Any] | None):
    """Contacts matching the audience's rules that are not deleted; opted-out contacts are included."""
    audience = audience or {}
    clauses = [Contact.deleted_at.is_(None)]
    if audience.get("tags_any"):
        clauses.append(_tagged(audience["tags_any"]))
    clauses.extend(_tagged([key]) for key in audience.get("tags_all") or [])
    if audience.get("exclude_tags"):
        clauses.append(not_(_tagged(audience["exclude_tags"])))
    clauses.extend(_attribute_condition(rule) for rule in audience.get("attributes") or [])
    return and_(*clauses)


def eligible_condition(audience: Mapping[str, Any] | None):
    """The contacts a send would actually reach: matching and not opted out."""
    return and_(condition(audience), Contact.opted_out_at.is_(None))


def summary(audience: Mapping[str, Any] | None) -> AudienceSummary:
    """Counts for the composer and launch checks, in one query."""
    matching, opted_out = db.session.execute(
        select(func.count(), func.count(Contact.opted_out_at)).where(condition(audience))).one()
    return AudienceSummary(matching=matching, opted_out=opted_out, eligible=matching - opted_out)


def summary_for(choice: AudienceChoice) -> tuple[AudienceSummary | None, str | None]:
    """Live counts for the composer's audience choice, or the reason its rules cannot be used."""
    try:
        return summary(build(choice)), None
    except ServiceError as error:
        return None, error.message


def sample(audience: Mapping[str, Any] | None, limit: int = 3, extra=None) -> list[Contact]:
    """A few eligible contacts, oldest first; `extra` narrows them further (e.g. to those missing a field)."""
    statement = select(Contact).where(eligible_condition(audience))
    if extra is not None:
        statement = statement.where(extra)
    return list(db.session.scalars(statement.order_by(Contact.id).limit(limit)))


def attribute_value(key: str):
    """A contact attribute as text (NULL when absent), on SQLite and PostgreSQL alike."""
    return Contact.attributes[key].as_string()


def attribute_is_empty(key: str):
    value = attribute_value(key)
    return or_(value.is_(None), func.trim(value) == "")


def name_is_empty():
    return or_(Contact.name.is_(None), func.trim(Contact.name) == "")


def _tagged(keys: list[str]):
    tag_ids = select(Tag.id).where(Tag.key.in_([tag_key(key) for key in keys]))
    return exists().where(contact_tags.c.contact_id == Contact.id, contact_tags.c.tag_id.in_(tag_ids))


def _attribute_condition(rule: Mapping[str, Any]):
    key, op, wanted = str(rule.get("key", "")), rule.get("op"), str(rule.get("value") or "").strip()
    value = attribute_value(key)
    if op == "empty":
        return attribute_is_empty(key)
    if op == "not_empty":
        return not_(attribute_is_empty(key))
    if op == "contains":
        return func.lower(value).contains(wanted.lower(), autoescape=True)
    if op in ("gt", "lt"):
        number = _as_number(value)
        return number > float(wanted) if op == "gt" else number < float(wanted)
    return func.lower(func.trim(value)) == wanted.lower()


def _as_number(value):
    """The attribute as a number, or NULL when it is not one (so "n/a" never counts as 0)."""
    text = func.trim(value)
    if db.session.get_bind().dialect.name == "postgresql":
        return case((text.op("~")(r"^-?[0-9]+(\.[0-9]+)?$"), cast(text, Numeric)), else_=None)
    # SQLite has no regular expressions; GLOB checks the same shape: one optional minus, digits, and at most one
    # dot with digits after it (so "5.", "1.2.3" and "--5" are text here too, as on PostgreSQL).
    digits = case((text.op("GLOB")("-*"), func.substr(text, 2)), else_=text)
    is_number = and_(digits.op("GLOB")("[0-9]*"), not_(digits.op("GLOB")("*[^0-9.]*")),
                     not_(digits.op("GLOB")("*.*.*")), not_(digits.op("GLOB")("*.")))
    return case((is_number, cast(text, Float)), else_=None)


def build(choice: AudienceChoice) -> dict[str, Any]:
    """The stored audience for the composer's choice; ServiceError(field="audience") names a bad rule."""
    if choice.everyone:
        return {}
    audience: dict[str, Any] = {"tags_all" if choice.match_all_tags else "tags_any": _tag_keys(choice.tags),
                                "exclude_tags": _tag_keys(choice.exclude_tags)}
    typed = [(key, op, value) for key, op, value in choice.rules if (key or "").strip()]
    known = known_attribute_keys() if typed else []
    rules = [_rule(as_spelled_on_contacts(" ".join(key.split()), known), op, value) for key, op, value in typed]
    if len(rules) > MAX_RULES:
        raise ServiceError(f"Use at most {MAX_RULES} field conditions.", field="audience")
    audience["attributes"] = rules
    return {name: value for name, value in audience.items() if value}


def choice_for(audience: Mapping[str, Any] | None) -> AudienceChoice:
    """A stored audience as the composer shows it again."""
    saved = audience or {}
    return AudienceChoice(everyone=not saved, match_all_tags=bool(saved.get("tags_all")),
                          tags=tuple(saved.get("tags_all") or saved.get("tags_any") or ()),
                          exclude_tags=tuple(saved.get("exclude_tags") or ()),
                          rules=tuple((rule["key"], rule["op"], rule.get("value", ""))
                                      for rule in saved.get("attributes") or []))


def _tag_keys(values: list[str]) -> list[str]:
    return list(dict.fromkeys(tag_key(value) for value in values if value and value.strip()))


def _rule(key: str, op: str, value: str) -> dict[str, str]:
    key, value = " ".join(key.split()), (value or "").strip()
    if op not in OPERATORS:
        raise ServiceError(f"Choose a condition for the field “{key}”.", field="audience")
    if op in ("gt", "lt") and not NUMBER.match(value):
        raise ServiceError(f"Enter a number to compare “{key}” with, such as 500 or 2.5.", field="audience")
    if op in ("equals", "contains") and not value:
        raise ServiceError(f"Enter a value for the condition on “{key}”.", field="audience")
    return {"key": key, "op": op, "value": "" if op in ("empty", "not_empty") else value}


def describe(audience: Mapping[str, Any] | None, tag_names: Mapping[str, str] | None = None) -> str:
    """A short sentence for lists: “Tagged VIP or Mumbai · not tagged Delhi · city is Pune”."""
    audience, names = audience or {}, tag_names or {}
    parts = []
    for field, prefix, joiner in (("tags_any", "Tagged", "or"), ("tags_all", "Tagged", "and"),
                                  ("exclude_tags", "not tagged", "or")):
        if audience.get(field):
            parts.append(f"{prefix} " + f" {joiner} ".join(names.get(key, key) for key in audience[field]))
    for rule in audience.get("attributes") or []:
        parts.append(f"{rule['key']} {OPERATORS.get(rule['op'], rule['op'])} {rule.get('value', '')}".strip())
    return " · ".join(parts) if parts else "All contacts"


def as_spelled_on_contacts(key: str, known: list[str]) -> str:
    """A typed field name in the spelling contacts use when only its case differs ("city" for an imported "City"):
    fields are matched exactly, and a near miss would silently fall back for every recipient."""
    if key in known:
        return key
    return next((spelled for spelled in known if spelled.casefold() == key.casefold()), key)


def known_attribute_keys(extra: list[str] | None = None) -> list[str]:
    """Attribute names seen on recent contacts (for suggestions), plus any already in use."""
    rows = db.session.scalars(select(Contact.attributes).where(Contact.deleted_at.is_(None))
                              .order_by(Contact.id.desc()).limit(KEY_SAMPLE))
    keys = {key for attributes in rows if isinstance(attributes, dict) for key in attributes}
    return sorted(keys | set(extra or []), key=str.casefold)
