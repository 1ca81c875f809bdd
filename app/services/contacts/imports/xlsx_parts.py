"""The zip side of an .xlsx: each part streamed into expat within a cap on its size, and the small parts
(the workbook, its relationships, the styles) read through that.

The cap is checked against the size the zip declares before reading, and again while reading, since a
declaration may lie; expat holds an unfinished tag or comment whole, so one longer than MAX_TOKEN_BYTES is
refused too.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from datetime import datetime
from typing import IO
from xml.parsers import expat

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900

from app.services.errors import ServiceError

CORRUPT = "This Excel file could not be read: it looks damaged. Open it in Excel, save it again and re-upload it."
TOO_MUCH = ("This workbook holds more than we can import ({what}). Save the sheet with your contacts as a CSV file "
            "(File → Save As → CSV UTF-8) and upload that.")
MAX_PART_BYTES = 16 * 1024**2  # workbook.xml, its relationships and styles.xml: a few KB in real workbooks
MAX_TOKEN_BYTES = 1024**2  # no spreadsheet writes a tag or comment this long
CHUNK = 256 * 1024


def local(name: str) -> str:
    """Element name without a namespace prefix: some writers emit <x:row>."""
    return name[name.find(":") + 1 :]


class Part:
    """One part of the zip, fed to an expat parser a chunk at a time, refused past `cap` bytes (as declared by
    the zip, and as read: the declaration may lie); with a `budget`, reading just stops there (a preview)."""

    def __init__(self, archive: zipfile.ZipFile, path: str, cap: int, budget: int | None = None) -> None:
        info = archive.getinfo(path)
        if info.file_size > cap:
            raise ServiceError(too_much(path, cap))
        self.path, self.cap, self.budget = path, cap, min(budget or cap, cap)
        self.stream: IO[bytes] | None = archive.open(info)
        self.read = 0
        self._head: bytes | None = None

    def __enter__(self) -> Part:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def feed(self, parser: expat.XMLParserType) -> bool:
        """Parse the next chunk; False once the part (or the budget) is used up."""
        if self.stream is None or (self.read >= self.budget and self._head is None):
            return False
        chunk = self.peek()
        self._head = None
        parser.Parse(chunk, not chunk)
        if self.read - max(parser.CurrentByteIndex, 0) > MAX_TOKEN_BYTES:
            raise ServiceError(CORRUPT)  # one tag or comment of megabytes: no spreadsheet writes that
        if not chunk:
            self.close()
        return bool(chunk)

    def peek(self) -> bytes:
        """The next chunk, which feed() parses next (the first one tells the part's namespace prefix)."""
        if self._head is None:
            self._head = self.stream.read(CHUNK) if self.stream else b""
            self.read += len(self._head)
            if self.read > self.cap:
                raise ServiceError(too_much(self.path, self.cap))
        return self._head

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def too_much(path: str, cap: int) -> str:
    return TOO_MUCH.format(what=f"{posixpath.basename(path)} expands to more than {cap // 1024**2:,} MB")


def parse_whole(archive: zipfile.ZipFile, path: str, parser: expat.XMLParserType) -> None:
    with Part(archive, path, MAX_PART_BYTES) as part:
        while part.feed(parser):
            pass


def not_a_workbook_message(names: set[str]) -> str:
    if "content.xml" in names:
        return "OpenDocument spreadsheets (.ods) are not supported. Save the file as .xlsx or .csv and upload it."
    return "This file is not an Excel workbook. Upload an .xlsx, .xls or .csv file."


def make_parser() -> expat.XMLParserType:
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def refuse_doctype(*_args: object) -> None:
        raise ValueError("DOCTYPE in a workbook part")  # OOXML never has one; entity tricks do

    parser.StartDoctypeDeclHandler = refuse_doctype
    return parser


def read_workbook(archive: zipfile.ZipFile) -> tuple[list[tuple[str, str]], datetime]:
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

    parser = make_parser()
    parser.StartElementHandler = start
    parse_whole(archive, "xl/workbook.xml", parser)
    return sheets, epoch[0]


def read_relationships(archive: zipfile.ZipFile) -> dict[str, tuple[str, str]]:
    """Relationship id → (zip path, kind), kind being the last word of the type URI (worksheet, styles…)."""
    targets: dict[str, tuple[str, str]] = {}

    def start(name: str, attrs: dict[str, str]) -> None:
        if local(name) == "Relationship":
            target = attrs.get("Target", "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(f"xl/{target}")
            targets[attrs.get("Id", "")] = (path, attrs.get("Type", "").rsplit("/", 1)[-1])

    parser = make_parser()
    parser.StartElementHandler = start
    parse_whole(archive, "xl/_rels/workbook.xml.rels", parser)
    return targets


def date_style_indexes(archive: zipfile.ZipFile, path: str) -> frozenset[int]:
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

    parser = make_parser()
    parser.StartElementHandler, parser.EndElementHandler = start, end
    parse_whole(archive, path, parser)
    return frozenset(
        index for index, format_id in enumerate(formats)
        if is_date_format(custom.get(format_id) or BUILTIN_FORMATS.get(format_id, ""))
    )


def prefix_of(head: bytes, root: bytes) -> str:
    """"x:" when a part is written as <x:worksheet …> (or <x:sst …>), else ""."""
    match = re.search(rb"<(?:([A-Za-z_][\w.\-]*):)?" + root + rb"[\s>]", head)
    return match.group(1).decode() + ":" if match and match.group(1) else ""
