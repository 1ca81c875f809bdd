"""Changing contacts: add and edit, opt-out, delete and restore, one at a time or in bulk."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.clock import utcnow
from app.extensions import db
from app.models import Contact, OptOutSource, contact_tags
from app.services import spreadsheets
from app.services.admin import audit
from app.services.api.outbound import events as outbound_events
from app.services.contacts import phones, search, tags
from app.services.errors import NotFound, ServiceError

MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_LENGTH = 500


class BulkAction(StrEnum):
    ADD_TAG = "add_tag"
    REMOVE_TAG = "remove_tag"
    OPT_OUT = "opt_out"
    DELETE = "delete"
    RESTORE = "restore"


def normalise_phone(raw: str, region: str) -> str:
    """E.164 for a number typed in any format; ServiceError naming the problem otherwise."""
    try:
        return phones.normalise_phone(raw, region)
    except phones.InvalidPhone as error:
        # The import's row report says "No phone number"; a form asks for one.
        reason = "Enter a phone number" if error.reason == phones.NO_NUMBER else error.reason
        raise ServiceError(f"{reason}.", field="phone") from error


def clean_attributes(pairs: list[tuple[str, str]]) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for key, value in pairs:
        key, value = " ".join((key or "").split()), (value or "").strip()
        if not key:
            if value:
                raise ServiceError(f"The value “{value[:30]}” needs a field name.", field="attributes")
            continue
        if len(key) > 64 or len(value) > MAX_ATTRIBUTE_LENGTH:
            raise ServiceError(f"Field “{key[:30]}” is too long.", field="attributes")
        if key.startswith(spreadsheets.FORMULA_TRIGGERS):
            # Field names become export headings; a spreadsheet would run "=…" there as a formula.
            raise ServiceError(f"Field name “{key[:30]}” cannot start with =, +, - or @.", field="attributes")
        attributes[key] = value
    if len(attributes) > MAX_ATTRIBUTES:
        raise ServiceError(f"A contact can have at most {MAX_ATTRIBUTES} fields.", field="attributes")
    return attributes


def save_contact(contact_id: int | None, phone: str, name: str, tag_text: str, attributes: dict[str, str],
                 region: str) -> Contact:
    """Create (contact_id None) or update a contact; raises ServiceError with the field at fault."""
    e164 = normalise_phone(phone, region)
    contact = _load(contact_id) if contact_id else Contact(attributes={})
    _refuse_taken_number(e164, contact_id)
    before = _Snapshot.of(contact) if contact_id else None
    contact.phone, contact.wa_id, contact.timezone = e164, e164.lstrip("+"), phones.time_zone(e164)
    contact.name = " ".join((name or "").split()) or None
    contact.attributes = attributes
    contact.tags = tags.ensure_tags(tags.parse_tag_list(tag_text))
    db.session.add(contact)
    if before is None:
        audit.record("contact.add", f"Added {contact.phone}", target=contact.phone)
    else:
        _record_edit(before, _Snapshot.of(contact))
    db.session.commit()
    return contact


@dataclass(frozen=True)
class _Snapshot:
    phone: str
    name: str | None
    attributes: dict[str, Any]
    tags: frozenset[str]

    @classmethod
    def of(cls, contact: Contact) -> _Snapshot:
        return cls(contact.phone, contact.name, dict(contact.attributes or {}), frozenset(t.name for t in contact.tags))


def _record_edit(before: _Snapshot, after: _Snapshot) -> None:
    """One audit entry naming what changed: the name and field values are personal data, so only which ones
    changed is kept (like the delete and opt-out entries, the number names the contact); tag names are ours."""
    old, new = before.attributes, after.attributes
    changed = {
        "phone": before.phone != after.phone,
        "name": before.name != after.name,
        "fields_added": sorted(new.keys() - old.keys()),
        "fields_changed": sorted(key for key in new.keys() & old.keys() if new[key] != old[key]),
        "fields_removed": sorted(old.keys() - new.keys()),
        "tags_added": sorted(after.tags - before.tags),
        "tags_removed": sorted(before.tags - after.tags),
    }
    if not any(changed.values()):
        return
    details = {key: value for key, value in changed.items() if value and value is not True}
    details["changed"] = [key for key, value in changed.items() if value is True]
    if changed["phone"]:
        details["previous_phone"] = before.phone
    audit.record("contact.edit", f"Edited {after.phone}: {_what_changed(changed, before.phone)}", target=after.phone,
                 details=details)


def _what_changed(changed: dict[str, Any], previous_phone: str) -> str:
    """"number (was +91…), name, fields city and plan, tags added vip", for the log's one-line summary."""
    labels = {"fields_added": "added fields", "fields_changed": "changed fields", "fields_removed": "removed fields",
              "tags_added": "added tags", "tags_removed": "removed tags"}
    parts = [f"number (was {previous_phone})"] if changed["phone"] else []
    parts += ["name"] if changed["name"] else []
    parts += [f"{labels[key]} {', '.join(changed[key])}" for key in labels if changed[key]]
    return "; ".join(parts)


