"""Uploaded files as rows, whatever their format: content sniffing, CSV encodings and delimiters, .xls, .xlsx.

Every reader yields (row number as the spreadsheet shows it, list of cell values) and streams, except xlrd,
which has no streaming mode (legacy .xls files are small: 65,536 rows at most). A row that can't be read on its
own (far too long, or a quote never closed) comes as an `UnreadableRow` instead of cells, so it is reported and
the rows after it are still read; a file that can't be read past some point raises ServiceError.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import logging
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.services.contacts.imports.table import Row, Table, UnreadableRow, display_value
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
MAX_ROW_CHARS = 100_000  # a CSV row longer than this is reported, not read (csv's own field limit is 131,072)


# What each format is called: as the file is (with an article), and as we read it.
FORMAT_WORDS = {CSV: ("a CSV file", "CSV"), XLSX: ("an Excel workbook (.xlsx)", "an Excel workbook"),
                XLS: ("an Excel 97-2003 workbook (.xls)", "an Excel 97-2003 workbook")}


def format_note(file_name: str, file_format: str) -> str | None:
    """A sentence when the file's content is not what its name says (it is read by content, so it still works)."""
    suffix = Path(file_name).suffix.lower()
    named = EXTENSIONS.get(suffix)
    if named is None or named == file_format or file_format not in FORMAT_WORDS:
        return None
    what, read_as = FORMAT_WORDS[file_format]
    return f"This file is {what} named {suffix}; we read it as {read_as}."


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
def open_table(path: Path, file_format: str, preview: bool = False) -> Iterator[Table]:
    """The file as rows; preview=True (the upload) reads no more of an .xlsx sheet than a preview needs."""
    if file_format == XLSX:
        with XlsxWorkbook(str(path), preview) as workbook:
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

    def rows(self) -> Iterator[tuple[int, Row]]:
        with self.path.open(encoding=self.encoding, newline="") as handle:
            if self.skip_hint_line:
                handle.readline()
            lines = _RowLines(handle)
            reader = csv.reader(lines, delimiter=self.delimiter)
            for row_number in itertools.count(1):
                lines.start_row()
                try:
                    values: Row = next(reader)
                except StopIteration:
                    return
                except _Unreadable as unreadable:
                    values = lines.skip_row(unreadable.reason)
                except csv.Error as error:
                    raise ServiceError(f"This CSV file could not be read past row {row_number}: {error}.") from error
                yield row_number, values


class _Unreadable(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


UNCLOSED_QUOTE = 'A quote (") opened in this row is never closed; the row was not imported'
QUOTE_TOO_LONG = f'A quote (") opened in this row is not closed within {MAX_ROW_CHARS:,} characters; not imported'
ROW_TOO_LONG = f"This row is longer than {MAX_ROW_CHARS:,} characters; it was not imported"


class _RowLines:
    """The file's lines for csv.reader, kept a row at a time so that an unreadable row can be skipped alone.

    csv.reader asks for another line within a row only while a quoted cell is open, so running out of lines
    mid-row means a quote was never closed. Either that or a row past MAX_ROW_CHARS makes the row unreadable:
    it is reported, and reading resumes on the line after its first, so the rows a stray quote would swallow
    (into one cell, as Excel does) are read one by one. No line is held longer than MAX_ROW_CHARS.
    """

    def __init__(self, handle) -> None:
        self.handle = handle
        self.again: list[str] = []  # lines to read again after an unreadable row, last first
        self.row: list[str] = []
        self.chars = 0
        self.cut: str | None = None  # the line whose end is still in the file, past MAX_ROW_CHARS

    def __iter__(self) -> _RowLines:
        return self

    def __next__(self) -> str:
        line = self.again.pop() if self.again else self._read()
        if not line:
            if self.row:
                raise _Unreadable(UNCLOSED_QUOTE)
            raise StopIteration
        self.row.append(line)
        self.chars += len(line)
        if self.chars > MAX_ROW_CHARS:
            raise _Unreadable(QUOTE_TOO_LONG if len(self.row) > 1 else ROW_TOO_LONG)
        return line

    def start_row(self) -> None:
        self.row, self.chars = [], 0

    def skip_row(self, reason: str) -> UnreadableRow:
        """The row as a problem; its lines after the first are read again."""
        first, *rest = self.row
        self.again.extend(reversed(rest))
        if first is self.cut:
            while (part := self.handle.readline(MAX_ROW_CHARS)) and not part.endswith(("\n", "\r")):
                pass
            self.cut = None
        return UnreadableRow(display_value(first), reason)

    def _read(self) -> str:
        line = self.handle.readline(MAX_ROW_CHARS + 1)
        if len(line) > MAX_ROW_CHARS and not line.endswith(("\n", "\r")):
            self.cut = line
        return line


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
