"""Builders for import test files (.xlsx, .xls, .csv) and a client that walks the import pages.

No xls writer is installed, so `make_xls` writes the legacy format itself: a minimal BIFF8 workbook
stream inside a minimal OLE2 compound file, the same containers Excel 97-2003 writes. The same OLE2
writer builds the container of a password-protected .xlsx (EncryptionInfo + EncryptedPackage).
"""

from __future__ import annotations

import csv
import io
import re
import struct
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import openpyxl
from sqlalchemy import select

from app.extensions import db
from app.models import Contact, ContactImport
from tests.conftest import csrf_token_from, run_jobs


def make_csv(path: Path, rows: list[list[Any]], encoding: str = "utf-8", delimiter: str = ",") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def make_xlsx(path: Path, rows: list[list[Any]], sheet: str = "Contacts") -> Path:
    """An .xlsx as openpyxl (and pandas) write it: inline strings, number cells, date styles."""
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    for row in rows:
        worksheet.append(row)
    workbook.save(path)
    return path


def make_shared_strings_xlsx(path: Path, rows: list[list[Any]]) -> Path:
    """An .xlsx as Excel writes it: a shared string table, x: prefixed elements and sparse cells."""
    strings: dict[str, int] = {}
    cells = []
    for number, row in enumerate(rows, start=1):
        parts = []
        for index, value in enumerate(row):
            if value is None:
                continue  # Excel leaves empty cells out, so the reader must place cells by reference
            reference = f"{chr(65 + index)}{number}"
            if isinstance(value, str):
                position = strings.setdefault(value, len(strings))
                parts.append(f'<x:c r="{reference}" t="s"><x:v>{position}</x:v></x:c>')
            else:
                parts.append(f'<x:c r="{reference}"><x:v>{value}</x:v></x:c>')
        cells.append(f'<x:row r="{number}">{"".join(parts)}</x:row>')
    return write_xlsx_parts(path, "".join(cells), shared_strings=list(strings), prefix="x:")


XLSX_NAMESPACE = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def write_xlsx_parts(path: Path, sheet_data: str, shared_strings: list[str] | None = None, prefix: str = "",
                     dimension: str | None = None, workbook_padding: int = 0) -> Path:
    """An .xlsx from raw sheetData XML (rows as written, damaged or hostile ones too), with a hidden first sheet.

    workbook_padding adds that many spaces inside workbook.xml, as a zip bomb would (they compress to almost nothing).
    """
    namespace = f'xmlns{":" + prefix[:-1] if prefix else ""}="{XLSX_NAMESPACE}"'
    size = f'<{prefix}dimension ref="{dimension}"/>' if dimension else ""
    sheet = (f"<{prefix}worksheet {namespace}>{size}<{prefix}sheetData>{sheet_data}</{prefix}sheetData>"
             f"</{prefix}worksheet>")
    relationships = ('<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                     '<Relationship Id="rId1" Type="http://x/worksheet" Target="worksheets/sheet1.xml"/>'
                     '<Relationship Id="rId2" Type="http://x/sharedStrings" Target="/xl/sharedStrings.xml"/>'
                     "</Relationships>")
    workbook = (f'<{prefix}workbook {namespace} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
                f'relationships">{" " * workbook_padding}<{prefix}sheets><{prefix}sheet name="Hidden" state="hidden" '
                f'r:id="rId9"/><{prefix}sheet name="Customers" r:id="rId1"/></{prefix}sheets></{prefix}workbook>')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", workbook)
        archive.writestr("xl/_rels/workbook.xml.rels", relationships)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        if shared_strings is not None:
            shared = "".join(f"<{prefix}si><{prefix}t>{escape(text)}</{prefix}t></{prefix}si>"
                             for text in shared_strings)
            archive.writestr("xl/sharedStrings.xml", f"<{prefix}sst {namespace}>{shared}</{prefix}sst>")
    return path


def make_xls(path: Path, rows: list[list[Any]], encrypted: bool = False) -> Path:
    """A legacy .xls: BIFF8 NUMBER and LABEL cells on one sheet called Contacts."""
    path.write_bytes(ole_file({"Workbook": _biff_workbook(rows, encrypted)}))
    return path


def make_encrypted_xlsx(path: Path) -> Path:
    """What Excel writes for a password-protected .xlsx: an OLE2 container instead of a zip."""
    path.write_bytes(ole_file({"EncryptionInfo": b"\x04\x00\x04\x00" + bytes(60), "EncryptedPackage": bytes(600)}))
    return path


def _record(kind: int, data: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(data)) + data


def _bof(stream_type: int) -> bytes:
    return _record(0x0809, struct.pack("<HHHHII", 0x0600, stream_type, 0x0DBB, 0x07CC, 0, 6))


