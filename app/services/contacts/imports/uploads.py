"""Receiving a file: size and type checks, storage under the instance folder, and a first look at its columns.

Everything that can be wrong with the file as a whole is found here, before anything is written: a bad
upload creates no import and leaves no file behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from flask import current_app
from werkzeug.datastructures import FileStorage

from app.extensions import db
from app.models.contact_import import ContactImport, ImportStatus
from app.services.admin import settings
from app.services.contacts import phones
from app.services.contacts.imports import readers
from app.services.contacts.imports.columns import ColumnMapping, column_names, guess_mapping
from app.services.contacts.imports.records import is_blank
from app.services.errors import ServiceError

PREVIEW_ROWS = 5
SAMPLE_ROWS = 50
MAX_COLUMNS = 200


@dataclass
class Inspection:
    file_format: str
    sheet_name: str | None
    has_header: bool
    columns: list[str]
    preview_rows: list[list[str]]
    mapping: ColumnMapping
    data_rows: int  # an estimate for progress; exact for the row limit


def imports_folder() -> Path:
    return Path(current_app.config["INSTANCE_DIR"]) / "imports"


def stored_path(contact_import: ContactImport) -> Path:
    return imports_folder() / contact_import.stored_name


def max_rows() -> int:
    return int(current_app.config["IMPORT_MAX_ROWS"])


def max_bytes() -> int:
    return int(current_app.config["MAX_CONTENT_LENGTH"])


def create_import(upload: FileStorage | None, user_id: int | None) -> ContactImport:
    """Save and check an uploaded file; on success an import waits for its column mapping."""
    file_name = _checked_name(upload)
    path = _save(upload)
    return create_import_from_path(path, file_name, user_id)


def create_import_from_path(path: Path, file_name: str, user_id: int | None) -> ContactImport:
    """Check a file already stored in the imports folder (uploads and the benchmark); removes it if unusable."""
    try:
        size = _checked_size(path)
        inspection = inspect_file(path, settings.get("default_region"), max_rows())
    except ServiceError:
        path.unlink(missing_ok=True)
        raise
    contact_import = ContactImport(
        file_name=file_name, stored_name=path.name, file_format=inspection.file_format, file_size=size,
        sheet_name=inspection.sheet_name, status=ImportStatus.MAPPING, has_header=inspection.has_header,
        columns=inspection.columns, preview_rows=inspection.preview_rows, mapping=inspection.mapping.to_json(),
        total_rows=inspection.data_rows, uploaded_by_id=user_id)
    db.session.add(contact_import)
    db.session.commit()
    return contact_import


def inspect_file(path: Path, region: str, row_limit: int) -> Inspection:
    """Header, columns, a preview, a guessed mapping and the row count; raises ServiceError for unusable files."""
    file_format = readers.detect_format(path)
    with readers.open_table(path, file_format, preview=True) as table:
        first = first_rows(table, SAMPLE_ROWS + 1)
        if not first:
            raise ServiceError("The file is empty: there are no rows in it.")
        has_header = not _holds_phone(first[0][1], region)
        header, data = (first[0][1], first[1:]) if has_header else (None, first)
        names = column_names(header, _width(first))
        if not data:
            raise ServiceError(f"The file has column headings ({', '.join(names[:4])}) but no contacts under them.")
        mapping = guess_mapping(names, [values for _, values in data], has_header, region)
        if mapping.phone_column is None:
            raise ServiceError("We couldn't find a column of phone numbers. Give it a heading such as “Phone” "
                               "or “Mobile”, and check that the numbers are in it.")
        data_rows = _data_row_count(table, first[0][0] if has_header else 0, len(data), row_limit)
    preview = [[readers.display_value(value) for value in values[: len(names)]] for _, values in data[:PREVIEW_ROWS]]
    return Inspection(file_format, table.sheet_name, has_header, names, preview, mapping, data_rows)


def first_rows(table: readers.Table, count: int) -> list[tuple[int, list[Any]]]:
    """The first non-blank rows that could be read; an unreadable one is left to the import to report."""
    rows = []
    for row_number, values in table.rows():
        if not is_blank(values) and not isinstance(values, readers.UnreadableRow):
            rows.append((row_number, values))
            if len(rows) == count:
                break
    return rows


def _holds_phone(values: list[Any], region: str) -> bool:
    return any(phones.looks_like_phone(value) and phones.check_phone(value, region)[0] for value in values)


def _width(rows: list[tuple[int, list[Any]]]) -> int:
    width = max(len(_trimmed(values)) for _, values in rows)
    if width > MAX_COLUMNS:
        raise ServiceError(f"The first sheet has more than {MAX_COLUMNS} columns. Is it the list of contacts?")
    return width


def _trimmed(values: list[Any]) -> list[Any]:
    end = len(values)
    while end and (values[end - 1] is None or str(values[end - 1]).strip() == ""):
        end -= 1
    return values[:end]


def _data_row_count(table: readers.Table, header_row: int, sampled: int, row_limit: int) -> int:
    """Rows under the header: the format's quick estimate, counted when it is over the limit (as far as a preview
    reads). 0 when the format has no estimate (an .xlsx without <dimension>): the job counts every row anyway."""
    estimate = table.estimated_rows()
    if estimate is None:
        return 0
    data_rows = max(estimate - header_row, sampled)
    if data_rows > row_limit:
        data_rows = sum(1 for _ in _rows_after(table, header_row, row_limit + 1))
    if data_rows > row_limit:
        raise ServiceError(f"The file has more than {row_limit:,} rows. Split it into smaller files and import each.")
    return data_rows


def _rows_after(table: readers.Table, header_row: int, stop_after: int):
    count = 0
    for row_number, values in table.rows():
        if row_number > header_row and not is_blank(values):
            count += 1
            yield row_number
            if count >= stop_after:
                return


def _checked_name(upload: FileStorage | None) -> str:
    if upload is None or not upload.filename:
        raise ServiceError("Choose a file to upload.", field="file")
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1][:255]
    if Path(name).suffix.lower() not in readers.EXTENSIONS:
        raise ServiceError("Upload an Excel workbook (.xlsx or .xls) or a CSV file.", field="file")
    return name


def _save(upload: FileStorage) -> Path:
    """Copy the upload to the imports folder, stopping as soon as it passes the size limit."""
    folder = imports_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid4().hex}{Path(upload.filename or '').suffix.lower()}"
    written, limit = 0, max_bytes()
    with path.open("wb") as target:
        while chunk := upload.stream.read(1 << 20):
            written += len(chunk)
            if written > limit:
                break
            target.write(chunk)
    if written > limit:
        path.unlink(missing_ok=True)
        raise ServiceError(_too_large_message(limit), field="file")
    return path


def _checked_size(path: Path) -> int:
    size = path.stat().st_size
    if size == 0:
        raise ServiceError("The file is empty.", field="file")
    if size > max_bytes():
        raise ServiceError(_too_large_message(max_bytes()), field="file")
    return size


def _too_large_message(limit: int) -> str:
    return f"The file is larger than the {limit // (1024 * 1024)} MB upload limit. Split it into smaller files."
