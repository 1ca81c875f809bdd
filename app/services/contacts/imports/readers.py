"""Uploaded files as rows, whatever their format: content sniffing, CSV encodings and delimiters, .xls, .xlsx.

Every reader yields (row number as the spreadsheet shows it, list of cell values) and streams, except xlrd,
which has no streaming mode (legacy .xls files are small: 65,536 rows at most).
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from app.services.contacts.imports.xlsx import CORRUPT, XlsxWorkbook
from app.services.errors import ServiceError

log = logging.getLogger(__name__)

CSV, XLSX, XLS = "csv", "xlsx", "xls"
EXTENSIONS = {".csv": CSV, ".tsv": CSV, ".txt": CSV, ".xlsx": XLSX, ".xls": XLS}
NOT_A_SPREADSHEET = "This file is not a spreadsheet. Upload an Excel workbook (.xlsx or .xls) or a CSV file."
PASSWORD_PROTECTED = ("This workbook is password-protected. Remove the password in Excel (File → Info) "
                      "and upload it again.")
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_DELIMITERS = (",", ";", "\t", "|")
_SEP_HINT = re.compile(r"^\ufeff?sep=(.)\s*$")  # Excel's own "sep=;" first line


class Table(Protocol):
    sheet_name: str | None

    def estimated_rows(self) -> int | None: ...

    def rows(self) -> Iterator[tuple[int, list[Any]]]: ...


def detect_format(path: Path) -> str:
    """csv, xlsx or xls from the file's first bytes (a renamed file still reads); raises for anything else."""
    with path.open("rb") as handle:
        head = handle.read(8192)
    if not head.strip(b"\r\n\t \x00"):
        raise ServiceError("The file is empty.")
    if head.startswith(_ZIP):
        return XLSX
    if head.startswith(_OLE):
        return XLS
    _check_text(head)
    return CSV


@contextmanager
def open_table(path: Path, file_format: str) -> Iterator[Table]:
    if file_format == XLSX:
        with XlsxWorkbook(str(path)) as workbook:
            yield workbook
    elif file_format == XLS:
        yield XlsTable(path)
    else:
        yield CsvTable(path)


def _check_text(head: bytes) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return
    if b"\x00" in head or head.startswith((b"%PDF", b"\x89PNG", b"GIF8", b"\xff\xd8\xff")):
        raise ServiceError(NOT_A_SPREADSHEET)
    start = head.lstrip().lower()
    if start.startswith((b"<!doctype html", b"<html", b"<table", b"<meta")):
        raise ServiceError("This file is a web page (HTML) saved with a spreadsheet name. "
                           "Open it in Excel, save it as .xlsx or .csv and upload that.")
    if start.startswith(b"<?xml"):
        raise ServiceError("XML spreadsheets are not supported. Open the file in Excel and save it as .xlsx.")


class CsvTable:
    """A delimited text file: UTF-8 (with or without BOM), UTF-16 or Windows-1252; , ; tab or | separated."""

    sheet_name = None

    def __init__(self, path: Path) -> None:
        self.path = path
        self.encoding = detect_encoding(path)
        self.delimiter, self.skip_hint_line = detect_delimiter(path, self.encoding)

    def estimated_rows(self) -> int:
        newlines, last = 0, b""
        with self.path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                newlines += chunk.count(b"\n")
                last = chunk
        return newlines + (0 if last.endswith(b"\n") else 1) - self.skip_hint_line

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        with self.path.open(encoding=self.encoding, newline="") as handle:
            if self.skip_hint_line:
                handle.readline()
            reader = csv.reader(handle, delimiter=self.delimiter)
            try:
                yield from enumerate(reader, start=1)
            except csv.Error as error:
                raise ServiceError(f"This CSV file could not be read past line {reader.line_num}: {error}.") from error


def detect_encoding(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8", "cp1252"):
        if _decodes(path, encoding):
            return encoding
    return "latin-1"  # decodes any byte; cp1252 only fails on its five unassigned bytes


def _decodes(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_delimiter(path: Path, encoding: str) -> tuple[str, bool]:
    """(delimiter, whether the first line is Excel's "sep=" hint) from the first 50 lines."""
    with path.open(encoding=encoding, newline="") as handle:
        sample = handle.read(64 * 1024)
        complete = not handle.read(1)
    lines = sample.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines if complete else lines[:-1]
    hint = _SEP_HINT.match(lines[0]) if lines else None
    if hint:
        return hint.group(1), True
    return max(_DELIMITERS, key=lambda delimiter: _consistency(lines[:50], delimiter)), False


def _consistency(lines: list[str], delimiter: str) -> tuple[int, int]:
    """How many lines share the most common field count (above one), and that count."""
    counts = [len(fields) for fields in csv.reader(lines, delimiter=delimiter) if any(f.strip() for f in fields)]
    width, lines_with_width = Counter(counts).most_common(1)[0] if counts else (1, 0)
    return (lines_with_width, width) if width > 1 else (0, 1)


class XlsTable:
    """A legacy Excel 97-2003 workbook, read with xlrd."""

    def __init__(self, path: Path) -> None:
        import xlrd

        try:
            _refuse_encrypted_ooxml(path)
            self._book = xlrd.open_workbook(str(path), on_demand=True)
            self._sheet = self._first_visible_sheet()
        except ServiceError:
            raise
        except xlrd.XLRDError as error:
            raise ServiceError(_xls_error_message(error)) from error
        except Exception as error:  # xlrd raises struct, assertion and index errors on damaged files
            log.info("unreadable .xls %s: %r", path.name, error)
            raise ServiceError(CORRUPT) from error
        self.sheet_name = self._sheet.name

    def _first_visible_sheet(self):
        visibility = getattr(self._book, "_sheet_visibility", [])
        for index in range(self._book.nsheets):
            if index >= len(visibility) or visibility[index] == 0:
                return self._book.sheet_by_index(index)
        return self._book.sheet_by_index(0)

    def estimated_rows(self) -> int:
        return self._sheet.nrows

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        datemode = self._book.datemode
        for index in range(self._sheet.nrows):
            yield index + 1, [_xls_value(cell, datemode) for cell in self._sheet.row(index)]


def _xls_value(cell, datemode: int) -> Any:
    import xlrd

    if cell.ctype == xlrd.XL_CELL_TEXT:
        return cell.value
    if cell.ctype == xlrd.XL_CELL_NUMBER:
        return int(cell.value) if float(cell.value).is_integer() else cell.value
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(cell.value, datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return cell.value
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    return None


def _xls_error_message(error: Exception) -> str:
    text = str(error).lower()
    if "encrypted" in text:
        return PASSWORD_PROTECTED
    if "can't find workbook" in text or "unsupported format" in text:
        return NOT_A_SPREADSHEET
    return CORRUPT


def _refuse_encrypted_ooxml(path: Path) -> None:
    """A password-protected .xlsx is an OLE2 container holding an EncryptedPackage stream, not a zip."""
    from xlrd.compdoc import CompDoc

    names = {entry.name for entry in CompDoc(path.read_bytes(), logfile=_NullLog()).dirlist}
    if "EncryptedPackage" in names or "EncryptionInfo" in names:
        raise ServiceError(PASSWORD_PROTECTED)


class _NullLog:
    """xlrd writes warnings about odd containers to a log file; nobody reads them here."""

    def write(self, _text: str) -> None:
        pass


def display_value(value: Any, limit: int = 80) -> str:
    """A cell as short text for previews and problem reports."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, datetime):
        value = value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
