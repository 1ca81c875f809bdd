"""Every kind of file people upload: formats, encodings, delimiters, and bad files that must write nothing."""

import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import ContactImport
from app.services.contacts.imports.columns import guess_mapping
from app.services.contacts.imports.readers import CsvTable
from tests.factories.imports import (
    contacts_by_phone,
    make_csv,
    make_encrypted_xlsx,
    make_shared_strings_xlsx,
    make_xls,
    make_xlsx,
)

ROWS = [["Name", "Phone", "City"], ["Ravi Kumar", "98765 43210", "Pune"], ["Zoë Müller", "+91 98123 45678", "Köln"]]


@pytest.mark.parametrize(
    ("encoding", "delimiter"),
    [("utf-8", ","), ("utf-8-sig", ";"), ("cp1252", "\t"), ("utf-16", ","), ("utf-8", "|")],
)
def test_csv_encodings_and_delimiters(app, pages, tmp_path, encoding, delimiter):
    pages.run(make_csv(tmp_path / "contacts.csv", ROWS, encoding, delimiter))
    saved = contacts_by_phone(app)
    assert saved["+919812345678"].name == "Zoë Müller"
    assert saved["+919812345678"].attributes == {"City": "Köln"}


def test_csv_with_hindi_headers_and_excel_sep_hint(app, pages, tmp_path):
    path = tmp_path / "hindi.csv"
    path.write_text("sep=;\nनाम;मोबाइल नंबर;शहर\nरवि;9876543210;पुणे\n", encoding="utf-8")
    pages.run(path)
    contact = contacts_by_phone(app)["+919876543210"]
    assert (contact.name, contact.attributes) == ("रवि", {"शहर": "पुणे"})


def test_delimiter_detection_prefers_the_consistent_one(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text("Name;Phone\nSharma, Ravi;9876543210\nKhan, Asha;9812345678\n", encoding="utf-8")
    assert CsvTable(path).delimiter == ";"


def test_headerless_file_is_read_by_its_values(app, pages, tmp_path):
    import_id = pages.upload_ok(make_csv(tmp_path / "plain.csv", [["Ravi", "9876543210"], ["Asha", "9812345678"]]))
    page = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Column A" in page and "no heading row" in page
    pages.start(import_id)
    from tests.conftest import run_jobs

    run_jobs(app)
    assert contacts_by_phone(app)["+919876543210"].name == "Ravi"


def test_xlsx_from_excel_with_shared_strings_and_sparse_cells(app, pages, tmp_path):
    rows = [["Full Name", "WhatsApp", "Plan"], ["Ravi", 919876543210, None], [None, "9812345678", "Gold"]]
    pages.run(make_shared_strings_xlsx(tmp_path / "excel.xlsx", rows))
    saved = contacts_by_phone(app)
    assert saved["+919876543210"].name == "Ravi" and saved["+919876543210"].attributes == {}
    assert saved["+919812345678"].name is None and saved["+919812345678"].attributes == {"Plan": "Gold"}


def test_xlsx_numbers_floats_and_dates(app, pages, tmp_path):
    rows = [["Mobile", "Joined", "Spend"], [919876543210, datetime(2024, 3, 5), 1500.0],
            [9.19812345678e11, datetime(2024, 3, 5, 14, 30), 99.5]]
    pages.run(make_xlsx(tmp_path / "numbers.xlsx", rows))
    saved = contacts_by_phone(app)
    assert saved["+919876543210"].attributes == {"Joined": "2024-03-05", "Spend": 1500}
    assert saved["+919812345678"].attributes == {"Joined": "2024-03-05 14:30:00", "Spend": 99.5}


def test_legacy_xls(app, pages, tmp_path):
    rows = [["Name", "Mobile No"], ["Ravi", 919876543210], ["Asha", "098123 45678"]]
    pages.run(make_xls(tmp_path / "old.xls", rows))
    assert {phone: contact.name for phone, contact in contacts_by_phone(app).items()} == {
        "+919876543210": "Ravi", "+919812345678": "Asha"}


def test_file_type_is_read_from_content_not_name(app, pages, tmp_path):
    path = make_xlsx(tmp_path / "really-xlsx.xlsx", [["Phone"], ["9876543210"]])
    import_id = pages.upload_ok(path, name="exported.csv")
    with app.app_context():
        assert db.session.get(ContactImport, import_id).file_format == "xlsx"


def broken_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook><sheets><sheet")
    return path


def raw(data: bytes, suffix: str = ".csv"):
    def build(path: Path) -> Path:
        path = path.with_suffix(suffix)
        path.write_bytes(data)
        return path

    return build


BAD_FILES = [
    (raw(b"%PDF-1.4", ".pdf"), "Upload an Excel workbook"),
    (raw(b"%PDF-1.4\x00\x01binary"), "not a spreadsheet"),
    (raw(b"\x89PNG\r\n\x1a\n\x00"), "not a spreadsheet"),
    (raw(b"<html><table><tr><td>1</td></tr></table></html>", ".xls"), "web page"),
    (raw(b""), "empty"),
    (raw(b"\r\n\r\n"), "empty"),
    (lambda p: make_csv(p, [["Name", "Phone", "City"]]), "column headings (Name, Phone, City) but no contacts"),
    (lambda p: make_csv(p, [["Name", "City"], ["Ravi", "Pune"], ["Asha", "Delhi"]]), "couldn't find a column of phone"),
    (lambda p: make_csv(p, [[], ["", ""]]), "empty"),
    (lambda p: broken_zip(p.with_suffix(".xlsx")), "damaged"),
    (raw(b"PK\x03\x04garbage", ".xlsx"), "damaged"),
    (raw(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), ".xls"), "damaged"),
    (lambda p: make_encrypted_xlsx(p.with_suffix(".xlsx")), "password-protected"),
    (lambda p: make_xls(p.with_suffix(".xls"), [["Phone"], [919876543210]], encrypted=True), "password-protected"),
    (lambda p: make_xlsx(p.with_suffix(".xlsx"), [["Phone"]]), "no contacts under them"),
    (lambda p: make_xlsx(p.with_suffix(".xlsx"), []), "empty"),
]