def _biff_workbook(rows: list[list[Any]], encrypted: bool) -> bytes:
    name = "Contacts"
    cells = []
    for row_index, row in enumerate(rows):
        for column, value in enumerate(row):
            if isinstance(value, int | float):
                cells.append(_record(0x0203, struct.pack("<HHHd", row_index, column, 0, float(value))))
            elif value is not None:
                text = str(value)
                cells.append(_record(0x0204, struct.pack("<HHHHB", row_index, column, 0, len(text), 1)
                                     + text.encode("utf-16-le")))
    sheet = _bof(0x0010) + b"".join(cells) + _record(0x000A)
    filepass = _record(0x002F, bytes(54)) if encrypted else b""
    boundsheet_size = 4 + 4 + 2 + 2 + len(name) * 2
    globals_size = len(_bof(5)) + len(filepass) + boundsheet_size + 4
    boundsheet = _record(0x0085, struct.pack("<IBBBB", globals_size, 0, 0, len(name), 1) + name.encode("utf-16-le"))
    return _bof(0x0005) + filepass + boundsheet + _record(0x000A) + sheet


def ole_file(streams: dict[str, bytes]) -> bytes:
    """A version-3 compound file: header, one FAT sector, one directory sector, then each stream."""
    free, end_of_chain, fat_sector, no_stream = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
    fat, body, entries, next_sector = [fat_sector, end_of_chain], b"", [], 2
    for name, content in streams.items():
        content = content.ljust(4096, b"\0")  # at least the mini-stream cutoff: normal sectors only
        content = content.ljust(-(-len(content) // 512) * 512, b"\0")
        count = len(content) // 512
        fat += [next_sector + offset + 1 for offset in range(count - 1)] + [end_of_chain]
        entries.append((name, next_sector, len(content)))
        body += content
        next_sector += count
    assert len(fat) <= 128 and len(entries) <= 3, "test files stay small"
    fat += [free] * (128 - len(fat))

    def entry(name: str, kind: int, right: int, child: int, start: int, size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le") if name else b""
        return struct.pack("<64sHBBIII16sIQQIQ", encoded, len(encoded), kind, 1, no_stream, right, child,
                           bytes(16), 0, 0, 0, start, size)

    directory = entry("Root Entry", 5, no_stream, 1, end_of_chain, 0)
    for index, (name, start, size) in enumerate(entries, start=1):
        directory += entry(name, 2, index + 1 if index < len(entries) else no_stream, no_stream, start, size)
    directory = directory.ljust(512, b"\0")
    header = struct.pack("<8s16sHHHHH6sIIIIIIIII", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", bytes(16), 0x3E, 3,
                         0xFFFE, 9, 6, bytes(6), 0, 1, 1, 0, 4096, end_of_chain, 0, end_of_chain, 0)
    header += struct.pack("<109I", 0, *([free] * 108))
    return header + struct.pack("<128I", *fat) + directory + body


class ImportPages:
    """Walks the import pages as a person would: upload, choose columns, let the worker run."""

    def __init__(self, client, app) -> None:
        self.client, self.app = client, app

    def token(self) -> str:
        return csrf_token_from(self.client.get("/imports/").get_data(as_text=True))

    def upload(self, path: Path, name: str | None = None):
        data = {"csrf_token": self.token(), "file": (io.BytesIO(path.read_bytes()), name or path.name)}
        return self.client.post("/imports/", data=data, content_type="multipart/form-data")

    def upload_ok(self, path: Path, name: str | None = None) -> int:
        response = self.upload(path, name)
        assert response.status_code == 302, response.get_data(as_text=True)
        return int(re.search(r"/imports/(\d+)$", response.headers["Location"]).group(1))

    def start(self, import_id: int, roles: dict[int, str] | None = None, **options: str):
        page = self.client.get(f"/imports/{import_id}").get_data(as_text=True)
        form = {f"role-{index}": role for index, role in re.findall(
            r'name="role-(\d+)".*?<option value="(\w+)" selected>', page, re.S)}
        form |= {f"role-{index}": role for index, role in (roles or {}).items()}
        form |= {"csrf_token": csrf_token_from(page), "region": "IN", "existing": "update", "tags": ""} | options
        return self.client.post(f"/imports/{import_id}/start", data=form)

    def run(self, path: Path, roles: dict[int, str] | None = None, **options: str) -> int:
        import_id = self.upload_ok(path)
        response = self.start(import_id, roles, **options)
        assert response.status_code == 302, response.get_data(as_text=True)
        run_jobs(self.app)
        return import_id

    def problems(self, import_id: int) -> list[list[str]]:
        text = self.client.get(f"/imports/{import_id}/problems.csv").get_data(as_text=True)
        return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))[1:]


def contacts_by_phone(app) -> dict[str, Contact]:
    """Every contact row, keyed by its E.164 number."""
    with app.app_context():
        return {contact.phone: contact for contact in db.session.scalars(select(Contact))}


def import_record(app, import_id: int) -> ContactImport:
    with app.app_context():
        return db.session.get(ContactImport, import_id)
