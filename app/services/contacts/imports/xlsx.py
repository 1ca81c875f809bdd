"""A streaming .xlsx reader: the first visible sheet's rows, straight from the zip with expat.

openpyxl's read-only mode streams too, but builds an object per cell: on a 100,000-row sheet it took
13 s here against 1.7 s for this reader, so the import reads sheet XML itself and borrows only
openpyxl's number-format rules for telling dates from numbers.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from xml.parsers import expat

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

from app.services.errors import ServiceError

CORRUPT = "This Excel file could not be read: it looks damaged. Open it in Excel, save it again and re-upload it."
MAX_XML_BYTES = 2 * 1024**3  # bounds what a small zip may expand to (zip bombs)
_CHUNK = 256 * 1024
_DAMAGED = (zipfile.BadZipFile, zlib.error, expat.ExpatError, ValueError, EOFError)  # what broken files raise
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"[A-Z]*\d*:?[A-Z]*(\d+)\"")


def local(name: str) -> str:
    """Element name without a namespace prefix: some writers emit <x:row>."""
    return name[name.find(":") + 1 :]


class XlsxWorkbook:
    """One workbook opened for streaming; use as a context manager."""

    def __init__(self, path: str) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
            self._locate_parts()
            self._shared = self._read_shared_strings()
            self._date_styles = self._read_date_styles()
        except ServiceError:
            raise
        except (*_DAMAGED, KeyError, OSError) as error:
            raise ServiceError(CORRUPT) from error

    def __enter__(self) -> XlsxWorkbook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if isinstance(self._shared, _SharedStrings):
            self._shared.close()
        self._zip.close()

    def estimated_rows(self) -> int | None:
        """The last row number from the sheet's <dimension>, when the writer recorded one."""
        with self._zip.open(self._sheet_path) as sheet:
            match = _DIMENSION.search(sheet.read(4096))
        return int(match.group(1)) if match and int(match.group(1)) > 1 else None

    def rows(self) -> Iterator[tuple[int, list[Any]]]:
        """(spreadsheet row number, cell values) for each stored row; values are str, int, float, bool, datetime."""
        parser = _SheetParser(self._shared, self._date_styles, self._epoch)
        try:
            with self._zip.open(self._sheet_path) as sheet:
                yield from parser.parse(sheet)
        except (*_DAMAGED, IndexError, OverflowError) as error:
            raise ServiceError(CORRUPT) from error

    def _locate_parts(self) -> None:
        names = set(self._zip.namelist())
        if "xl/workbook.xml" not in names:
            raise ServiceError(_not_a_workbook_message(names))
        sheets, self._epoch = _read_workbook(self._zip.read("xl/workbook.xml"))
        targets = _read_relationships(self._zip.read("xl/_rels/workbook.xml.rels"))
        if not sheets:
            raise ServiceError("This Excel file has no worksheets.")
        self.sheet_name, relationship_id = sheets[0]
        self._sheet_path = targets[relationship_id][0]
        self._parts = {kind: path for path, kind in targets.values() if path in names}
        for path in (self._sheet_path, *self._parts.values()):
            if self._zip.getinfo(path).file_size > MAX_XML_BYTES:
                raise ServiceError("This Excel file expands to more data than we can import.")

    def _read_shared_strings(self) -> _SharedStrings | list[str]:
        path = self._parts.get("sharedStrings")
        return _SharedStrings(self._zip.open(path)) if path else []

    def _read_date_styles(self) -> frozenset[int]:
        path = self._parts.get("styles")
        return _date_style_indexes(self._zip.read(path)) if path else frozenset()


def _not_a_workbook_message(names: set[str]) -> str:
    if "content.xml" in names:
        return "OpenDocument spreadsheets (.ods) are not supported. Save the file as .xlsx or .csv and upload it."
    return "This file is not an Excel workbook. Upload an .xlsx, .xls or .csv file."


def _parser() -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def refuse_doctype(*_args: object) -> None:
        raise ValueError("DOCTYPE in a workbook part")  # OOXML never has one; entity tricks do

    parser.StartDoctypeDeclHandler = refuse_doctype
    return parser


