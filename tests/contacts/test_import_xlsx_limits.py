"""Hostile workbooks: small uploads that expand to a lot. The caps are set low here so the files stay small;
bench/import_contacts.py --hostile reads full-size ones and measures memory and time."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Contact, ContactImport
from app.services.contacts.imports import runs, xlsx, xlsx_parts
from tests.factories.imports import write_xlsx_parts


def counts(app) -> tuple[int, int]:
    """(imports, contacts) in the database."""
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(ContactImport)),
                db.session.scalar(select(func.count()).select_from(Contact)))


def text_cell(reference: str, text: str) -> str:
    return f'<c r="{reference}" t="inlineStr"><is><t>{text}</t></is></c>'


def sheet_rows(count: int, first: int = 2) -> str:
    """A header row, then `count` rows of a name and a phone number."""
    rows = [f'<row r="1">{text_cell("A1", "Name")}{text_cell("B1", "Phone")}</row>']
    rows += [f'<row r="{number}">{text_cell(f"A{number}", f"Person {number}")}'
             f'<c r="B{number}"><v>9198{number:08d}</v></c></row>' for number in range(first, first + count)]
    return "".join(rows)


def refused(pages, path: Path, message: str) -> None:
    response = pages.upload(path)
    page = response.get_data(as_text=True).replace("&#39;", "'")
    assert response.status_code == 400 and message in page, page
    assert counts(pages.app) == (0, 0)


def test_a_cell_longer_than_excel_allows_is_reported_on_its_row(app, pages, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_CELL_CHARS", 1_000)
    long_inline = f'<row r="4">{text_cell("A4", "y" * 5_000)}<c r="B4"><v>919812345678</v></c></row>'
    long_shared = '<row r="5"><c r="A5" t="s"><v>0</v></c><c r="B5"><v>919812345679</v></c></row>'
    path = write_xlsx_parts(tmp_path / "long.xlsx", sheet_rows(2) + long_inline + long_shared,
                            shared_strings=["z" * 5_000])
    import_id = pages.run(path)

    with app.app_context():
        record = db.session.get(ContactImport, import_id)
        assert (record.status, record.processed_rows, record.created_count) == ("completed", 4, 2)
    problems = pages.problems(import_id)
    assert [problem[0] for problem in problems] == ["4", "5"]
    assert problems[0][2].startswith("yyy") and "longer than 1,000 characters" in problems[0][3]


def test_a_huge_shared_string_table_is_refused(pages, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_SHARED_STRINGS", 100)
    row = '<row r="2"><c r="A2" t="s"><v>499</v></c><c r="B2"><v>919812345678</v></c></row>'
    path = write_xlsx_parts(tmp_path / "strings.xlsx", sheet_rows(0) + row,
                            shared_strings=[f"text {index}" for index in range(500)])
    refused(pages, path, "more than 100 different texts")


def test_a_part_that_expands_past_its_cap_is_refused_before_it_is_read(pages, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_parts, "MAX_PART_BYTES", 1024**2)
    path = write_xlsx_parts(tmp_path / "padded.xlsx", sheet_rows(3), workbook_padding=2 * 1024**2)
    assert path.stat().st_size < 10_000
    refused(pages, path, "workbook.xml expands to more than 1 MB")


def test_blank_rows_past_excels_last_row_are_refused_at_upload(pages, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_ROWS", 1_000)
    refused(pages, write_xlsx_parts(tmp_path / "blank.xlsx", sheet_rows(3) + "<row/>" * 5_000),
            "more than 1,000 rows, Excel's own limit")


def test_blank_rows_past_the_preview_are_refused_by_the_job_before_writing(app, pages, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_ROWS", 1_000)
    monkeypatch.setattr(xlsx, "PREVIEW_BYTES", 64 * 1024)  # the upload reads the first chunk only
    monkeypatch.setattr(runs, "BATCH_SIZE", 5)
    sheet = sheet_rows(60) + " " * 300_000 + "<row/>" * 5_000
    import_id = pages.run(write_xlsx_parts(tmp_path / "blank-later.xlsx", sheet))

    with app.app_context():
        record = db.session.get(ContactImport, import_id)
        assert record.status == "failed" and "more than 1,000 rows" in record.message
        assert "Nothing was imported" in record.message and record.created_count == 0
    assert counts(app) == (1, 0)


@pytest.mark.parametrize("cell", [
    '<c r="ABCD2"><v>1</v></c>',  # past Excel's last column, XFD
    '<c r="XFE2"><v>1</v></c>',
    '<c r="2"><v>1</v></c>',  # no column at all
    f'<c r="A2" t="inlineStr"><is><t x="{"a" * 600_000}">1</t></is></c>',  # one tag of 600 KB
])
def test_cells_no_spreadsheet_writes_are_refused_as_damaged(pages, tmp_path, monkeypatch, cell):
    monkeypatch.setattr(xlsx_parts, "MAX_TOKEN_BYTES", 64 * 1024)
    sheet = sheet_rows(0) + f'<row r="2">{cell}<c r="B2"><v>919812345678</v></c></row>'
    refused(pages, write_xlsx_parts(tmp_path / "odd.xlsx", sheet), "it looks damaged")


def test_the_preview_reads_no_further_than_it_needs(pages, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "PREVIEW_BYTES", 64 * 1024)
    sheet = sheet_rows(60) + " " * 300_000 + "<row><c></row>"  # damage past the preview
    import_id = pages.upload_ok(write_xlsx_parts(tmp_path / "later.xlsx", sheet))
    page = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "The rows are counted when the import starts" in page and "Person 2" in page



def test_a_part_that_expands_past_the_size_its_zip_declares_is_refused(pages, tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_XML_BYTES", 1024**2)
    path = write_xlsx_parts(tmp_path / "lying.xlsx", sheet_rows(3) + " " * 3 * 1024**2)
    data, name = bytearray(path.read_bytes()), b"xl/worksheets/sheet1.xml"
    for signature, name_at, size_at in ((b"PK\x03\x04", 30, 22), (b"PK\x01\x02", 46, 24)):  # local, central header
        start = 0
        while (start := data.find(signature, start)) != -1:
            if data[start + name_at:start + name_at + len(name)] == name:
                data[start + size_at:start + size_at + 4] = (100_000).to_bytes(4, "little")  # declares 100 KB
            start += 4
    path.write_bytes(bytes(data))
    refused(pages, path, "it looks damaged")
