"""Bulk actions on selected or all matching contacts, and CSV/XLSX export with formula neutralisation."""

import csv
import io
from datetime import UTC, datetime

import pytest
from openpyxl import load_workbook

from app.extensions import db
from app.models import Contact, OptOutSource
from app.services.spreadsheets import neutralise
from tests.conftest import csrf_token_from


@pytest.fixture
def crowd(make_contact):
    ids = [make_contact(f"+91981234{number:04d}", f"Customer {number}", tags=["Pune"] if number < 3 else [])
           for number in range(6)]
    return ids


def _bulk(client, **data):
    token = csrf_token_from(client.get("/contacts/").get_data(as_text=True))
    return client.post("/contacts/bulk", data={"csrf_token": token, **data}, follow_redirects=True)


def _contacts(app):
    with app.app_context():
        rows = db.session.scalars(db.select(Contact).order_by(Contact.id)).all()
        return [(row.name, sorted(t.name for t in row.tags), row.opt_out_source, row.deleted_at is not None)
                for row in rows]


def test_add_tag_to_selected(app, staff_client, crowd):
    response = _bulk(staff_client, action="add_tag", bulk_tag="Diwali 2026", ids=[crowd[0], crowd[4]], scope="selected")
    assert "Tag added: 2 contacts changed." in response.get_data(as_text=True)
    tagged = [name for name, tags, *_ in _contacts(app) if "Diwali 2026" in tags]
    assert tagged == ["Customer 0", "Customer 4"]


def test_add_tag_twice_changes_nothing_the_second_time(app, staff_client, crowd):
    _bulk(staff_client, action="add_tag", bulk_tag="Pune", ids=crowd[:4], scope="selected")
    assert sum("Pune" in tags for _, tags, *_ in _contacts(app)) == 4


def test_remove_tag_from_all_matching_filter(app, staff_client, crowd):
    response = _bulk(staff_client, action="remove_tag", tag="pune", scope="all", bulk_tag="Pune")
    assert "Tag removed: 3 contacts changed." in response.get_data(as_text=True)
    assert all(tags == [] for _, tags, *_ in _contacts(app))


def test_opt_out_all_matching_only_touches_the_filtered_ones(app, staff_client, crowd):
    response = _bulk(staff_client, action="opt_out", scope="all", q="Customer 5")
    assert "Opted out: 1 contact changed." in response.get_data(as_text=True)
    sources = [source for *_, source, _ in _contacts(app)]
    assert sources == [None] * 5 + [OptOutSource.STAFF]


def test_delete_selected_is_soft_and_restorable_by_admin(app, staff_client, crowd):
    _bulk(staff_client, action="delete", ids=[crowd[1]], scope="selected")
    assert [deleted for *_, deleted in _contacts(app)] == [False, True, False, False, False, False]
    assert "Customer 1" not in staff_client.get("/contacts/").get_data(as_text=True)


def test_staff_cannot_bulk_restore(staff_client, crowd):
    token = csrf_token_from(staff_client.get("/contacts/").get_data(as_text=True))
    response = staff_client.post("/contacts/bulk", data={"csrf_token": token, "action": "restore",
                                                         "ids": [crowd[0]], "scope": "selected"})
    assert response.status_code == 403


def test_bulk_without_selection_explains(staff_client, crowd):
    response = _bulk(staff_client, action="opt_out", scope="selected")
    assert "Select at least one contact." in response.get_data(as_text=True)


def test_bulk_tag_action_needs_a_tag(staff_client, crowd):
    response = _bulk(staff_client, action="add_tag", bulk_tag="", ids=[crowd[0]], scope="selected")
    assert "Enter one tag name." in response.get_data(as_text=True)


@pytest.mark.parametrize(("value", "expected"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1+2", "'+1+2"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\tTab", "'\tTab"),
    ("\rCR", "'\rCR"),
    ("+919876543210", "+919876543210"),  # a real phone number stays a phone number
    ("Asha", "Asha"),
    (42, 42),
])
def test_neutralise(value, expected):
    assert neutralise(value) == expected


@pytest.fixture
def risky(make_contact):
    make_contact("+919876543210", "=cmd|' /C calc'!A0", tags=["@risk"], attributes={"note": "-10+20", "city": "Pune"})
    make_contact("+919812345678", "Plain Person", attributes={"plan": "Gold"})


def test_csv_export_is_neutralised_and_keeps_phones(staff_client, risky):
    response = staff_client.get("/contacts/export.csv?sort=phone")
    assert response.headers["Content-Disposition"] == "attachment; filename=contacts.csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0][:3] == ["phone", "name", "tags"] and rows[0][7:] == ["city", "note", "plan"]
    plain, risky_row = rows[1], rows[2]
    assert plain[0] == "+919812345678" and plain[9] == "Gold"
    assert risky_row[0] == "+919876543210"
    assert risky_row[1] == "'=cmd|' /C calc'!A0" and risky_row[2] == "'@risk" and risky_row[8] == "'-10+20"


def test_csv_export_follows_the_filter(staff_client, risky):
    body = staff_client.get("/contacts/export.csv?q=plain").get_data(as_text=True)
    assert "Plain Person" in body and "calc" not in body


def test_xlsx_export_types_phones_as_text_and_neutralises(staff_client, risky):
    response = staff_client.get("/contacts/export.xlsx?sort=phone")
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[2][0] == "+919876543210"
    assert sheet.cell(row=3, column=1).data_type == "s"
    assert rows[2][1] == "'=cmd|' /C calc'!A0"
    assert sheet.cell(row=3, column=2).data_type == "s"  # text, never a formula


EVIL_FIELD = '=HYPERLINK("http://evil.example","x")'


def test_csv_export_neutralises_field_names_in_the_header(staff_client, make_contact):
    make_contact("+919876543210", "Asha", attributes={EVIL_FIELD: "v"})
    body = staff_client.get("/contacts/export.csv").get_data(as_text=True)
    header = next(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert header[-1] == "'" + EVIL_FIELD


def test_xlsx_export_header_is_text_never_a_formula(staff_client, make_contact):
    make_contact("+919876543210", "Asha", attributes={EVIL_FIELD: "v"})
    sheet = load_workbook(io.BytesIO(staff_client.get("/contacts/export.xlsx").data)).active
    heading = sheet.cell(row=1, column=sheet.max_column)
    assert heading.value == "'" + EVIL_FIELD and heading.data_type == "s"
    assert sheet.cell(row=1, column=1).value == "phone"


def test_exported_times_are_local_with_the_zone_in_the_heading_like_the_campaign_export(app, staff_client,
                                                                                          make_contact):
    make_contact("+919876543210", "Asha", created_at=datetime(2025, 6, 1, 10, 0, 5, 123456, tzinfo=UTC),
                 opted_out_at=datetime(2026, 1, 5, 4, 30, tzinfo=UTC), opt_out_source="keyword")
    body = staff_client.get("/contacts/export.csv").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows[0][:7] == ["phone", "name", "tags", "opted_out", "opted_out_at (Asia/Kolkata)", "opt_out_source",
                           "created_at (Asia/Kolkata)"]
    assert rows[1][3:7] == ["yes", "2026-01-05 10:00:00", "keyword", "2025-06-01 15:30:05"]
    sheet = load_workbook(io.BytesIO(staff_client.get("/contacts/export.xlsx").data)).active
    assert list(sheet.iter_rows(values_only=True))[1][6] == "2025-06-01 15:30:05"
