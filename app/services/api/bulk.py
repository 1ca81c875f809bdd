"""Bulk upserts too large for one request (more than API_BULK_MAX_CONTACTS): a contact import with source "api".

The request checks the body's shape (all of it, or 422 and nothing stored), stores the contacts in the database and
answers 202; the job (jobs.imports.upsert_contacts_in_bulk) writes them through the imports' own writer, counters and
problem report. Unlike a call the size of one transaction, a job is per-row, as a file import is: good contacts are
saved batch by batch and each one that is not (a phone number that does not parse, a deleted contact …) is listed in
the status document under its place in the call, e.g. `contacts[12031].phone`. Any key with contacts:read may read
any of these status documents: they hold nothing a contacts:read key cannot list anyway, and a business's systems
often read with another key than the one they write with.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import ContactImport, ContactImportPayload, ContactImportProblem
from app.models.contact_import import ImportSource, ImportStatus
from app.services.admin import audit
from app.services.api import contacts
from app.services.api.keys import Caller
from app.services.api.problems import Problem
from app.services.api.schemas import BulkContactsIn
from app.services.contacts.imports import BATCH_SIZE, run_batches
from app.services.contacts.imports.records import Batch, ContactRecord
from app.services.contacts.imports.records import Problem as RowProblem
from app.services.errors import NotFound, ServiceError

ERRORS_SHOWN = 1_000  # in the status document; the count says how many there are in all
PAYLOAD_GONE = "The contacts sent with this call are no longer stored; send them again."


@dataclass
class JobStatus:
    contact_import: ContactImport
    errors: list[ContactImportProblem]


def needs_job(data: BulkContactsIn) -> bool:
    """True when the call is too large for one transaction; 413 when it is too large even for a job."""
    count, cap = len(data.contacts), current_app.config["API_BULK_JOB_MAX_CONTACTS"]
    if count > cap:
        raise Problem(413, f"Send at most {cap:,} contacts per call; this one has {count:,}. Split it into calls of "
                           f"up to {cap:,}.")
    return count > current_app.config["API_BULK_MAX_CONTACTS"]


def queue_bulk(data: BulkContactsIn, caller: Caller) -> ContactImport:
    """Store the call's contacts as an import waiting for its job (the caller enqueues it). Commits."""
    body = data.model_dump_json().encode()
    count = len(data.contacts)
    contact_import = ContactImport(
        file_name=f"{count:,} contacts sent through the API by {caller.audit_name}"[:255], stored_name="",
        file_format="json", file_size=len(body), status=ImportStatus.QUEUED, source=ImportSource.API,
        api_key_id=caller.id, has_header=False, columns=[], preview_rows=[], mapping={}, total_rows=count)
    db.session.add(contact_import)
    db.session.flush()
    db.session.add(ContactImportPayload(import_id=contact_import.id, body=body))
    audit.record("import.start", f"Started importing {count:,} contacts sent through the API",
                 target=f"import:{contact_import.id}", actor=caller.audit_name)
    db.session.commit()
    return contact_import


def job_status(import_id: int) -> JobStatus:
    """An API import and its first problems; 404 for file imports and imports that do not exist."""
    contact_import = db.session.get(ContactImport, import_id)
    if contact_import is None or contact_import.source != ImportSource.API:
        raise NotFound("There is no such bulk job.")
    errors = db.session.scalars(select(ContactImportProblem).where(ContactImportProblem.import_id == import_id)
                                .order_by(ContactImportProblem.row_number, ContactImportProblem.id)
                                .limit(ERRORS_SHOWN))
    return JobStatus(contact_import, list(errors))


def run_bulk(import_id: int) -> None:
    """The job's work: the stored contacts, checked row by row, written batch by batch with the import's counters."""
    run_batches(import_id, _batches, contacts.WRITE_OPTIONS)


def _batches(contact_import: ContactImport) -> Iterator[Batch]:
    payload = db.session.get(ContactImportPayload, contact_import.id)
    if payload is None:
        raise ServiceError(PAYLOAD_GONE)
    data = BulkContactsIn.model_validate_json(payload.body)
    first = Batch()
    records: dict[str, ContactRecord] = {}
    for index, item in enumerate(data.contacts):
        try:
            record = contacts.record_from(item, "", index)
        except Problem as problem:
            first.invalid += 1
            first.problems.extend(RowProblem(index, error["field"], item.phone[:255], error["message"])
                                  for error in problem.errors)
            continue
        if records.pop(record.phone, None) is not None:
            first.duplicates += 1  # the later one wins, as within one call (re-inserted at the end, in call order)
        records[record.phone] = record
    ordered = list(records.values())
    for start in range(0, max(len(ordered), 1), BATCH_SIZE):
        batch = first if start == 0 else Batch()
        batch.records = ordered[start:start + BATCH_SIZE]
        # Rows not saved count as processed with the first batch, which carries their problems.
        batch.rows = len(batch.records) + batch.invalid + batch.duplicates
        yield batch


def field_of(problem: ContactImportProblem) -> str:
    """Where a stored problem is in the call, e.g. `contacts[3].phone`."""
    return f"contacts[{problem.row_number}].{problem.column}"
