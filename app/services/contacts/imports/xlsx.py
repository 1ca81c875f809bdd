"""A streaming .xlsx reader: the first visible sheet's rows, straight from the zip with expat, within fixed bounds.

openpyxl's read-only mode streams too, but builds an object per cell: on a 100,000-row sheet it took
13 s here against 1.7 s for this reader, so the import reads sheet XML itself and borrows only
openpyxl's number-format rules for telling dates from numbers. python-calamine (Rust) reads that sheet in 0.4 s
of CPU against our 1.1 s, but builds the whole sheet in memory before the first row, so the upload's preview
would cost what the import does and a huge cell its full size; bounding it would take these same checks of ours
around it (bench/import_contacts.py --hostile has the figures).

A workbook is a zip: a 1 MB upload can expand to gigabytes. So every part is streamed, never read whole, and
stops at a cap on its size (xlsx_parts.Part); cells, rows, columns and the shared string table stop at Excel's
own limits (a cell longer than Excel allows
makes its row an UnreadableRow, reported and skipped); and the upload's preview reads at most PREVIEW_BYTES of
the sheet and of its strings. A file past a cap is refused with a message a person can act on.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from xml.parsers import expat

from openpyxl.utils.datetime import from_excel

from app.services.contacts.imports.table import Row, UnreadableRow, display_value
from app.services.contacts.imports.xlsx_parts import (
    CORRUPT,
    TOO_MUCH,
    Part,
    date_style_indexes,
    make_parser,
    not_a_workbook_message,
    prefix_of,
    read_relationships,
    read_workbook,
)
from app.services.errors import ServiceError

MAX_XML_BYTES = 512 * 1024**2  # the sheet and the shared strings: a million rows of five columns is ~170 MB
MAX_SHARED_STRINGS = 3_000_000  # a million-row contact list has ~2.7 million different texts (~190 MB in memory)
MAX_SHARED_CHARS = 64_000_000
MAX_CELL_CHARS = 32_767  # Excel's limits, from here down
MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
PREVIEW_BYTES = 16 * 1024**2  # the upload's preview reads this much of the sheet and of the shared strings
_DAMAGED = (zipfile.BadZipFile, zlib.error, expat.ExpatError, ValueError, EOFError)  # what broken files raise
_DIMENSION = re.compile(rb"<(?:\w+:)?dimension\s+ref=\"[A-Z]*\d*:?[A-Z]*(\d+)\"")
_OVERSIZED = object()  # a shared string longer than MAX_CELL_CHARS, kept as this marker


class XlsxWorkbook:
    """One workbook opened for streaming; use as a context manager. preview=True reads only what a preview needs."""

    def __init__(self, path: str, preview: bool = False) -> None:
        self._budget = PREVIEW_BYTES if preview else None
        self._shared: _SharedStrings | list[str] = []
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

    def rows(self) -> Iterator[tuple[int, Row]]:
        """(spreadsheet row number, cell values) for each row with a value; values are str, int, float, bool,
        datetime. A preview's rows end where its budget does."""
        parser = _SheetParser(self._shared, self._date_styles, self._epoch)
        try:
            with Part(self._zip, self._sheet_path, MAX_XML_BYTES, self._budget) as sheet:
                yield from parser.parse(sheet)
        except (*_DAMAGED, IndexError, OverflowError) as error:
            raise ServiceError(CORRUPT) from error

    def _locate_parts(self) -> None:
        names = set(self._zip.namelist())
        if "xl/workbook.xml" not in names:
            raise ServiceError(not_a_workbook_message(names))
        sheets, self._epoch = read_workbook(self._zip)
        targets = read_relationships(self._zip)
        if not sheets:
            raise ServiceError("This Excel file has no worksheets.")
        self.sheet_name, relationship_id = sheets[0]
        self._sheet_path = targets[relationship_id][0]
        self._parts = {kind: path for path, kind in targets.values() if path in names}

    def _read_shared_strings(self) -> _SharedStrings | list[str]:
        path = self._parts.get("sharedStrings")
        return _SharedStrings(Part(self._zip, path, MAX_XML_BYTES, self._budget)) if path else []

    def _read_date_styles(self) -> frozenset[int]:
        path = self._parts.get("styles")
        return date_style_indexes(self._zip, path) if path else frozenset()


