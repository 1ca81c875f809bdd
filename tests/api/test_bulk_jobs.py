"""POST /api/v1/contacts/bulk above API_BULK_MAX_CONTACTS: a job (a contact import with source "api") answered 202
with a status URL; per-row problems; 413 problem documents above the hard cap or the request size limit."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import ContactImport, ContactImportPayload
from tests.conftest import run_jobs
from tests.factories.api import ApiClient, make_key
from tests.factories.campaigns import phone


def _table_size(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_more_than_ten_thousand_contacts_are_saved_by_a_job_with_a_status_url(app, api, make_contact):
    kept_deleted = make_contact(phone(7), "Gone", deleted_at=_now())
    rows = [{"phone": phone(n), "name": f"Customer {n}", "tags": ["sync"]} for n in range(10_050)]
    rows[10_010] = {"phone": "12345"}  # does not parse: reported, the others are saved
    rows.append({"phone": phone(3), "name": "Customer 3 again"})  # the later one wins
    response = api.post("/contacts/bulk", json={"contacts": rows})
    assert response.status_code == 202
    location = response.headers["Location"]
    queued = response.get_json()
    assert location == f"/api/v1/contacts/bulk/{queued['id']}" == queued["status_url"]
    assert queued["status"] == "queued" and queued["counts"]["total"] == 10_051
    assert _table_size(app, ContactImportPayload) == 1

    run_jobs(app)
    done = api.get(location.removeprefix("/api/v1")).get_json()
    assert done["status"] == "completed" and done["finished_at"]
    assert done["counts"] == {"total": 10_051, "processed": 10_051, "created": 10_048, "updated": 0,
                              "unchanged": 0, "skipped": 1, "invalid": 1, "duplicates": 1}
    assert [error["field"] for error in done["errors"]] == ["contacts[7].phone", "contacts[10010].phone"]
    assert done["error_count"] == 2 and "deleted" in done["errors"][0]["message"]
    assert _table_size(app, ContactImportPayload) == 0  # the contacts sent are not kept once saved
    by_phone = {row["phone"]: row for row in api.get("/contacts", query_string={"q": phone(3)}).get_json()["data"]}
    assert by_phone[phone(3)]["name"] == "Customer 3 again" and by_phone[phone(3)]["tags"] == []
    assert api.get(f"/contacts/{kept_deleted}").get_json()["name"] == "Gone"


def test_the_job_is_an_import_staff_see_in_the_dashboard(app, api, staff_client):
    app.config["API_BULK_MAX_CONTACTS"] = 2
    api.post("/contacts/bulk", json={"contacts": [{"phone": phone(n)} for n in range(3)]})
    html = staff_client.get("/imports/").get_data(as_text=True)
    assert "3 contacts sent through the API by API key “Shop”" in html


def test_any_key_with_contacts_read_may_read_a_job_and_others_may_not(app, api):
    app.config["API_BULK_MAX_CONTACTS"] = 2
    job = api.post("/contacts/bulk", json={"contacts": [{"phone": phone(n)} for n in range(3)]}).get_json()
    reader = ApiClient(app.test_client(), make_key(app, ["contacts:read"], name="Reports"))
    sender = ApiClient(app.test_client(), make_key(app, ["messages:write"], name="Orders"))
    assert reader.get(f"/contacts/bulk/{job['id']}").get_json()["status"] == "queued"
    refused = sender.get(f"/contacts/bulk/{job['id']}")
    assert refused.status_code == 403 and "contacts:read" in refused.get_json()["detail"]
    assert api.get("/contacts/bulk/999999").status_code == 404


def test_a_file_import_has_no_status_url_here(app, api):
    with app.app_context():
        row = ContactImport(file_name="list.csv", stored_name="x.csv", file_format="csv", file_size=10)
        db.session.add(row)
        db.session.commit()
        import_id = row.id
    missing = api.get(f"/contacts/bulk/{import_id}")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"


def test_a_wrong_shape_anywhere_in_a_large_call_stores_nothing(app, api):
    app.config["API_BULK_MAX_CONTACTS"] = 2
    response = api.post("/contacts/bulk", json={"contacts": [{"phone": phone(1)}, {"phone": phone(2)},
                                                             {"phone": phone(3), "colour": "red"}]})
    assert response.status_code == 422
    assert [error["field"] for error in response.get_json()["errors"]] == ["contacts[2].colour"]
    assert _table_size(app, ContactImport) == 0


def test_too_many_contacts_even_for_a_job_is_a_413_problem(app, api):
    app.config.update(API_BULK_MAX_CONTACTS=2, API_BULK_JOB_MAX_CONTACTS=4)
    response = api.post("/contacts/bulk", json={"contacts": [{"phone": phone(n)} for n in range(5)]})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert "at most 4 contacts" in response.get_json()["detail"]
    assert _table_size(app, ContactImport) == 0


def test_a_body_over_the_request_size_limit_is_a_413_problem(app, api):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    rows = [{"phone": phone(n), "name": "x" * 200} for n in range(6_000)]  # about 1.4 MB
    response = api.post("/contacts/bulk", json={"contacts": rows})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert "larger than the 1 MB limit" in response.get_json()["detail"]
    assert _table_size(app, ContactImport) == 0


def _now():
    from app.clock import utcnow

    return utcnow()
