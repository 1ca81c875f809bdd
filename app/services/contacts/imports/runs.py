"""Starting, running and cancelling an import; the one place import statuses change."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

from sqlalchemy import delete, update

from app.clock import utcnow
from app.extensions import db
from app.models.contact_import import ContactImport, ContactImportPayload, ImportSource, ImportStatus
from app.services.admin import audit, settings
from app.services.contacts.imports import readers
from app.services.contacts.imports.columns import ColumnMapping, MappingChoice, mapping_for
from app.services.contacts.imports.queries import get_import
from app.services.contacts.imports.records import Batch, RecordBuilder, is_blank
from app.services.contacts.imports.uploads import apply_inspection, inspect_file, max_rows, stored_path
from app.services.contacts.imports.writer import WriteOptions, write_batch, write_problems
from app.services.contacts.tags import ensure_tags
from app.services.errors import ServiceError

log = logging.getLogger(__name__)

BATCH_SIZE = 5_000
MAX_STORED_PROBLEMS = 100_000  # the report lists this many; the counters still count every one

TRANSITIONS: dict[str, set[str]] = {
    ImportStatus.MAPPING: {ImportStatus.QUEUED, ImportStatus.CANCELLED},
    ImportStatus.QUEUED: {ImportStatus.RUNNING, ImportStatus.CANCELLED, ImportStatus.FAILED},
    ImportStatus.RUNNING: {ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.CANCELLED},
}


class NotAllowed(ServiceError):
    pass


def transition(import_id: int, status: ImportStatus, **values: Any) -> bool:
    """Move an import to `status` if its current status allows it; atomic, so a cancel and a start can't both win."""
    sources = [source for source, targets in TRANSITIONS.items() if status in targets]
    statement = (update(ContactImport).where(ContactImport.id == import_id, ContactImport.status.in_(sources))
                 .values(status=status, **values).execution_options(synchronize_session="fetch"))
    return db.session.execute(statement).rowcount == 1


def start_import(import_id: int, choice: MappingChoice, actor) -> ContactImport:
    """Confirm the column mapping and queue the import; the caller enqueues the job."""
    contact_import = _manageable(import_id, actor)
    if contact_import.status != ImportStatus.MAPPING:
        raise ServiceError("This import has already been started.")
    header_row = ColumnMapping.from_json(contact_import.mapping, contact_import.columns).header_row
    mapping = replace(mapping_for(choice, contact_import.columns), header_row=header_row)
    contact_import.mapping = mapping.to_json()
    if not transition(contact_import.id, ImportStatus.QUEUED):
        db.session.rollback()
        raise ServiceError("This import was cancelled or started by someone else.")
    audit.record("import.start", f"Started importing {contact_import.file_name}", target=contact_import.file_name)
    db.session.commit()
    return contact_import


def choose_header_row(import_id: int, header_row: int, actor) -> ContactImport:
    """Read the file again with its headings in `header_row` (0: it has none), when the guess was wrong."""
    contact_import = _manageable(import_id, actor)
    if contact_import.status != ImportStatus.MAPPING:
        raise ServiceError("This import has already been started.")
    region = contact_import.mapping.get("region") or settings.get("default_region")
    apply_inspection(contact_import, inspect_file(stored_path(contact_import), region, max_rows(), header_row))
    db.session.commit()
    return contact_import


def record_job(import_id: int, job_id: str) -> None:
    db.session.execute(update(ContactImport).where(ContactImport.id == import_id).values(rq_job_id=job_id))
    db.session.commit()


def cancel_import(import_id: int, actor) -> ContactImport:
    """Stop an import: at once if it hasn't started, else the job stops after its current batch."""
    contact_import = _manageable(import_id, actor)
    if contact_import.finished:
        raise ServiceError("This import has already finished.")
    not_started = contact_import.status != ImportStatus.RUNNING
    message = f"Cancelled by {actor.email} before it started."
    name = contact_import.file_name
    audit.record("import.cancel", f"Cancelled the import of {name}", target=name)
    if not_started and transition(import_id, ImportStatus.CANCELLED, finished_at=utcnow(), message=message):
        db.session.commit()
        _discard_rows(contact_import)
    else:
        contact_import.cancel_requested_at = utcnow()
        db.session.commit()
    return contact_import


def mark_failed(import_id: int, message: str) -> None:
    """Record an import as failed (the job's last resort); keeps whatever batches were already committed."""
    db.session.rollback()
    contact_import = get_import(import_id)
    if transition(import_id, ImportStatus.FAILED, finished_at=utcnow(), message=message[:2000]):
        db.session.commit()
        _discard_rows(contact_import)


def run_import(import_id: int) -> None:
    """The job's work: read the whole file once (nothing is written if it can't be), then write it in batches,
    keeping the counters, and stop when asked to."""
    if not transition(import_id, ImportStatus.RUNNING, started_at=utcnow()):
        db.session.commit()
        return  # cancelled before a worker picked it up
    db.session.commit()
    contact_import = get_import(import_id)
    try:
        status, message = _import_rows(contact_import)
    except ServiceError as error:  # the file turned out unreadable part-way
        db.session.rollback()
        status, message = ImportStatus.FAILED, f"{error.message} {_kept_message(contact_import)}"
    _finish(contact_import, status, message)