def change_phone(contact_id: int, phone: str, region: str) -> Contact:
    """Move a contact to a new number (a customer who changed theirs), keeping everything else. Commits."""
    contact, e164 = _not_deleted(contact_id), normalise_phone(phone, region)
    if e164 == contact.phone:
        raise ServiceError(f"{e164} is already this contact's number.", field="phone")
    _refuse_taken_number(e164, contact_id)
    old = contact.phone
    contact.phone, contact.wa_id, contact.timezone = e164, e164.lstrip("+"), phones.time_zone(e164)
    audit.record("contact.phone", f"Changed the number {old} to {e164}", target=e164)
    db.session.commit()
    return contact


def _refuse_taken_number(e164: str, contact_id: int | None) -> None:
    clash = db.session.scalar(select(Contact).where(Contact.phone == e164, Contact.id != (contact_id or 0)))
    if clash:
        where = " (in the deleted contacts; an admin can restore it)" if clash.deleted_at else ""
        raise ServiceError(f"Another contact already has the number {e164}{where}.", field="phone")


def _load(contact_id: int) -> Contact:
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        raise NotFound("That contact does not exist.")
    return contact


def _not_deleted(contact_id: int) -> Contact:
    contact = _load(contact_id)
    if contact.deleted_at is not None:
        raise ServiceError("This contact is deleted: restore it first.")
    return contact


def opt_out(contact_id: int, source: str = OptOutSource.STAFF) -> Contact:
    """Opt a contact out of all future sends; the first opt-out's time and source are kept."""
    contact = _not_deleted(contact_id)
    now = utcnow()
    if contact.record_opt_out(source, now):
        if source == OptOutSource.STAFF:
            audit.record("contact.opt_out", f"Opted out {contact.phone}", target=contact.phone)
        outbound_events.contact_opted(contact, True, source, now, now)  # the outbox, if anyone listens
        db.session.commit()
    return contact


def undo_staff_opt_out(contact_id: int) -> Contact:
    """Only a staff opt-out can be undone by staff: a customer's own STOP is final until they write START."""
    contact = _not_deleted(contact_id)
    if contact.opted_out_at is None:
        return contact
    if contact.opt_out_source != OptOutSource.STAFF:
        raise ServiceError("This customer opted out themselves; only they can opt back in (by sending START).")
    contact.opted_out_at, contact.opt_out_source = None, None
    audit.record("contact.undo_opt_out", f"Undid the staff opt-out of {contact.phone}", target=contact.phone)
    now = utcnow()
    outbound_events.contact_opted(contact, False, None, now, now)  # the outbox, if anyone listens
    db.session.commit()
    return contact


