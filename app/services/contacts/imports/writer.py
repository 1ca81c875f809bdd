"""One batch of records into the database, set-based: one read, one upsert, one tag insert.

Never touches opted_out_at / opt_out_source (an import never re-subscribes anyone) and never writes to a
soft-deleted contact (the upsert's WHERE keeps it deleted even if it was deleted a moment ago).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, String, Table, Text, any_, bindparam, cast, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.clock import utcnow
from app.extensions import db
from app.models import Contact, ContactImportProblem, contact_tags
from app.services.contacts import phones
from app.services.contacts.imports.records import ContactRecord, Problem
from app.services.contacts.tags import ensure_tags, tag_key

_CONTACT_ARRAYS = {"phone": String(), "wa_id": String(), "name": String(), "attributes": Text(), "timezone": String(),
                   "created_at": DateTime(timezone=True), "updated_at": DateTime(timezone=True)}
_PROBLEM_ARRAYS = {"import_id": Integer(), "row_number": Integer(), "column": String(), "value": String(),
                   "reason": String()}
DELETED_REASON = "This contact was deleted, so it was left alone; an admin can restore it"


@dataclass
class WriteResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class WriteOptions:
    update_existing: bool
    tag_ids: frozenset[int]  # tags added to everyone imported
    phone_column: str


def write_batch(records: list[ContactRecord], options: WriteOptions) -> WriteResult:
    """Create new contacts and update (or leave) existing ones; flushes, the caller commits."""
    records = sorted(records, key=lambda record: record.phone)  # a steady lock order for concurrent imports
    existing = _existing_contacts([record.phone for record in records])
    tag_ids = _row_tag_ids(records)
    linked = _current_links([row.id for row in existing.values()]) if options.update_existing else {}
    plan = _Plan(options, existing, linked)
    for record in records:
        plan.add(record, options.tag_ids | {tag_ids[tag_key(name)] for name in record.tag_names})
    ids = {row.phone: row.id for row in existing.values()} | _upsert(plan.upserts)
    _link_tags([(ids[phone], tag_id) for phone, wanted in plan.links if phone in ids for tag_id in wanted])
    return plan.result


class _Plan:
    """What one batch does to each contact: the rows to upsert, the tags to link and the counts."""

    def __init__(self, options: WriteOptions, existing: dict[str, Any], linked: dict[int, set[int]]) -> None:
        self.options, self.existing, self.linked, self.now = options, existing, linked, utcnow()
        self.result = WriteResult()
        self.upserts: list[dict[str, Any]] = []
        self.links: list[tuple[str, set[int]]] = []

    def add(self, record: ContactRecord, wanted_tags: set[int]) -> None:
        current = self.existing.get(record.phone)
        if current is None:
            self.result.created += 1
            self.upserts.append(_row(record.phone, record.name, record.attributes, self.now))
            self.links.append((record.phone, wanted_tags))
        elif current.deleted_at is not None:
            self.result.skipped += 1
            self.result.problems.append(
                Problem(record.row_number, self.options.phone_column, record.phone, DELETED_REASON))
        elif not self.options.update_existing:
            self.result.unchanged += 1
        else:
            self._update(current, record, wanted_tags)

    def _update(self, current: Any, record: ContactRecord, wanted_tags: set[int]) -> None:
        changed = _merge(current, record, self.now)
        missing = wanted_tags - self.linked.get(current.id, set())
        if changed:
            self.upserts.append(changed)
        if changed or missing:
            self.result.updated += 1
            self.links.append((record.phone, missing))
        else:
            self.result.unchanged += 1


def write_problems(import_id: int, problems: list[Problem]) -> None:
    """Rows for the problem report, in one statement."""
    rows = [{"import_id": import_id, "row_number": problem.row_number, "column": problem.column[:255],
             "value": problem.value[:255], "reason": problem.reason[:255]} for problem in problems]
    table = ContactImportProblem.__table__
    if _dialect() == "postgresql":
        db.session.execute(_insert_from_arrays(table, _PROBLEM_ARRAYS), _as_arrays(rows, _PROBLEM_ARRAYS))
    else:
        db.session.execute(sqlite.insert(table), rows)


def _existing_contacts(phone_numbers: list[str]) -> dict[str, Any]:
    if not phone_numbers:
        return {}
    columns = (Contact.id, Contact.phone, Contact.name, Contact.attributes, Contact.deleted_at)
    rows = db.session.execute(select(*columns).where(_one_of(Contact.phone, phone_numbers, String())))
    return {row.phone: row for row in rows}


def _row_tag_ids(records: list[ContactRecord]) -> dict[str, int]:
    names = {name for record in records for name in record.tag_names}
    return {tag.key: tag.id for tag in ensure_tags(sorted(names))} if names else {}


def _current_links(contact_ids: list[int]) -> dict[int, set[int]]:
    links: dict[int, set[int]] = {}
    if contact_ids:
        statement = select(contact_tags.c.contact_id, contact_tags.c.tag_id).where(
            _one_of(contact_tags.c.contact_id, contact_ids, BigInteger()))
        for contact_id, tag_id in db.session.execute(statement):
            links.setdefault(contact_id, set()).add(tag_id)
    return links


def _merge(current: Any, record: ContactRecord, now) -> dict[str, Any] | None:
    """The updated row when the file changes the name or adds/changes attributes; None when nothing changes."""
    name = record.name or current.name
    attributes = {**(current.attributes or {}), **record.attributes}
    if name == current.name and attributes == (current.attributes or {}):
        return None
    return _row(record.phone, name, attributes, now)


def _row(phone: str, name: str | None, attributes: dict[str, Any], now) -> dict[str, Any]:
    return {"phone": phone, "wa_id": phones.wa_id(phone), "name": name, "attributes": attributes,
            "timezone": phones.time_zone(phone), "created_at": now, "updated_at": now}


def _upsert(rows: list[dict[str, Any]]) -> dict[str, int]:
    """One INSERT … ON CONFLICT (phone) DO UPDATE for the batch; returns phone → id of the rows written."""
    if not rows:
        return {}
    if _dialect() == "postgresql":
        statement = _insert_from_arrays(Contact.__table__, _CONTACT_ARRAYS)
        parameters: Any = _as_arrays(rows, _CONTACT_ARRAYS)
    else:
        statement, parameters = sqlite.insert(Contact.__table__), rows
    statement = statement.on_conflict_do_update(
        index_elements=[Contact.phone],
        # The timezone too: the number is the same, but a contact from before timezones (or an older
        # phonenumbers) gets the current one.
        set_={"name": statement.excluded.name, "attributes": statement.excluded.attributes,
              "timezone": statement.excluded.timezone, "updated_at": statement.excluded.updated_at},
        where=Contact.deleted_at.is_(None),
    ).returning(Contact.phone, Contact.id)
    return {phone: contact_id for phone, contact_id in db.session.execute(statement, parameters)}


def _insert_from_arrays(table: Table, types: dict[str, Any]):
    """PostgreSQL: the batch travels as one array per column (INSERT … SELECT FROM unnest), so the server
    parses one short statement instead of thousands of VALUES tuples."""
    arrays = func.unnest(*(bindparam(name, type_=ARRAY(kind)) for name, kind in types.items()))
    source = arrays.table_valued(*types).render_derived()
    columns = [cast(source.c[name], JSONB) if name == "attributes" else source.c[name] for name in types]
    return postgresql.insert(table).from_select(list(types), select(*columns))


def _as_arrays(rows: list[dict[str, Any]], types: dict[str, Any]) -> dict[str, list[Any]]:
    arrays = {name: [row[name] for row in rows] for name in types}
    if "attributes" in arrays:
        arrays["attributes"] = [json.dumps(value) for value in arrays["attributes"]]
    return arrays


def _link_tags(pairs: list[tuple[int, int]]) -> None:
    if not pairs:
        return
    if _dialect() == "postgresql":
        statement = _insert_from_arrays(contact_tags, {"contact_id": BigInteger(), "tag_id": Integer()})
        parameters: Any = {"contact_id": [pair[0] for pair in pairs], "tag_id": [pair[1] for pair in pairs]}
    else:
        statement = sqlite.insert(contact_tags)
        parameters = [{"contact_id": contact, "tag_id": tag} for contact, tag in pairs]
    db.session.execute(statement.on_conflict_do_nothing(), parameters)


def _one_of(column, values: list[Any], kind):
    """column IN (…); on PostgreSQL = ANY(one array), which plans far faster than thousands of parameters."""
    if _dialect() == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(kind)))
    return column.in_(values)


def _dialect() -> str:
    return db.session.get_bind().dialect.name
