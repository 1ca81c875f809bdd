"""Writing CSV and XLSX exports safely: streamed, and neutralised against formula injection."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def neutralise(value: object) -> object:
    """Prefix a quote to text a spreadsheet would run as a formula (OWASP CSV injection advice)."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not E164.match(value):
        return "'" + value
    return value


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    """A stored UTC time as the business reads it ("2025-11-01 15:30:00"), for a column headed by time_heading."""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def time_heading(label: str, zone: ZoneInfo) -> str:
    """A time column's heading names its zone ("Sent at (Asia/Kolkata)"): the cells carry none."""
    return f"{label} ({zone.key})"


def csv_stream(header: Sequence[str], rows: Iterable[Sequence[object]], chunk_rows: int = 1000) -> Iterator[str]:
    """Yield CSV text in chunks; starts with a BOM so Excel reads UTF-8 (Hindi names) correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    # Headings come from data too (contact field names typed or imported), so they are neutralised like values.
    writer.writerow([neutralise(heading) for heading in header])
    for number, row in enumerate(rows, start=1):
        writer.writerow([neutralise(_plain(value)) for value in row])
        if number % chunk_rows == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def xlsx_file(header: Sequence[str], rows: Iterable[Sequence[object]], sheet_title: str = "Export"):
    """Write rows into a temporary XLSX (write-only mode keeps memory flat) and return the open file."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(sheet_title)
    sheet.append([_text_cell(sheet, heading) for heading in header])
    for row in rows:
        sheet.append([_text_cell(sheet, value) for value in row])
    handle = tempfile.NamedTemporaryFile(suffix=".xlsx")
    workbook.save(handle)
    handle.seek(0)
    return handle


def _text_cell(sheet, value: object):
    value = _plain(value)
    if not isinstance(value, str):
        return value
    # Typed as text, so "+91…" stays a phone number and "=…" is never a formula.
    cell = WriteOnlyCell(sheet, value=neutralise(value))
    cell.data_type = "s"
    return cell


def _plain(value: object) -> object:
    return "" if value is None else value
