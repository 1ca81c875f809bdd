"""Sheets with a title above the headings: the headings row is found, can be chosen on the preview, and the rows
above it are neither imported nor reported. Also: a file whose content is not what its name says."""

import re

import pytest

from app.services.contacts.imports.uploads import guess_header
from tests.conftest import csrf_token_from, run_jobs
from tests.factories.imports import contacts_by_phone, import_record, make_csv, make_xls, make_xlsx

TITLED = [["Diwali customer list 2025"], ["Exported on 1 Dec from the shop till"], ["Name", "Mobile", "City"],
          ["Ravi Kumar", "98765 43210", "Pune"], ["Asha Verma", "+91 98123 45678", "Delhi"]]
MAKERS = {"csv": make_csv, "xlsx": make_xlsx, "xls": make_xls}


def column_names(html: str) -> list[str]:
    return re.findall(r'<span class="column-name">([^<]*)</span>', html)


def selected_header(html: str) -> str:
    select = html[html.index('id="header_row"'):html.index("</select>", html.index('id="header_row"'))]
    return re.search(r'<option value="(\d+)" selected>', select).group(1)


@pytest.mark.parametrize("kind", ["csv", "xlsx", "xls"])
def test_a_title_above_the_headings_is_skipped_in_every_format(app, pages, tmp_path, kind):
    path = MAKERS[kind](tmp_path / f"titled.{kind}", TITLED)
    import_id = pages.upload_ok(path)
    html = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert column_names(html) == ["Name", "Mobile", "City"]
    assert selected_header(html) == "3" and "Row 1: Diwali customer list 2025" in html
    assert "under the headings in row 3" in html and "Ravi Kumar" in html

    assert pages.start(import_id).status_code == 302
    run_jobs(app)
    contacts = contacts_by_phone(app)
    assert set(contacts) == {"+919876543210", "+919812345678"}
    assert contacts["+919876543210"].attributes == {"City": "Pune"}
    done = import_record(app, import_id)
    assert (done.created_count, done.invalid_count, done.problem_count) == (2, 0, 0)
    assert pages.problems(import_id) == []  # the title rows and the headings are not reported as bad numbers


def test_a_wrong_guess_is_put_right_by_choosing_the_headings_row(app, pages, tmp_path):
    # Headings we don't recognise under a title that names a customer: the guess takes the title.
    rows = [["Customer list"], ["Person", "Digits", "Area"], ["Ravi Kumar", "9876543210", "Pune"],
            ["Asha Verma", "9812345678", "Delhi"]]
    import_id = pages.upload_ok(make_csv(tmp_path / "odd.csv", rows))
    page = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert selected_header(page) == "1" and column_names(page)[0] == "Customer list"

    response = pages.client.post(f"/imports/{import_id}/header", data={"header_row": "2"},
                                 headers={"HX-Request": "true", "X-CSRFToken": csrf_token_from(page)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="mapping-page"' in html  # HTMX swaps this part in
    assert column_names(html) == ["Person", "Digits", "Area"] and selected_header(html) == "2"
    assert re.search(r'name="role-1".*?<option value="phone" selected>', html, re.S)

    assert pages.start(import_id).status_code == 302
    run_jobs(app)
    assert contacts_by_phone(app)["+919876543210"].attributes == {"Person": "Ravi Kumar", "Area": "Pune"}
    assert pages.problems(import_id) == [] and import_record(app, import_id).created_count == 2


def test_choosing_no_heading_row_and_a_row_not_offered(app, pages, tmp_path):
    import_id = pages.upload_ok(make_csv(tmp_path / "titled.csv", TITLED))
    token = pages.token()
    bad = pages.client.post(f"/imports/{import_id}/header", data={"header_row": "40", "csrf_token": token})
    assert bad.status_code == 400 and "Choose the row with the headings from the list." in bad.get_data(as_text=True)
    assert import_record(app, import_id).columns == ["Name", "Mobile", "City"]  # unchanged

    plain = pages.client.post(f"/imports/{import_id}/header", data={"header_row": "0", "csrf_token": token})
    assert plain.status_code == 302  # without JavaScript: back to the page
    html = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "the file has no heading row" in html and column_names(html)[:2] == ["Column A", "Column B"]


def test_the_header_row_can_only_be_chosen_with_a_csrf_token(pages, tmp_path):
    import_id = pages.upload_ok(make_csv(tmp_path / "titled.csv", TITLED))
    assert pages.client.post(f"/imports/{import_id}/header", data={"header_row": "1"}).status_code == 400


def test_headings_in_the_first_row_are_still_row_1(pages, tmp_path):
    import_id = pages.upload_ok(make_csv(tmp_path / "plain.csv", TITLED[2:]))
    html = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert selected_header(html) == "1" and "under the headings in row 1" in html


def test_a_csv_named_xlsx_is_read_as_csv_and_the_preview_says_so(pages, tmp_path):
    path = make_csv(tmp_path / "contacts.csv", TITLED[2:])
    import_id = pages.upload_ok(path, name="contacts.xlsx")
    html = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "This file is a CSV file named .xlsx; we read it as CSV." in html
    assert column_names(html) == ["Name", "Mobile", "City"]
    honest = pages.upload_ok(path)
    assert "we read it as" not in pages.client.get(f"/imports/{honest}").get_data(as_text=True)


def test_an_xlsx_named_csv_is_read_as_a_workbook(pages, tmp_path):
    import_id = pages.upload_ok(make_xlsx(tmp_path / "book.xlsx", TITLED), name="book.csv")
    html = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "This file is an Excel workbook (.xlsx) named .csv; we read it as an Excel workbook." in html


@pytest.mark.parametrize(("rows", "expected"), [
    ([["Customer list for the Diwali sale"], ["Client", "WhatsApp"], ["Asha", "9876543210"]], 1),  # a long title
    ([["Contacts"], ["A", "B", "C"], ["Asha", "9876543210", "Pune"]], 1),  # no known heading: the fullest row
    ([["Name", "Phone"], ["Asha", "12345"]], 0),  # no valid number in sight: the first row, as before
    ([["Asha", "9876543210"], ["Ravi", "9812345678"]], None),  # no headings at all
])
def test_where_the_headings_are_guessed(rows, expected):
    assert guess_header(list(enumerate(rows, start=1)), "IN") == expected