class _SharedStrings:
    """The workbook's string table, parsed only as far as the cells read so far need.

    Excel numbers strings in order of first use, so previewing the first rows reads only the start of
    the table. Each <si> is plain <t> or rich-text runs; phonetic hints (<rPh>) are skipped. A string
    longer than a cell may hold is kept as the _OVERSIZED marker.
    """

    def __init__(self, part: Part) -> None:
        self.strings: list[Any] = []
        self._part = part
        prefix = prefix_of(part.peek(), b"sst")
        self._si, self._t, self._phonetic = f"{prefix}si", f"{prefix}t", f"{prefix}rPh"
        self._parser = make_parser()
        self._parser.StartElementHandler, self._parser.EndElementHandler = self._start, self._end
        self._parser.CharacterDataHandler = self._data
        self._parts: list[str] = []
        self._chars = self._total_chars = 0
        self._in_text = self._in_phonetic = False

    def __getitem__(self, index: int) -> Any:
        strings = self.strings
        while index >= len(strings) and self._part.feed(self._parser):
            pass
        return strings[index]

    def close(self) -> None:
        self._part.close()

    def _start(self, name: str, _attrs: dict[str, str]) -> None:
        if name == self._t:
            self._in_text = True
        elif name == self._phonetic:
            self._in_phonetic = True

    def _end(self, name: str) -> None:
        if name == self._si:
            self.strings.append("".join(self._parts) if self._chars <= MAX_CELL_CHARS else _OVERSIZED)
            self._parts.clear()
            self._total_chars += min(self._chars, MAX_CELL_CHARS)
            self._chars = 0
            if len(self.strings) > MAX_SHARED_STRINGS or self._total_chars > MAX_SHARED_CHARS:
                raise ServiceError(TOO_MUCH.format(what=f"more than {MAX_SHARED_STRINGS:,} different texts, or "
                                                        f"{MAX_SHARED_CHARS:,} characters of them"))
        elif name == self._t:
            self._in_text = False
        elif name == self._phonetic:
            self._in_phonetic = False

    def _data(self, text: str) -> None:
        if self._in_text and not self._in_phonetic:
            self._chars += len(text)
            if self._chars <= MAX_CELL_CHARS:
                self._parts.append(text)


class _SheetParser:
    """Turns <row>/<c> elements into lists of values placed by their column letters.

    The handlers run once per element of a sheet that may hold millions, so they compare whole names
    (with the document's prefix, if any) instead of stripping prefixes on every call. Rows without a
    value are not passed on (a sheet may hold a million formatted blank ones).
    """

    def __init__(self, shared: _SharedStrings | list[str], date_styles: frozenset[int], epoch: datetime) -> None:
        self.shared, self.epoch = shared, epoch
        self.date_styles = frozenset(str(index) for index in date_styles)
        self.ready: list[tuple[int, Row]] = []
        self.row: list[Any] = []
        self.row_number = self.rows_seen = 0
        self.cell_type: str | None = None
        self.cell_style: str | None = None
        self.column = 0
        self.text: list[str] = []
        self.chars = 0
        self.oversized: str | None = None  # the start of a cell longer than Excel allows, in this row
        self.capturing = False
        self.in_phonetic = False

    def parse(self, part: Part) -> Iterator[tuple[int, Row]]:
        self._use_prefix(prefix_of(part.peek(), b"worksheet"))
        parser = make_parser()
        parser.StartElementHandler, parser.EndElementHandler = self.start, self.end
        parser.CharacterDataHandler = self.data
        while part.feed(parser):
            yield from self.ready
            self.ready.clear()
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
            self.chars = 0
        elif name in self.text_tags:
            self.capturing = True
        elif name == self.row_tag:
            self._start_row(attrs.get("r"))
        elif name == self.phonetic_tag:
            self.in_phonetic = True

    def _start_row(self, number: str | None) -> None:
        self.row_number = int(number) if number else self.row_number + 1
        self.rows_seen += 1
        if self.row_number > MAX_ROWS or self.rows_seen > MAX_ROWS:
            raise ServiceError(TOO_MUCH.format(what=f"more than {MAX_ROWS:,} rows, Excel's own limit"))
        self.row = []
        self.oversized = None

    def end(self, name: str) -> None:
        if name == self.cell_tag:
            if self.chars > MAX_CELL_CHARS:
                self.oversized = self.oversized or "".join(self.text)
            elif self.text:
                self._store(self._value("".join(self.text)))
        elif name in self.text_tags:
            self.capturing = False
        elif name == self.row_tag:
            if self.oversized is not None:
                reason = f"A cell in this row is longer than {MAX_CELL_CHARS:,} characters, more than Excel allows"
                self.ready.append((self.row_number, UnreadableRow(display_value(self.oversized), reason)))
            elif self.row:
                self.ready.append((self.row_number, self.row))
        elif name == self.phonetic_tag:
            self.in_phonetic = False

    def data(self, text: str) -> None:
        if self.capturing and not self.in_phonetic:
            room = MAX_CELL_CHARS - self.chars
            self.chars += len(text)
            if room > 0:
                self.text.append(text if len(text) <= room else text[:room])

    def _store(self, value: Any) -> None:
        if value is None or value == "":
            return
        if value is _OVERSIZED:
            self.oversized = self.oversized or ""
            return
        missing = self.column - len(self.row)
        if missing == 0 and self.column < MAX_COLUMNS:
            self.row.append(value)
        elif missing < 0:
            self.row[self.column] = value
        elif self.column >= MAX_COLUMNS:
            raise ValueError("a cell past Excel's last column")  # read as a damaged file
        else:
            self.row.extend([None] * missing)
            self.row.append(value)

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


_COLUMN_CACHE: dict[str, int] = {}  # at most 18,278 entries: three letters at most
_COLUMN_LETTERS = re.compile(r"[A-Za-z]{1,3}")


def _column_index(reference: str) -> int:
    """"C7" → 2, "AA10" → 26."""
    letters = reference.rstrip("0123456789")
    index = _COLUMN_CACHE.get(letters)
    if index is None:
        if not _COLUMN_LETTERS.fullmatch(letters):
            raise ValueError(f"cell reference {reference[:20]!r}")  # read as a damaged file
        index = 0
        for char in letters:
            index = index * 26 + ord(char.upper()) - 64
        index -= 1
        _COLUMN_CACHE[letters] = index
    return index