def _read_workbook(xml: bytes) -> tuple[list[tuple[str, str]], datetime]:
    """Visible sheets as (name, relationship id), in workbook order, and the date epoch."""
    sheets: list[tuple[str, str]] = []
    epoch = [CALENDAR_WINDOWS_1900]

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = local(name)
        if tag == "sheet" and attrs.get("state", "visible") == "visible":
            relationship = next((value for key, value in attrs.items() if local(key) == "id"), "")
            sheets.append((attrs.get("name", "Sheet1"), relationship))
        elif tag == "workbookPr" and attrs.get("date1904") in ("1", "true"):
            epoch[0] = CALENDAR_MAC_1904

    parser = _parser()
    parser.StartElementHandler = start
    parser.Parse(xml, True)
    return sheets, epoch[0]


def _read_relationships(xml: bytes) -> dict[str, tuple[str, str]]:
    """Relationship id → (zip path, kind), kind being the last word of the type URI (worksheet, styles…)."""
    targets: dict[str, tuple[str, str]] = {}

    def start(name: str, attrs: dict[str, str]) -> None:
        if local(name) == "Relationship":
            target = attrs.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
            targets[attrs.get("Id", "")] = (path, attrs.get("Type", "").rsplit("/", 1)[-1])

    parser = _parser()
    parser.StartElementHandler = start
    parser.Parse(xml, True)
    return targets


def _date_style_indexes(xml: bytes) -> frozenset[int]:
    """Indexes of the cell formats (cellXfs) whose number format shows a date or time."""
    custom: dict[int, str] = {}
    formats: list[int] = []
    inside = {"cellXfs": False}

    def start(name: str, attrs: dict[str, str]) -> None:
        tag = local(name)
        if tag == "numFmt":
            custom[int(attrs.get("numFmtId", "0"))] = attrs.get("formatCode", "")
        elif tag == "cellXfs":
            inside["cellXfs"] = True
        elif tag == "xf" and inside["cellXfs"]:
            formats.append(int(attrs.get("numFmtId", "0")))

    def end(name: str) -> None:
        if local(name) == "cellXfs":
            inside["cellXfs"] = False

    parser = _parser()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.Parse(xml, True)
    return frozenset(
        index for index, format_id in enumerate(formats)
        if is_date_format(custom.get(format_id) or BUILTIN_FORMATS.get(format_id, ""))
    )


class _SharedStrings:
    """The workbook's string table, parsed only as far as the cells read so far need.

    Excel numbers strings in order of first use, so previewing the first rows reads only the start of
    the table. Each <si> is plain <t> or rich-text runs; phonetic hints (<rPh>) are skipped.
    """

    def __init__(self, stream) -> None:
        self.strings: list[str] = []
        self._stream = stream
        self._parts: list[str] = []
        self._in_text = self._in_phonetic = False
        self._parser = None

    def __getitem__(self, index: int) -> str:
        strings = self.strings
        while index >= len(strings) and self._stream is not None:
            self._feed()
        return strings[index]

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _feed(self) -> None:
        chunk = self._stream.read(_CHUNK)
        if self._parser is None:
            prefix = _prefix_of(chunk, b"sst")
            self._si, self._t, self._phonetic = f"{prefix}si", f"{prefix}t", f"{prefix}rPh"
            self._parser = _parser()
            self._parser.StartElementHandler, self._parser.EndElementHandler = self._start, self._end
            self._parser.CharacterDataHandler = self._data
        self._parser.Parse(chunk, not chunk)
        if not chunk:
            self.close()

    def _start(self, name: str, _attrs: dict[str, str]) -> None:
        if name == self._t:
            self._in_text = True
        elif name == self._phonetic:
            self._in_phonetic = True

    def _end(self, name: str) -> None:
        if name == self._si:
            self.strings.append("".join(self._parts))
            self._parts.clear()
        elif name == self._t:
            self._in_text = False
        elif name == self._phonetic:
            self._in_phonetic = False

    def _data(self, text: str) -> None:
        if self._in_text and not self._in_phonetic:
            self._parts.append(text)