def set_deleted(contact_id: int, deleted: bool) -> Contact:
    """Move a contact to the deleted bin or back; ServiceError when it is there already (or not there)."""
    contact = _load(contact_id)
    if (contact.deleted_at is not None) == deleted:
        raise ServiceError("This contact is already deleted." if deleted else "This contact is not deleted.")
    contact.deleted_at = utcnow() if deleted else None
    audit.record("contact.delete" if deleted else "contact.restore",
                 f"{'Deleted' if deleted else 'Restored'} {contact.phone}", target=contact.phone)
    db.session.commit()
    return contact


def apply_bulk(action: str, ids: list[int] | None, criteria: search.ContactFilter | None, tag_name: str,
               region: str) -> int:
    """Apply one action set-based to the chosen ids or to everything matching the filter; returns rows changed."""
    if not ids and criteria is None:
        raise ServiceError("Select at least one contact.")
    target = Contact.id.in_(ids) if ids else Contact.id.in_(search.matching_ids(criteria, region))
    handler = {
        BulkAction.ADD_TAG: _bulk_add_tag,
        BulkAction.REMOVE_TAG: _bulk_remove_tag,
        BulkAction.OPT_OUT: _bulk_opt_out,
        BulkAction.DELETE: _bulk_delete,
        BulkAction.RESTORE: _bulk_restore,
    }.get(action)
    if handler is None:
        raise ServiceError("Choose an action.")
    changed = handler(target, tag_name)
    scope = f"{len(ids)} selected" if ids else f"all matching {criteria.to_args(page=1) or 'everything'}"
    audit.record(f"contact.bulk_{action}", f"Bulk {action.replace('_', ' ')} ({scope}): {changed} changed",
                 details={"action": action, "tag": tag_name, "changed": changed})
    db.session.commit()
    return changed


def _single_tag(tag_name: str):
    names = tags.parse_tag_list(tag_name)
    if len(names) != 1:
        raise ServiceError("Enter one tag name.", field="tag")
    return tags.ensure_tags(names)[0]


def _bulk_add_tag(target, tag_name: str) -> int:
    tag = _single_tag(tag_name)
    rows = select(Contact.id, tag.id).where(target, Contact.deleted_at.is_(None))
    statement = (_insert(contact_tags).from_select(["contact_id", "tag_id"], rows).on_conflict_do_nothing()
                 .returning(contact_tags.c.contact_id))
    # RETURNING, because drivers disagree on rowcount for INSERT … SELECT … ON CONFLICT.
    return len(db.session.execute(statement).all())


def _bulk_remove_tag(target, tag_name: str) -> int:
    tag = _single_tag(tag_name)
    ids = select(Contact.id).where(target)
    statement = delete(contact_tags).where(contact_tags.c.tag_id == tag.id, contact_tags.c.contact_id.in_(ids))
    return db.session.execute(statement).rowcount


def _bulk_opt_out(target, _tag_name: str) -> int:
    now = utcnow()
    statement = (update(Contact).where(target, Contact.opted_out_at.is_(None))
                 .values(opted_out_at=now, opt_out_source=OptOutSource.STAFF, updated_at=now)
                 .returning(Contact.id, Contact.phone, Contact.name))
    changed = db.session.execute(statement.execution_options(synchronize_session=False)).all()
    # One insert for the whole selection, in the same transaction as the opt-outs.
    outbound_events.contacts_opted(changed, True, OptOutSource.STAFF, now, now)
    return len(changed)


def _bulk_delete(target, _tag_name: str) -> int:
    now = utcnow()
    statement = update(Contact).where(target, Contact.deleted_at.is_(None)).values(deleted_at=now, updated_at=now)
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def _bulk_restore(target, _tag_name: str) -> int:
    statement = (update(Contact).where(target, Contact.deleted_at.is_not(None))
                 .values(deleted_at=None, updated_at=utcnow()))
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def _insert(table):
    """INSERT … ON CONFLICT for whichever database we are on (both SQLite and PostgreSQL support it)."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)