def run_batches(import_id: int, batches: Callable[[ContactImport], Iterable[Batch]], options: WriteOptions) -> None:
    """The job's work for an import whose rows come from elsewhere than a file (the API's large bulk upserts):
    `batches` yields them already checked; each is written with its counters, and the import stops when asked to."""
    if not transition(import_id, ImportStatus.RUNNING, started_at=utcnow()):
        db.session.commit()
        return  # cancelled before a worker picked it up
    db.session.commit()
    contact_import = get_import(import_id)
    status, message = ImportStatus.COMPLETED, None
    try:
        for batch in batches(contact_import):
            if not _write(contact_import, batch, options):
                status, message = ImportStatus.CANCELLED, _cancelled_message(contact_import)
                break
    except ServiceError as error:
        db.session.rollback()
        status, message = ImportStatus.FAILED, f"{error.message} {_kept_message(contact_import)}"
    _finish(contact_import, status, message)


def _discard_rows(contact_import: ContactImport) -> None:
    """A finished import's rows are not kept: the uploaded file, or the contacts an API call sent."""
    if contact_import.source == ImportSource.API:
        db.session.execute(delete(ContactImportPayload).where(ContactImportPayload.import_id == contact_import.id))
        db.session.commit()
    else:
        stored_path(contact_import).unlink(missing_ok=True)


def _manageable(import_id: int, actor) -> ContactImport:
    contact_import = get_import(import_id)
    if not (actor.is_admin or contact_import.uploaded_by_id == actor.id):
        raise NotAllowed("Only the person who uploaded this file, or an admin, can do that.")
    return contact_import


def _import_rows(contact_import: ContactImport) -> tuple[ImportStatus, str | None]:
    mapping = ColumnMapping.from_json(contact_import.mapping, contact_import.columns)
    builder = RecordBuilder(mapping)
    options = WriteOptions(update_existing=mapping.update_existing, phone_column=builder.phone_column,
                           tag_ids=frozenset(tag.id for tag in ensure_tags(mapping.tags)))
    limit, path = max_rows(), stored_path(contact_import)
    if not path.exists():  # e.g. a worker on another machine that doesn't share the instance folder
        raise ServiceError(f"The uploaded file is missing from {path.parent} on the worker. Upload it again.")
    with readers.open_table(path, contact_import.file_format) as table:
        header = _Header(mapping.header_row, contact_import.has_header)
        contact_import.total_rows = _count_rows(table, header, limit)
        db.session.commit()
        batch = Batch()
        for row_number, values in _data_rows(table, header):
            builder.add(batch, row_number, values)
            if batch.rows >= BATCH_SIZE:
                if not _write(contact_import, batch, options):
                    return ImportStatus.CANCELLED, _cancelled_message(contact_import)
                batch = Batch()
        _write(contact_import, batch, options)
    return ImportStatus.COMPLETED, None


class _Header(NamedTuple):
    row: int | None  # the headings' row as the sheet numbers it, 0 for none; None for imports made before it
    present: bool


def _count_rows(table: readers.Table, header: _Header, limit: int) -> int:
    """Read the whole file before writing anything: a file that can't be read to the end imports nothing."""
    count = 0
    for count, _ in enumerate(_data_rows(table, header), start=1):
        if count > limit:
            raise ServiceError(f"The file has more than {limit:,} rows. Split it into smaller files and import each.")
    return count


def _data_rows(table: readers.Table, header: _Header) -> Iterator[tuple[int, readers.Row]]:
    """Non-blank rows under the headings; rows above them (a title) are neither imported nor reported."""
    header_pending = header.present and header.row is None  # older imports: the first readable row
    for row_number, values in table.rows():
        if is_blank(values) or (header.row is not None and row_number <= header.row):
            continue
        if header_pending and not isinstance(values, readers.UnreadableRow):
            header_pending = False
            continue
        yield row_number, values


def _write(contact_import: ContactImport, batch: Batch, options: WriteOptions) -> bool:
    """Write one batch and its counters in one transaction; False when someone asked to cancel."""
    result = write_batch(batch.records, options)
    _save_problems(contact_import, batch.problems + result.problems)
    contact_import.processed_rows += batch.rows
    contact_import.invalid_count += batch.invalid
    contact_import.duplicate_count += batch.duplicates
    contact_import.created_count += result.created
    contact_import.updated_count += result.updated
    contact_import.unchanged_count += result.unchanged
    contact_import.skipped_count += result.skipped
    contact_import.total_rows = max(contact_import.total_rows, contact_import.processed_rows)
    db.session.commit()
    return contact_import.cancel_requested_at is None  # re-read after the commit: a request from the web counts


def _save_problems(contact_import: ContactImport, problems: list) -> None:
    room = MAX_STORED_PROBLEMS - min(contact_import.problem_count, MAX_STORED_PROBLEMS)
    if problems and room > 0:
        write_problems(contact_import.id, problems[:room])
    contact_import.problem_count += len(problems)


def _kept_message(contact_import: ContactImport) -> str:
    """After a rollback: what the committed batches left (none when the check before writing failed)."""
    if not contact_import.processed_rows:
        return "Nothing was imported."
    return f"The first {contact_import.processed_rows:,} rows were imported and have been kept."


def _cancelled_message(contact_import: ContactImport) -> str:
    return (f"Cancelled after {contact_import.processed_rows:,} rows. "
            "Contacts imported before then have been kept.")


def _finish(contact_import: ContactImport, status: ImportStatus, message: str | None) -> None:
    values: dict[str, Any] = {"finished_at": utcnow(), "message": message}
    if status == ImportStatus.COMPLETED:
        values["total_rows"] = contact_import.processed_rows
    transition(contact_import.id, status, **values)
    db.session.commit()
    _discard_rows(contact_import)
    log.info("contact import %s %s: %s rows", contact_import.id, status, contact_import.processed_rows)
