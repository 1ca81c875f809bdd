"""Exports: a campaign's recipients and the filtered message log, as CSV and XLSX, straight away or via a job."""

from __future__ import annotations

import csv
import io
import re
import stat
from datetime import timedelta

from openpyxl import load_workbook

from app.models import Role
from app.services.analytics import message_export
from tests.conftest import csrf_token_from, run_jobs
from tests.factories.analytics import HTMX, add_contacts, add_messages, make_campaign, phone, utc

DAY = utc(2025, 11, 1, 6, 0)


def seed(app) -> int:
    contacts = add_contacts(app, 4)
    tricky = add_contacts(app, 1, start=9)
    with app.app_context():
        from app.extensions import db
        from app.models import Contact
        db.session.get(Contact, tricky[0]).name = '=HYPERLINK("http://evil.example","click")'
        db.session.commit()
    campaign_id = make_campaign(app, "Diwali offer!")
    add_messages(app, campaign_id, contacts[0:2], "read", DAY, replied=True)
    add_messages(app, campaign_id, contacts[2:3], "delivered", DAY + timedelta(minutes=1))
    add_messages(app, campaign_id, contacts[3:4], "failed", DAY, error_code=131026)
    add_messages(app, campaign_id, tricky, "sent", DAY)
    return campaign_id


def post_export(client, data: dict, page: str = "/messages/"):
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post("/messages/export", data={"csrf_token": token, **data})


def read_csv(response) -> list[list[str]]:
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # Excel reads the UTF-8 correctly
    return list(csv.reader(io.StringIO(text[1:])))


def test_campaign_recipients_as_csv(app, staff_client):
    campaign_id = seed(app)
    response = post_export(staff_client, {"kind": "campaign", "campaign_id": campaign_id, "fmt": "csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "diwali-offer-recipients.csv" in response.headers["Content-Disposition"]
    header, *rows = read_csv(response)
    assert header[:4] == ["Phone", "Name", "Status", "Sent at (Asia/Kolkata)"]
    assert header[-4:] == ["Error code", "Error", "Explanation", "Replied"]
    by_phone = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert set(by_phone) == {phone(1), phone(2), phone(3), phone(4), phone(9)}  # phone numbers stay as written
    first = by_phone[phone(1)]
    assert first["Status"] == "Read" and first["Read at (Asia/Kolkata)"] == "2025-11-01 11:30:00"
    assert first["Replied"] == "yes" and first["Error code"] == ""
    failed = by_phone[phone(4)]
    assert failed["Status"] == "Failed" and failed["Error code"] == "131026" and failed["Replied"] == "no"
    assert failed["Explanation"] == "This number is not on WhatsApp or cannot receive messages from businesses."
    assert by_phone[phone(9)]["Name"] == '\'=HYPERLINK("http://evil.example","click")'  # never a formula


def test_campaign_recipients_as_xlsx_keep_phones_as_text_and_formulas_inert(app, staff_client):
    campaign_id = seed(app)
    response = post_export(staff_client, {"kind": "campaign", "campaign_id": campaign_id, "fmt": "xlsx"})
    assert response.status_code == 200 and "diwali-offer-recipients.xlsx" in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Phone" and len(rows) == 6
    phones = [row[0] for row in rows[1:]]
    assert phone(1) in phones and all(isinstance(value, str) and value.startswith("+91") for value in phones)
    cells = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    assert cells[phone(9)][1].data_type == "s" and cells[phone(9)][1].value.startswith("'=")
    assert cells[phone(4)][-4].value == 131026


def test_the_filtered_message_log_exports_only_what_matches(app, staff_client):
    campaign_id = seed(app)
    contacts = add_contacts(app, 1, start=20)
    add_messages(app, None, contacts, "sent", DAY + timedelta(days=5))  # a direct message, another day
    response = post_export(staff_client, {"kind": "messages", "fmt": "csv", "campaign": campaign_id,
                                          "status": "read"})
    header, *rows = read_csv(response)
    assert re.search(r"messages-\d{4}-\d{2}-\d{2}\.csv", response.headers["Content-Disposition"])
    assert header[:6] == ["Created at (Asia/Kolkata)", "Direction", "Phone", "Name", "Campaign", "Status"]
    assert sorted(row[2] for row in rows) == [phone(1), phone(2)]
    assert {row[4] for row in rows} == {"Diwali offer!"} and {row[5] for row in rows} == {"Read"}

    everything = read_csv(post_export(staff_client, {"kind": "messages", "fmt": "csv"}))
    assert len(everything) == 7 and everything[1][2] == phone(20) and everything[1][4] == ""  # newest first

    workbook = post_export(staff_client, {"kind": "messages", "fmt": "xlsx", "phone": "098000 00004"})
    rows = list(load_workbook(io.BytesIO(workbook.data)).active.iter_rows(values_only=True))
    assert len(rows) == 2 and rows[1][2] == phone(4) and rows[1][-4] == 131026


def test_bad_export_requests_are_refused_kindly(app, staff_client):
    response = post_export(staff_client, {"kind": "messages", "fmt": "pdf"})
    assert response.status_code == 302
    assert "Choose CSV or Excel." in staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert post_export(staff_client, {"kind": "campaign", "campaign_id": "424242", "fmt": "csv"}).status_code == 404
    assert staff_client.post("/messages/export", data={"kind": "messages", "fmt": "csv"}).status_code == 400  # CSRF


def test_a_large_export_runs_as_a_job_with_progress_and_a_download(app, staff_client, monkeypatch, tmp_path,
                                                                  umask_022):
    app.config["INSTANCE_DIR"] = str(tmp_path)
    monkeypatch.setattr(message_export, "LARGE", 3)
    monkeypatch.setattr(message_export, "PROGRESS_EVERY", 2)
    campaign_id = seed(app)
    response = post_export(staff_client, {"kind": "campaign", "campaign_id": campaign_id, "fmt": "csv"})
    assert response.status_code == 302 and "/messages/exports/" in response.headers["Location"]
    status_url = response.headers["Location"]
    page = staff_client.get(status_url).get_data(as_text=True)
    assert "Preparing your export" in page and 'hx-trigger="every 1s"' in page
    assert "Waiting for a background worker" in page
    assert 'value="0"' in page and "diwali-offer-recipients.csv" in page

    run_jobs(app)
    fragment = staff_client.get(status_url, headers=HTMX).get_data(as_text=True)
    assert fragment.lstrip().startswith("<section") and "hx-trigger" not in fragment
    assert 'value="100"' in fragment and "5 rows are ready." in fragment
    download = re.search(r'href="([^"]+/download)"', fragment).group(1)
    file = staff_client.get(download)
    assert file.status_code == 200 and "diwali-offer-recipients.csv" in file.headers["Content-Disposition"]
    header, *rows = read_csv(file)
    assert header[0] == "Phone" and len(rows) == 5 and phone(1) in {row[0] for row in rows}
    [written] = (tmp_path / "exports").iterdir()  # written under INSTANCE_DIR/exports, for its owner only
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "exports").stat().st_mode) == 0o700


