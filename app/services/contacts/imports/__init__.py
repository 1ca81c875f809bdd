"""Importing contacts from Excel and CSV files.

The flow: `create_import` checks and stores an upload and guesses its columns (status "mapping");
`choose_header_row` re-reads it when the guessed headings row was wrong;
`start_import` confirms the mapping staff chose (a `MappingChoice`; status "queued") and the caller enqueues
`jobs.imports`; `run_import`, run by that job, streams the rows in batches into contacts; `cancel_import` stops it.
An API bulk upsert too large for one request is an import too (source "api", app.services.api.bulk): its contacts
wait in the database instead of a file, and `run_batches` writes them with the same counters and problem report.
"""

from app.models.contact_import import ImportStatus
from app.services.contacts.imports.columns import ROLE_LABELS, ColumnMapping, MappingChoice, Role
from app.services.contacts.imports.queries import get_import, problem_report_lines, recent_imports
from app.services.contacts.imports.readers import format_note
from app.services.contacts.imports.runs import (
    BATCH_SIZE,
    NotAllowed,
    cancel_import,
    choose_header_row,
    mark_failed,
    record_job,
    run_batches,
    run_import,
    start_import,
)
from app.services.contacts.imports.uploads import create_import, create_import_from_path, imports_folder, max_bytes

__all__ = [
    "BATCH_SIZE",
    "ROLE_LABELS",
    "ColumnMapping",
    "ImportStatus",
    "MappingChoice",
    "NotAllowed",
    "Role",
    "cancel_import",
    "choose_header_row",
    "create_import",
    "create_import_from_path",
    "format_note",
    "get_import",
    "imports_folder",
    "mark_failed",
    "max_bytes",
    "problem_report_lines",
    "recent_imports",
    "record_job",
    "run_batches",
    "run_import",
    "start_import",
]
