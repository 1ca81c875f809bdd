"""Contacts through the API: the dashboard's filters with cursor paging, upsert by phone (one or up to 10,000 in a
set-based batch, through the contact import's writer; more are a job, see `bulk`), delete, tags and opt-out."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import delete, select

from app.clock import utcnow
from app.extensions import db
from app.models import Contact, OptOutSource, contact_tags
from app.services.admin import audit
from app.services.api import problems
from app.services.api.keys import Caller
from app.services.api.outbound import events as outbound_events
from app.services.api.problems import Problem, field_error
from app.services.api.schemas import BulkContactsIn, ContactIn, ContactQuery
from app.services.contacts import edits, phones, search, tags
from app.services.contacts.imports.records import ContactRecord
from app.services.contacts.imports.writer import WriteOptions, WriteResult, write_batch
from app.services.errors import NotFound, ServiceError

DELETED = "This contact was deleted; restore it in the dashboard first."
# Upserts update what they find; a problem's column is the field's name within one contact of the call.
WRITE_OPTIONS = WriteOptions(update_existing=True, tag_ids=frozenset(), phone_column="phone")


@dataclass
class Page:
    rows: list[Contact]
    next_cursor: str | None


def region() -> str:
    return current_app.config["DEFAULT_REGION"]


def list_contacts(query: ContactQuery) -> Page:
    """One page of contacts matching the dashboard's filters, newest (or oldest) first, after `cursor`."""
    criteria = search.ContactFilter(q=query.q.strip(), tag=query.tag.strip(), status=query.status,
                                    created_from=query.created_from.isoformat() if query.created_from else "",
                                    created_to=query.created_to.isoformat() if query.created_to else "")
    statement = search.matching(criteria, region()).with_only_columns(Contact)
    newest = query.order == "newest"
    if query.cursor is not None:
        after = _cursor(query.cursor)
        statement = statement.where(Contact.id < after if newest else Contact.id > after)
    statement = statement.order_by(Contact.id.desc() if newest else Contact.id.asc()).limit(query.limit + 1)
    rows = list(db.session.scalars(statement))
    more = len(rows) > query.limit
    return Page(rows[:query.limit], str(rows[query.limit - 1].id) if more else None)


def _cursor(value: str) -> int:
    if not value.isdigit() or len(value) > 19:
        raise problems.invalid([field_error("cursor", "Not a cursor this API gave out.")])
    return int(value)


def get_contact(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("That contact does not exist.")
    return contact


def upsert(data: ContactIn) -> tuple[Contact, bool]:
    """Create or update the contact with this phone; (contact, created). Commits."""
    result = _write([record_from(data, "")])
    if result.skipped:
        raise Problem(409, DELETED, [field_error("phone", DELETED)])
    db.session.commit()
    contact = db.session.scalar(select(Contact).where(Contact.phone == parse_phone(data.phone, "phone"))
                                .execution_options(populate_existing=True))
    return contact, bool(result.created)


def bulk_upsert(data: BulkContactsIn) -> WriteResult:
    """Up to API_BULK_MAX_CONTACTS contacts in one transaction: all of them, or (any bad one) none. Commits.
    Larger calls are jobs (app.services.api.bulk), per-row like a file import."""
    records: dict[str, ContactRecord] = {}
    errors: list[dict[str, str]] = []
    for index, item in enumerate(data.contacts):
        try:
            record = record_from(item, f"contacts[{index}].", index)
        except Problem as problem:
            errors.extend(problem.errors)
            continue
        records[record.phone] = record  # the same number twice: the later one wins, as in a file
    if errors:
        raise problems.invalid(errors, f"{len(errors):,} contacts are not right; nothing was saved.")
    result = _write(list(records.values()))
    db.session.commit()
    return result


def record_from(data: ContactIn, prefix: str, index: int = 0) -> ContactRecord:
    """One contact of a call as the import writer's record; a 422 Problem naming the field when it is not right."""
    try:
        attributes = edits.clean_attributes(list(data.attributes.items()))
        tag_names = tags.clean_tag_names(data.tags)
    except ServiceError as error:
        raise problems.invalid([field_error(prefix + (error.field or "attributes"), error.message)]) from error
    name = " ".join((data.name or "").split()) or None
    return ContactRecord(parse_phone(data.phone, prefix + "phone"), index, name, attributes, tag_names)


def parse_phone(raw: str, field_name: str) -> str:
    try:
        return phones.normalise_phone(raw, region())
    except phones.InvalidPhone as error:
        raise problems.invalid([field_error(field_name, f"“{raw[:64]}” is not a phone number we can use: "
                                                        f"{error.reason[:1].lower()}{error.reason[1:]}.")]) from error


def _write(records: list[ContactRecord]) -> WriteResult:
    return write_batch(records, WRITE_OPTIONS)


def delete_contact(contact_id: int, caller: Caller) -> None:
    """Move the contact to the deleted bin (the dashboard can restore it). Commits."""
    contact = get_contact(contact_id)
    if contact.deleted_at is None:
        contact.deleted_at = utcnow()
        _audit("contact.delete", f"Deleted {contact.phone}", contact, caller)
    db.session.commit()


def add_tags(contact_id: int, names: list[str]) -> Contact:
    contact = _active(contact_id)
    wanted = tags.ensure_tags(names)
    contact.tags = list({tag.id: tag for tag in [*contact.tags, *wanted]}.values())
    db.session.commit()
    return contact


def remove_tag(contact_id: int, name: str) -> Contact:
    contact = _active(contact_id)
    key = tags.tag_key(name)
    tag_ids = [tag.id for tag in contact.tags if tag.key == key]
    if tag_ids:
        db.session.execute(delete(contact_tags).where(contact_tags.c.contact_id == contact.id,
                                                      contact_tags.c.tag_id.in_(tag_ids)))
        db.session.commit()
        db.session.refresh(contact)
    return contact


def opt_out(contact_id: int, caller: Caller) -> Contact:
    """Opt the contact out of every future send; the first opt-out's time and source are kept. Commits."""
    contact = _active(contact_id)
    now = utcnow()
    if contact.record_opt_out(OptOutSource.API, now):
        _audit("contact.opt_out", f"Opted out {contact.phone}", contact, caller)
        outbound_events.contact_opted(contact, True, OptOutSource.API, now, now)  # the outbox, if anyone listens
    db.session.commit()
    return contact


def _active(contact_id: int) -> Contact:
    contact = get_contact(contact_id)
    if contact.deleted_at is not None:
        raise Problem(409, DELETED)
    return contact


def _audit(action: str, summary: str, contact: Contact, caller: Caller) -> None:
    audit.record(action, summary, target=contact.phone, actor=caller.audit_name)
