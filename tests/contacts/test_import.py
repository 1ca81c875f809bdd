"""Importing contacts end to end: upload, map, run the job, and what the person sees and gets."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Contact, ContactImport, OptOutSource, Role, Setting, Tag
from jobs.imports import enqueue_import, import_contacts
from tests.conftest import run_jobs
from tests.factories.imports import ImportPages, contacts_by_phone, import_record, make_csv, make_xlsx


def add_contact(app, phone: str, **values) -> None:
    with app.app_context():
        db.session.add(Contact(phone=phone, wa_id=phone[1:], attributes=values.pop("attributes", {}), **values))
        db.session.commit()


MIXED_ROWS = [
    ["Customer Name", "Mobile No", "City", "Groups"],
    ["Ravi Kumar", 919876543210, "Pune", "vip, retail"],
    ["Asha", "098123 45678", "Delhi", ""],
    ["Ravi again", "+91 98765 43210", "Mumbai", ""],  # duplicate of row 2
    ["Nobody", "12345", "Agra", ""],  # invalid
    ["No number", None, "Agra", ""],  # missing
    [None, None, None, None],  # blank rows are skipped silently
    ["Two phones", "97654 32109 / 96543 21098", "Goa", "wholesale"],
]


def test_good_and_bad_rows_import_the_good_and_report_the_bad(app, pages, tmp_path):
    import_id = pages.run(make_xlsx(tmp_path / "customers.xlsx", MIXED_ROWS), tags="Diwali 2025")

    record = import_record(app, import_id)
    assert record.status == "completed"
    assert (record.processed_rows, record.created_count, record.duplicate_count, record.invalid_count) == (6, 4, 1, 2)
    saved = contacts_by_phone(app)
    assert set(saved) == {"+919876543210", "+919812345678", "+919765432109", "+919654321098"}
    ravi = saved["+919876543210"]
    assert (ravi.name, ravi.wa_id, ravi.attributes) == ("Ravi Kumar", "919876543210", {"City": "Pune"})
    assert [tag.name for tag in ravi.tags] == ["Diwali 2025", "retail", "vip"]
    assert saved["+919654321098"].name == "Two phones"  # each number in a cell becomes a contact

    page = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Completed" in page and "hx-trigger" not in page
    assert "Download problem report (3)" in page
    assert pages.problems(import_id) == [
        ["4", "Mobile No", "+91 98765 43210", "Same number as row 2; only the first was imported"],
        ["5", "Mobile No", "12345", "12345 has 5 digits; mobile numbers in India have 10"],
        ["6", "Mobile No", "", "No phone number"],
    ]


def test_reimport_never_resubscribes_an_opted_out_contact(app, pages, tmp_path):
    opted_out_at = datetime(2025, 1, 2, tzinfo=UTC)
    add_contact(app, "+919876543210", name="Old", opted_out_at=opted_out_at, opt_out_source=OptOutSource.KEYWORD)
    pages.run(make_csv(tmp_path / "again.csv", [["Name", "Phone"], ["New name", "9876543210"]]))

    contact = contacts_by_phone(app)["+919876543210"]
    assert contact.name == "New name"
    assert (contact.opted_out_at, contact.opt_out_source) == (opted_out_at, "keyword")


def test_deleted_contacts_stay_deleted_and_are_counted_as_skipped(app, pages, tmp_path):
    add_contact(app, "+919876543210", name="Gone", deleted_at=datetime(2025, 1, 1, tzinfo=UTC))
    import_id = pages.run(make_csv(tmp_path / "c.csv", [["Name", "Phone"], ["Back?", "9876543210"]]))

    contact = contacts_by_phone(app)["+919876543210"]
    assert contact.deleted_at is not None and contact.name == "Gone"
    record = import_record(app, import_id)
    assert (record.skipped_count, record.created_count, record.updated_count) == (1, 0, 0)
    assert "was deleted" in pages.problems(import_id)[0][3]


def test_update_merges_attributes_and_keep_leaves_contacts_alone(app, pages, tmp_path):
    add_contact(app, "+919876543210", name="Ravi", attributes={"City": "Pune", "Plan": "Gold"})
    rows = [["Name", "Phone", "City"], ["", "9876543210", "Delhi"], ["Asha", "9812345678", "Agra"]]
    first = pages.run(make_csv(tmp_path / "a.csv", rows), tags="Wave 1")
    ravi = contacts_by_phone(app)["+919876543210"]
    assert ravi.name == "Ravi"  # a blank name in the file does not erase the one we have
    assert ravi.attributes == {"City": "Delhi", "Plan": "Gold"}
    assert [tag.name for tag in ravi.tags] == ["Wave 1"]
    assert (import_record(app, first).created_count, import_record(app, first).updated_count) == (1, 1)

    again = pages.run(make_csv(tmp_path / "b.csv", rows), tags="Wave 1")
    assert (import_record(app, again).unchanged_count, import_record(app, again).updated_count) == (2, 0)

    rows[1][2] = "Chennai"
    kept = pages.run(make_csv(tmp_path / "c.csv", rows), existing="keep", tags="Wave 2")
    assert contacts_by_phone(app)["+919876543210"].attributes["City"] == "Delhi"
    assert [tag.name for tag in contacts_by_phone(app)["+919876543210"].tags] == ["Wave 1"]
    assert import_record(app, kept).unchanged_count == 2


def test_default_country_applies_to_numbers_without_a_code(app, pages, tmp_path):
    pages.run(make_csv(tmp_path / "uk.csv", [["Phone"], ["07911 123456"], ["+91 98765 43210"]]), region="GB")
    assert set(contacts_by_phone(app)) == {"+447911123456", "+919876543210"}


def test_the_mapping_page_suggests_the_default_country_from_the_settings_page(app, pages, tmp_path):
    with app.app_context():
        db.session.add(Setting(key="default_region", value="GB"))
        db.session.commit()
    import_id = pages.upload_ok(make_csv(tmp_path / "uk.csv", [["Phone"], ["07911 123456"]]))
    page = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert '<option value="GB" selected>' in page


def test_columns_can_be_remapped_and_ignored(app, pages, tmp_path):
    rows = [["Ref", "Who", "Cell"], ["A1", "Ravi", "9876543210"]]
    pages.run(make_csv(tmp_path / "r.csv", rows), roles={0: "ignore", 1: "name", 2: "phone"})
    contact = contacts_by_phone(app)["+919876543210"]
    assert (contact.name, contact.attributes) == ("Ravi", {})


def test_mapping_errors_show_on_the_page_and_start_nothing(app, pages, tmp_path):
    import_id = pages.upload_ok(make_csv(tmp_path / "m.csv", [["Name", "Phone"], ["Ravi", "9876543210"]]))
    response = pages.start(import_id, roles={0: "ignore", 1: "ignore"})
    assert response.status_code == 400
    assert "Choose exactly one column as the phone number." in response.get_data(as_text=True)
    response = pages.start(import_id, region="XX")
    assert "Choose the country" in response.get_data(as_text=True)
    assert import_record(app, import_id).status == "mapping"


def test_progress_fragment_polls_until_finished(app, pages, tmp_path):
    import_id = pages.upload_ok(make_csv(tmp_path / "p.csv", [["Phone"], ["9876543210"]]))
    pages.start(import_id)

    full = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    fragment = pages.client.get(f"/imports/{import_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" in full and 'id="import-progress"' in full
    assert "<html" not in fragment and fragment.lstrip().startswith("<section")
    assert 'hx-trigger="every 1s"' in fragment and "Waiting to start" in fragment
    assert '<progress class="import-bar" value="0" max="100"' in fragment

    run_jobs(app)
    done = pages.client.get(f"/imports/{import_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "hx-trigger" not in done and 'value="100"' in done and "Completed" in done


def test_cancel_before_the_worker_starts(app, pages, tmp_path, instance_dir):
    import_id = pages.upload_ok(make_csv(tmp_path / "c.csv", [["Phone"], ["9876543210"]]))
    pages.start(import_id)
    token = pages.token()
    fragment = pages.client.post(f"/imports/{import_id}/cancel", data={"csrf_token": token},
                                 headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Cancelled" in fragment and "hx-trigger" not in fragment
    run_jobs(app)
    assert import_record(app, import_id).status == "cancelled"
    assert contacts_by_phone(app) == {}
    assert list((instance_dir / "imports").iterdir()) == []  # the upload is not kept
    with app.app_context():
        actions = list(db.session.scalars(db.select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[-2:] == ["import.start", "import.cancel"]


def test_cancel_while_running_stops_after_the_current_batch(app, pages, tmp_path, monkeypatch):
    from app.services.contacts.imports import runs

    monkeypatch.setattr(runs, "BATCH_SIZE", 2)
    rows = [["Phone"]] + [[f"98765432{index:02d}"] for index in range(10)]
    import_id = pages.upload_ok(make_csv(tmp_path / "big.csv", rows))
    pages.start(import_id)
    original = runs.write_batch

    def write_then_cancel(records, options):  # someone presses Cancel while the first batch is written
        result = original(records, options)
        # The job's own session: a second SQLite connection would wait for the job's write lock.
        db.session.get(ContactImport, import_id).cancel_requested_at = datetime.now(UTC)
        return result

    monkeypatch.setattr(runs, "write_batch", write_then_cancel)
    run_jobs(app)
    record = import_record(app, import_id)
    assert record.status == "cancelled" and record.processed_rows == 2
    assert "Cancelled after 2 rows" in record.message
    assert len(contacts_by_phone(app)) == 2


def test_only_the_uploader_or_an_admin_may_cancel(app, client, auth, make_user, tmp_path):
    owner, other, admin = make_user(), make_user(), make_user(Role.ADMIN)
    pages = ImportPages(client, app)
    auth.login(owner.email)
    import_id = pages.upload_ok(make_csv(tmp_path / "c.csv", [["Phone"], ["9876543210"]]))
    auth.logout()
    auth.login(other.email)
    assert client.post(f"/imports/{import_id}/cancel", data={"csrf_token": pages.token()}).status_code == 403
    page = client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Check the columns" in page
    auth.logout()
    auth.login(admin.email)
    assert client.post(f"/imports/{import_id}/cancel", data={"csrf_token": pages.token()}).status_code == 302
    assert import_record(app, import_id).status == "cancelled"


def test_the_job_records_a_failure_and_reraises(app, pages, tmp_path, monkeypatch):
    from app.services.contacts.imports import runs

    import_id = pages.upload_ok(make_csv(tmp_path / "f.csv", [["Phone"], ["9876543210"]]))
    pages.start(import_id)
    monkeypatch.setattr(runs, "write_batch", lambda *args: 1 / 0)
    with app.app_context(), pytest.raises(ZeroDivisionError):
        import_contacts(import_id)
    record = import_record(app, import_id)
    assert record.status == "failed" and "ZeroDivisionError" in record.message
    page = pages.client.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Failed" in page and "unexpected error" in page


def test_enqueue_import_uses_the_high_queue_once_per_import(app, pages, tmp_path):
    import_id = pages.upload_ok(make_csv(tmp_path / "q.csv", [["Phone"], ["9876543210"]]))
    with app.app_context():
        job = enqueue_import(import_id)
        assert job.origin == "high" and job.id == f"contact-import-{import_id}"
        assert db.session.get(ContactImport, import_id).rq_job_id == job.id


def test_tags_from_a_column_are_created_once(app, pages, tmp_path):
    rows = [["Phone", "Tags"], ["9876543210", "VIP; Pune"], ["9812345678", "vip|Delhi"]]
    pages.run(make_csv(tmp_path / "t.csv", rows))
    with app.app_context():
        assert sorted(db.session.scalars(select(Tag.name))) == ["Delhi", "Pune", "VIP"]


def test_recent_imports_are_listed(app, pages, tmp_path):
    pages.run(make_csv(tmp_path / "listed.csv", [["Phone"], ["9876543210"]]))
    page = pages.client.get("/imports/").get_data(as_text=True)
    assert "listed.csv" in page and "Completed" in page and 'enctype="multipart/form-data"' in page


def test_unknown_import_is_a_404(pages):
    assert pages.client.get("/imports/999").status_code == 404
    assert pages.client.get("/imports/999/problems.csv").status_code == 404


def test_a_missing_upload_fails_the_import_with_a_clear_message(app, pages, tmp_path, instance_dir):
    import_id = pages.upload_ok(make_csv(tmp_path / "gone.csv", [["Phone"], ["9876543210"]]))
    pages.start(import_id)
    for path in (instance_dir / "imports").iterdir():
        path.unlink()
    run_jobs(app)
    record = import_record(app, import_id)
    assert record.status == "failed" and "missing" in record.message


def test_problem_report_defuses_spreadsheet_formulas(app, pages, tmp_path):
    import_id = pages.run(make_csv(tmp_path / "f.csv", [["Phone"], ["=HYPERLINK(\"http://x\")"], ["+91 5555"]]))
    values = [row[2] for row in pages.problems(import_id)]
    assert values == ["'=HYPERLINK(\"http://x\")", "+91 5555"]


def test_the_job_checks_the_row_limit_before_writing_if_the_file_grew_past_it(app, pages, tmp_path, monkeypatch):
    from app.services.contacts.imports import runs

    monkeypatch.setattr(runs, "BATCH_SIZE", 2)
    rows = [["Phone"]] + [[f"98765432{index:02d}"] for index in range(6)]
    import_id = pages.upload_ok(make_csv(tmp_path / "g.csv", rows))
    app.config["IMPORT_MAX_ROWS"] = 4  # e.g. a workbook whose recorded size was wrong
    pages.start(import_id)
    run_jobs(app)
    record = import_record(app, import_id)
    assert record.status == "failed" and "more than 4 rows" in record.message
    assert "Nothing was imported" in record.message and contacts_by_phone(app) == {}
