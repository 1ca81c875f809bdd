"""Receiving a file: size and type checks, storage under the instance folder, and a first look at its columns.

Everything that can be wrong with the file as a whole is found here, before anything is written: a bad
upload creates no import and leaves no file behind.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
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
from app.services.contacts.imports.columns import ColumnMapping, column_names, guess_mapping, known_headings
from app.services.contacts.imports.records import is_blank
from app.services.errors import ServiceError

PREVIEW_ROWS = 5
SAMPLE_ROWS = 50
HEADER_SEARCH_ROWS = 10  # the headings are looked for in this many first non-blank rows (titles may sit above)
MAX_COLUMNS = 200


@dataclass
class Inspection:
    file_format: str
    sheet_name: str | None
    header_row: int  # the headings' row as the sheet numbers it; 0 when the file has none
    header_choices: list[tuple[int, str]]  # the rows that could hold the headings, each with its first cells
    columns: list[str]
    preview_rows: list[list[str]]
    mapping: ColumnMapping
    data_rows: int  # an estimate for progress; exact for the row limit

    @property
    def has_header(self) -> bool:
        return self.header_row > 0


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
    contact_import = ContactImport(file_name=file_name, stored_name=path.name, file_size=size,
                                   status=ImportStatus.MAPPING, uploaded_by_id=user_id)
    apply_inspection(contact_import, inspection)
    db.session.add(contact_import)
    db.session.commit()
    return contact_import


def apply_inspection(contact_import: ContactImport, inspection: Inspection) -> None:
    """What the mapping page shows of a file: its columns, a preview and the guessed mapping."""
    contact_import.file_format, contact_import.sheet_name = inspection.file_format, inspection.sheet_name
    contact_import.has_header, contact_import.columns = inspection.has_header, inspection.columns
    contact_import.preview_rows, contact_import.total_rows = inspection.preview_rows, inspection.data_rows
    # The rows offered as headings are only needed while mapping, so they ride along in the mapping's JSON.
    contact_import.mapping = {**inspection.mapping.to_json(), "header_choices": inspection.header_choices}


def inspect_file(path: Path, region: str, row_limit: int, header_row: int | None = None) -> Inspection:
    """Headings (guessed, or in the row given; 0 for none), columns, a preview, a guessed mapping and the row count;
    raises ServiceError for unusable files. Only the first rows are read, except to count them."""
    file_format = readers.detect_format(path)
    with readers.open_table(path, file_format, preview=True) as table:
        first = first_rows(table, HEADER_SEARCH_ROWS + SAMPLE_ROWS)
        if not first:
            raise ServiceError("The file is empty: there are no rows in it.")
        top = first[:HEADER_SEARCH_ROWS]
        index = guess_header(top, region) if header_row is None else _header_index(top, header_row)
        header = first[index] if index is not None else None
        data = first[index + 1:] if index is not None else first
        data = data[:SAMPLE_ROWS]
        names = column_names(header[1] if header else None, _width(([header] if header else []) + data))
        if not data:
            raise ServiceError(f"The file has column headings ({', '.join(names[:4])}) but no contacts under them.")
        mapping = guess_mapping(names, [values for _, values in data], header is not None, region)
        if mapping.phone_column is None:
            raise ServiceError("We couldn't find a column of phone numbers. Give it a heading such as “Phone” "
                               "or “Mobile”, and check that the numbers are in it.")
        number = header[0] if header else 0
        data_rows = _data_row_count(table, number, len(data), row_limit)
    preview = [[readers.display_value(value) for value in values[: len(names)]] for _, values in data[:PREVIEW_ROWS]]
    choices = [(row, _row_summary(values)) for row, values in top]
    return Inspection(file_format, table.sheet_name, number, choices, names, preview,
                      replace(mapping, header_row=number), data_rows)


def guess_header(rows: list[tuple[int, list[Any]]], region: str) -> int | None:
    """Which of the first rows holds the headings (its index), None when the file has none.

    The headings sit above the first row with a phone number (titles may sit above them): of those rows, the one
    naming the most columns we know (phone, mobile, name, tags …), else the fullest, nearest the data on a tie.
    With no phone number in sight, only a row naming known columns is taken over the first row.
    """
    above = list(itertools.takewhile(lambda row: not _holds_phone(row[1], region), rows))
    if not above:
        return None
    scores = [(known_headings(values), _filled(values)) for _, values in above]
    if len(above) == len(rows):  # no phone number in the first rows: nothing says where the data starts
        best = max(range(len(above)), key=lambda index: (scores[index][0], -index))
        return best if scores[best][0] else 0
    return max(range(len(above)), key=lambda index: (*scores[index], index))


def _header_index(rows: list[tuple[int, list[Any]]], header_row: int) -> int | None:
    if header_row == 0:
        return None
    for index, (row, _values) in enumerate(rows):
        if row == header_row:
            return index
    raise ServiceError("Choose the row with the headings from the list.")


def _filled(values: list[Any]) -> int:
    return sum(1 for value in values if value is not None and str(value).strip())


def _row_summary(values: list[Any]) -> str:
    """A row's first cells, for the list of rows that could hold the headings."""
    cells = [readers.display_value(value, 30) for value in values if value is not None and str(value).strip()]
    return readers.display_value(", ".join(cells[:5]), 60)


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
