"""A real browser imports a spreadsheet: upload, map the columns, watch the progress bar, find the contacts."""

from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import screenshot
from tests.conftest import TEST_PASSWORD
from tests.factories.imports import make_csv, make_xlsx


def sign_in(page, live_server, user):
    page.goto(f"{live_server}/login")
    page.fill("#email", user.email)
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")


def test_import_a_spreadsheet_and_find_the_contacts(app, live_server, page, make_user, background_worker, tmp_path):
    app.config["INSTANCE_DIR"] = str(tmp_path / "instance")
    rows = [["Customer Name", "Mobile No", "City", "Internal ref"]]
    rows += [[f"Customer {index}", f"+91 97{index:08d}", "Pune", f"R-{index}"] for index in range(1, 1200)]
    rows += [["Ravi Kumar", 919876543210, "Mumbai", "R-0"], ["Broken", "12345", "Agra", "R-X"]]
    path = make_xlsx(tmp_path / "diwali-customers.xlsx", rows)
    sign_in(page, live_server, make_user(Role.STAFF))

    page.goto(f"{live_server}/imports/")
    page.set_input_files("#import-file", str(path))
    screenshot(page, "import-upload")
    page.click("button:has-text('Upload and preview')")
    page.wait_for_selector("text=Check the columns")
    assert page.locator("#role-1").input_value() == "phone"
    assert page.locator("#role-0").input_value() == "name"
    page.select_option("#role-3", "ignore")
    page.fill("#tags", "Diwali 2025")
    screenshot(page, "import-mapping")

    page.click("button:has-text('Import contacts')")
    page.wait_for_selector("#import-progress")
    assert page.locator("progress.import-bar").count() == 1
    # The fragment polls itself every second until the worker finishes, then stops polling.
    page.wait_for_selector("progress.import-bar[value='100']", timeout=20_000)
    assert page.locator("#import-progress[hx-trigger]").count() == 0
    assert page.locator("#import-progress .badge").inner_text() == "Completed"
    assert "Download problem report (1)" in page.locator("#import-progress").inner_text()
    screenshot(page, "import-done")
    page.click("text=Import another file")
    assert "Completed" in page.locator("table").inner_text()
    screenshot(page, "import-list")

    page.goto(f"{live_server}/contacts/?q=9876543210")
    table = page.locator("table").inner_text()
    assert "+91 98765 43210" in table and "Ravi Kumar" in table
    screenshot(page, "import-contacts")
    assert page.js_errors == [], page.js_errors


def test_a_bad_file_is_explained_on_the_upload_page(app, live_server, page, make_user, tmp_path):
    app.config["INSTANCE_DIR"] = str(tmp_path / "instance")
    path = tmp_path / "notes.csv"
    path.write_text("Name,City\nRavi,Pune\n", encoding="utf-8")
    sign_in(page, live_server, make_user(Role.STAFF))
    page.goto(f"{live_server}/imports/")
    page.set_input_files("#import-file", str(path))
    page.click("button:has-text('Upload and preview')")
    assert "couldn't find a column of phone numbers" in page.locator(".flash-error").inner_text()
    screenshot(page, "import-error")


def test_a_title_above_the_headings_and_choosing_the_headings_row(app, live_server, page, make_user, tmp_path):
    app.config["INSTANCE_DIR"] = str(tmp_path / "instance")
    # A CSV saved with an .xlsx name, a title on top and headings we don't recognise: the guess takes the title.
    rows = [["Customer list"], ["Person", "Digits", "Area"], ["Ravi Kumar", "9876543210", "Pune"],
            ["Asha Verma", "9812345678", "Delhi"]]
    path = make_csv(tmp_path / "shop-list.csv", rows)
    renamed = path.rename(tmp_path / "shop-list.xlsx")
    sign_in(page, live_server, make_user(Role.STAFF))
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/imports/")
    page.set_input_files("#import-file", str(renamed))
    page.click("button:has-text('Upload and preview')")
    page.wait_for_selector("text=Check the columns")
    expect(page.locator(".flash-info")).to_have_text("This file is a CSV file named .xlsx; we read it as CSV.")
    expect(page.locator(".column-name").first).to_have_text("Customer list")

    page.select_option("#header_row", "2")  # HTMX re-reads the file with the headings in row 2
    expect(page.locator(".column-name")).to_have_text(["Person", "Digits", "Area"])
    expect(page.locator("#role-1")).to_have_value("phone")
    expect(page.locator("#header_row")).to_have_value("2")
    expect(page.locator(".mapping-table tbody tr")).to_have_count(2)
    screenshot(page, "import-header-row")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "import-header-row-phone")
    assert page.js_errors == [], page.js_errors