class _SheetParser:
    """Turns <row>/<c> elements into lists of values placed by their column letters.

    The handlers run once per element of a sheet that may hold millions, so they compare whole names
    (with the document's prefix, if any) instead of stripping prefixes on every call.
    """

    def __init__(self, shared: _SharedStrings | list[str], date_styles: frozenset[int], epoch: datetime) -> None:
        self.shared, self.epoch = shared, epoch
        self.date_styles = frozenset(str(index) for index in date_styles)
        self.ready: list[tuple[int, list[Any]]] = []
        self.row: list[Any] = []
        self.row_number = 0
        self.cell_type: str | None = None
        self.cell_style: str | None = None
        self.column = 0
        self.text: list[str] = []
        self.capturing = False
        self.in_phonetic = False

    def parse(self, stream) -> Iterator[tuple[int, list[Any]]]:
        chunk = stream.read(_CHUNK)
        self._use_prefix(_prefix_of(chunk, b"worksheet"))
        parser = _parser()
        parser.StartElementHandler, parser.EndElementHandler = self.start, self.end
        parser.CharacterDataHandler = self.data
        while chunk:
            parser.Parse(chunk, False)
            yield from self.ready
            self.ready.clear()
            chunk = stream.read(_CHUNK)
        parser.Parse(b"", True)
        yield from self.ready

    def _use_prefix(self, prefix: str) -> None:
        self.cell_tag, self.row_tag, self.phonetic_tag = f"{prefix}c", f"{prefix}row", f"{prefix}rPh"
        self.text_tags = frozenset((f"{prefix}v", f"{prefix}t"))

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == self.cell_tag:
            self.cell_type = attrs.get("t")
            self.cell_style = attrs.get("s")
            reference = attrs.get("r")
            self.column = _column_index(reference) if reference else len(self.row)
            self.text = []
        elif name in self.text_tags:
            self.capturing = True
        elif name == self.row_tag:
            self.row_number = int(attrs.get("r") or self.row_number + 1)
            self.row = []
        elif name == self.phonetic_tag:
            self.in_phonetic = True

    def end(self, name: str) -> None:
        if name == self.cell_tag:
            if self.text:
                self._store(self._value("".join(self.text)))
        elif name in self.text_tags:
            self.capturing = False
        elif name == self.row_tag:
            self.ready.append((self.row_number, self.row))
        elif name == self.phonetic_tag:
            self.in_phonetic = False

    def data(self, text: str) -> None:
        if self.capturing and not self.in_phonetic:
            self.text.append(text)

    def _store(self, value: Any) -> None:
        if value is None or value == "":
            return
        missing = self.column - len(self.row)
        if missing == 0:
            self.row.append(value)
        elif missing > 0:
            self.row.extend([None] * missing)
            self.row.append(value)
        else:
            self.row[self.column] = value

    def _value(self, text: str) -> Any:
        kind = self.cell_type
        if kind == "s":
            return self.shared[int(text)]
        if kind in ("inlineStr", "str"):
            return text
        if kind == "b":
            return text == "1"
        if kind == "e":
            return None  # #N/A and friends carry no data
        if kind == "d":
            return datetime.fromisoformat(text.rstrip("Z"))
        number = int(text) if text.isdigit() else float(text)
        if self.cell_style in self.date_styles:
            return from_excel(number, self.epoch)
        return number


def _prefix_of(head: bytes, root: bytes) -> str:
    """"x:" when a part is written as <x:worksheet …> (or <x:sst …>), else ""."""
    match = re.search(rb"<(?:([A-Za-z_][\w.\-]*):)?" + root + rb"[\s>]", head)
    return match.group(1).decode() + ":" if match and match.group(1) else ""


_COLUMN_CACHE: dict[str, int] = {}


def _column_index(reference: str) -> int:
    """"C7" → 2, "AA10" → 26."""
    letters = reference.rstrip("0123456789")
    index = _COLUMN_CACHE.get(letters)
    if index is None:
        index = 0
        for char in letters:
            index = index * 26 + ord(char.upper()) - 64
        index -= 1
        _COLUMN_CACHE[letters] = index
    return index
