"""Reading imports back: one import, the recent list, and the problem report as CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

from sqlalchemy import select

from app.extensions import db
from app.models.contact_import import ContactImport, ContactImportProblem
from app.services.errors import NotFound

REPORT_HEADER = ("Row", "Column", "Value", "Reason")
# A report cell starting with = + - @ could run as a formula in Excel; plain phone numbers are left as they are.
_FORMULA_START = re.compile(r"^[=@\t\r]|^[+\-](?![\d\s().\-]*$)")


def get_import(import_id: int) -> ContactImport:
    contact_import = db.session.get(ContactImport, import_id)
    if contact_import is None:
        raise NotFound("There is no such import.")
    return contact_import


def recent_imports(limit: int = 20) -> list[ContactImport]:
    statement = select(ContactImport).order_by(ContactImport.created_at.desc(), ContactImport.id.desc()).limit(limit)
    return list(db.session.scalars(statement))


def problem_report_lines(import_id: int) -> Iterator[str]:
    """The problem report as CSV text, streamed: a BOM so Excel reads Hindi names right, then one line a problem."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_HEADER)
    yield "\ufeff" + _drain(buffer)
    statement = (select(ContactImportProblem).where(ContactImportProblem.import_id == import_id)
                 .order_by(ContactImportProblem.id).execution_options(yield_per=2_000))
    for count, problem in enumerate(db.session.scalars(statement), start=1):
        writer.writerow((problem.row_number, _safe(problem.column), _safe(problem.value), problem.reason))
        if count % 500 == 0:
            yield _drain(buffer)
    yield _drain(buffer)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _safe(text: str) -> str:
    return "'" + text if _FORMULA_START.match(text) else text