@pytest.mark.parametrize(("build", "message"), BAD_FILES)
def test_bad_files_get_a_clear_message_and_write_nothing(app, pages, tmp_path, instance_dir, build, message):
    path = build(tmp_path / "upload.csv")
    response = pages.upload(path)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert message in page.replace("&#39;", "'"), page
    assert 'flash flash-error' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ContactImport)) == 0
    assert not list((instance_dir / "imports").glob("*")) if (instance_dir / "imports").exists() else True


def test_no_file_chosen(pages):
    response = pages.client.post("/imports/", data={"csrf_token": pages.token()})
    assert response.status_code == 400 and "Choose a file to upload." in response.get_data(as_text=True)


def test_more_rows_than_the_limit(app, pages, tmp_path):
    app.config["IMPORT_MAX_ROWS"] = 3
    rows = [["Phone"]] + [[f"98765432{index:02d}"] for index in range(4)]
    response = pages.upload(make_csv(tmp_path / "many.csv", rows))
    assert response.status_code == 400 and "more than 3 rows" in response.get_data(as_text=True)
    assert pages.upload(make_xlsx(tmp_path / "many.xlsx", rows)).status_code == 400
    assert pages.upload(make_csv(tmp_path / "ok.csv", rows[:4])).status_code == 302


def test_file_over_the_size_limit(app, pages, tmp_path):
    app.config["MAX_CONTENT_LENGTH"] = 2000
    response = pages.upload(make_csv(tmp_path / "big.csv", [["Phone"]] + [["9876543210"]] * 300))
    assert response.status_code == 413
    assert "That file is too large" in response.get_data(as_text=True)


def test_upload_size_is_checked_while_saving(app, tmp_path):
    import io

    from werkzeug.datastructures import FileStorage

    from app.services.contacts.imports import create_import
    from app.services.errors import ServiceError

    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    upload = FileStorage(io.BytesIO(b"Phone\r\n" + b"9876543210\r\n" * 200_000), filename="big.csv")
    with app.app_context(), pytest.raises(ServiceError, match="larger than the 1 MB upload limit"):
        create_import(upload, None)
    assert not list((Path(app.config["INSTANCE_DIR"]) / "imports").iterdir())


@pytest.mark.parametrize(
    ("headers", "phone", "name"),
    [
        (["Sr No", "Customer Name", "Mobile No.", "City"], 2, 1),
        (["नाम", "फ़ोन"], 1, 0),
        (["ग्राहक", "फोन नंबर"], 1, 0),
        (["संपर्क", "नाम"], 0, 1),
        (["Contact Name", "Contact"], 1, 0),
        (["Name", "Notes", "Number"], 2, 0),
        (["Id", "Customer", "Value"], 2, 1),  # no phone header: found by its values
    ],
)
def test_columns_are_guessed_from_headers_and_values(headers, phone, name):
    samples = [[{0: 1, phone: "9876543210", name: "Ravi"}.get(index, "x") for index in range(len(headers))]]
    mapping = guess_mapping(headers, samples, True, "IN")
    assert (mapping.phone_column, mapping.roles.index("name")) == (phone, name)