def test_a_large_log_export_to_excel_reports_progress_in_the_job_meta(app, staff_client, monkeypatch, tmp_path):
    app.config["INSTANCE_DIR"] = str(tmp_path)
    monkeypatch.setattr(message_export, "LARGE", 2)
    monkeypatch.setattr(message_export, "PROGRESS_EVERY", 2)
    seed(app)
    location = post_export(staff_client, {"kind": "messages", "fmt": "xlsx"}).headers["Location"]
    export_id = location.rstrip("/").rsplit("/", 1)[1]
    run_jobs(app)
    with app.app_context():
        from rq.job import Job
        job = Job.fetch(f"export-{export_id}", connection=app.extensions["redis"])
        assert job.meta["written"] == 5 and job.meta["total"] == 5
    fragment = staff_client.get(location, headers=HTMX).get_data(as_text=True)
    file = staff_client.get(re.search(r'href="([^"]+/download)"', fragment).group(1))
    rows = list(load_workbook(io.BytesIO(file.data)).active.iter_rows(values_only=True))
    assert len(rows) == 6 and rows[0][0].startswith("Created at")


def test_a_failed_export_says_so_and_only_its_owner_sees_it(app, client, auth, make_user, monkeypatch, tmp_path):
    app.config["INSTANCE_DIR"] = str(tmp_path)
    monkeypatch.setattr(message_export, "LARGE", 1)
    campaign_id = seed(app)
    owner, other = make_user(Role.STAFF), make_user(Role.STAFF)
    auth.login(owner.email)
    location = post_export(client, {"kind": "campaign", "campaign_id": campaign_id, "fmt": "csv"}).headers["Location"]
    with app.app_context():
        from app.extensions import db
        from app.models import Campaign
        db.session.delete(db.session.get(Campaign, campaign_id))  # gone before the job runs
        db.session.commit()
    run_jobs(app)
    page = client.get(location).get_data(as_text=True)
    assert "The export stopped because of an unexpected error (NotFound)" in page and "hx-trigger" not in page
    assert client.get(location + "/download").status_code == 404
    auth.logout()
    auth.login(other.email)
    assert client.get(location).status_code == 404
    assert client.get("/messages/exports/not-an-id").status_code == 404
