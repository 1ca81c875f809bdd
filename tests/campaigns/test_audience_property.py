"""Property: for any contacts and any audience rules, the SQL filter selects exactly what plain Python selects.

Hypothesis draws small sets of contacts (tags, attributes that are missing, empty, blank, numeric, number-like or
text, opted out, deleted) and audience definitions (tags any/all, exclusions, attribute rules with every operator),
then compares audience.condition and audience.summary against `reference` below, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from app.extensions import db
from app.models import Contact, Tag, contact_tags
from app.services.campaigns import audience
from app.services.contacts.tags import ensure_tags

TAGS = ["VIP", "Pune", "Delhi"]
KEYS = ["city", "spend"]
NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")
WHEN = datetime(2026, 1, 1, tzinfo=UTC)
# Values an attribute may hold: absent (None), empty and blank text, numbers stored as JSON numbers or as text, text
# that only looks like a number, and words in different cases. ASCII only: SQLite lowercases nothing else.
VALUES = st.sampled_from([None, "", "  ", "0", "10", "-3", "2.5", " 10 ", "5.", "1.2.3", "--5", "-", "10x", "n/a",
                          "Pune", "pune ", "PUNE", "New Delhi", 10, -3, 2.5, 0])
WANTED_TEXT = st.sampled_from(["pune", "PUNE", "un", "delhi", "10", "n/a", " new ", "x"])
WANTED_NUMBER = st.sampled_from(["0", "2.5", "10", "-3", "9.99"])

people = st.lists(st.fixed_dictionaries({
    "tags": st.lists(st.sampled_from(TAGS), unique=True, max_size=3),
    "attributes": st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=2),
    "opted_out": st.booleans(),
    "deleted": st.booleans(),
}), max_size=8)


@st.composite
def rules(draw) -> dict[str, Any]:
    tag_keys = st.lists(st.sampled_from(["vip", "VIP", "pune", "delhi", "nosuch"]), unique=True, min_size=1,
                        max_size=2)
    found: dict[str, Any] = {}
    for name in ("tags_any", "tags_all", "exclude_tags"):
        if draw(st.booleans()):
            found[name] = draw(tag_keys)
    found["attributes"] = draw(st.lists(attribute_rule(), max_size=2))
    return {name: value for name, value in found.items() if value}


@st.composite
def attribute_rule(draw) -> dict[str, str]:
    op = draw(st.sampled_from(list(audience.OPERATORS)))
    value = {"gt": WANTED_NUMBER, "lt": WANTED_NUMBER, "equals": WANTED_TEXT, "contains": WANTED_TEXT}.get(op)
    return {"key": draw(st.sampled_from(KEYS)), "op": op, "value": draw(value) if value is not None else ""}


def reference(person: dict[str, Any], rules: dict[str, Any]) -> bool:
    """The audience's meaning, written out in Python."""
    tags = {tag.lower() for tag in person["tags"]}
    wanted = {name: {key.lower() for key in rules.get(name, [])} for name in ("tags_any", "tags_all", "exclude_tags")}
    return (not person["deleted"]
            and (not wanted["tags_any"] or bool(tags & wanted["tags_any"]))
            and wanted["tags_all"] <= tags
            and not tags & wanted["exclude_tags"]
            and all(_rule_holds(person["attributes"].get(rule["key"]), rule) for rule in rules.get("attributes", [])))


def _rule_holds(value: Any, rule: dict[str, str]) -> bool:
    text = None if value is None else str(value)
    wanted = rule["value"].strip().lower()
    empty = text is None or text.strip(" ") == ""
    if rule["op"] in ("empty", "not_empty"):
        return empty == (rule["op"] == "empty")
    if text is None:
        return False
    if rule["op"] == "contains":
        return wanted in text.lower()
    if rule["op"] in ("gt", "lt"):
        number = float(text.strip(" ")) if NUMBER.match(text.strip(" ")) else None
        if number is None:
            return False
        return number > float(wanted) if rule["op"] == "gt" else number < float(wanted)
    return text.strip(" ").lower() == wanted


def _replace_contacts(drawn: list[dict[str, Any]]) -> list[int]:
    """Empty the tables, then store this example's contacts: each example starts from nothing (the `app` fixture
    runs once for all of Hypothesis's examples, so it cannot do this)."""
    for table in (contact_tags, Contact.__table__, Tag.__table__):
        db.session.execute(delete(table))
    contacts = []
    for number, person in enumerate(drawn):
        contact = Contact(phone=f"+91980000{number:04d}", wa_id=f"91980000{number:04d}", name=f"P{number}",
                          attributes=person["attributes"], opted_out_at=WHEN if person["opted_out"] else None,
                          deleted_at=WHEN if person["deleted"] else None)
        contact.tags = ensure_tags(person["tags"])
        db.session.add(contact)
        contacts.append(contact)
    db.session.commit()
    return [contact.id for contact in contacts]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=people, audience_rules=rules())
# Found by this test: SQLite read "5." (and "1.2.3", "--5") as numbers where PostgreSQL does not.
@example(drawn=[{"tags": [], "attributes": {"city": value}, "opted_out": False, "deleted": False}
                for value in ("5.", "1.2.3", "--5", "-", "-2")],
         audience_rules={"attributes": [{"key": "city", "op": "lt", "value": "9.99"}]})
def test_the_sql_filter_selects_what_the_reference_selects(app, drawn, audience_rules):
    with app.app_context():
        ids = _replace_contacts(drawn)
        selected = set(db.session.scalars(select(Contact.id).where(audience.condition(audience_rules))))
        expected = {contact_id for contact_id, person in zip(ids, drawn, strict=True)
                    if reference(person, audience_rules)}
        assert selected == expected, (audience_rules, drawn)
        summary = audience.summary(audience_rules)
        opted_out = sum(1 for contact_id, person in zip(ids, drawn, strict=True)
                        if contact_id in expected and person["opted_out"])
        assert (summary.matching, summary.opted_out, summary.eligible) == \
            (len(expected), opted_out, len(expected) - opted_out)
