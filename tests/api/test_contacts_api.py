"""/api/v1/contacts: upsert by phone, bulk upsert, the dashboard's filters with cursor paging, tags, opt-out."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Contact
from tests.factories.campaigns import add_contacts, phone


def _count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Contact))


def test_upsert_creates_then_updates_by_phone(app, api):
    created = api.post("/contacts", json={"phone": "098765 43210", "name": "Asha", "tags": ["VIP"],
                                          "attributes": {"city": "Pune"}})
    assert created.status_code == 201
    body = created.get_json()
    assert body["phone"] == "+919876543210" and body["tags"] == ["VIP"] and body["attributes"] == {"city": "Pune"}
    updated = api.post("/contacts", json={"phone": "+91 98765 43210", "attributes": {"plan": "gold"}, "tags": ["new"]})
    assert updated.status_code == 200
    body = updated.get_json()
    assert body["id"] == created.get_json()["id"] and body["name"] == "Asha"
    assert body["attributes"] == {"city": "Pune", "plan": "gold"} and sorted(body["tags"]) == ["VIP", "new"]


def test_bad_contact_input_names_the_field_and_saves_nothing(app, api):
    cases = [({"phone": "9876543210", "colour": "red"}, "colour", "Unknown field."),
             ({"phone": 9876543210}, "phone", "Input should be a valid string."),
             ({"phone": "12"}, "phone", None),
             ({"phone": "9876543210", "attributes": {"=cmd": "x"}}, "attributes", None),
             ({}, "phone", "This field is required.")]
    for payload, field, message in cases:
        response = api.post("/contacts", json=payload)
        assert response.status_code == 422, payload
        errors = response.get_json()["errors"]
        assert errors[0]["field"] == field and (message is None or errors[0]["message"] == message), errors
    assert _count(app) == 0


def test_bulk_upsert_writes_all_of_them(app, api):
    add_contacts(app, 1)
    payload = {"contacts": [{"phone": phone(n), "name": f"Buyer {n}", "tags": ["shop"]} for n in range(1, 51)]}
    response = api.post("/contacts/bulk", json=payload)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() | {"problems": []} == {"created": 49, "updated": 1, "unchanged": 0, "skipped": 0,
                                                       "problems": []}
    assert _count(app) == 50
    tagged = api.get("/contacts", query_string={"tag": "shop", "limit": 200}).get_json()["data"]
    assert len(tagged) == 50


def test_one_bad_contact_in_a_bulk_call_saves_none(app, api):
    payload = {"contacts": [{"phone": phone(1)}, {"phone": "not a phone"}, {"phone": phone(3), "tags": [""]}]}
    response = api.post("/contacts/bulk", json=payload)
    assert response.status_code == 422
    fields = [error["field"] for error in response.get_json()["errors"]]
    assert fields == ["contacts[2].tags[0]"]  # shapes first: the phone is read only once the shapes are right
    response = api.post("/contacts/bulk", json={"contacts": [{"phone": phone(1)}, {"phone": "12345"}]})
    assert [error["field"] for error in response.get_json()["errors"]] == ["contacts[1].phone"]
    assert _count(app) == 0


def test_an_oversized_bulk_call_is_refused_with_413(app, api):
    app.config.update(API_BULK_MAX_CONTACTS=2, API_BULK_JOB_MAX_CONTACTS=3)  # above 2 a job; above 3 not even that
    response = api.post("/contacts/bulk", json={"contacts": [{"phone": phone(n)} for n in range(4)]})
    assert response.status_code == 413 and response.mimetype == "application/problem+json"
    assert "at most 3" in response.get_json()["detail"]
    assert _count(app) == 0


def test_list_filters_and_cursor_pages(app, api):
    ids = add_contacts(app, 5)
    api.post(f"/contacts/{ids[0]}/opt-out")
    first = api.get("/contacts", query_string={"limit": 2}).get_json()
    assert [row["id"] for row in first["data"]] == [ids[4], ids[3]] and first["next_cursor"]
    second = api.get("/contacts", query_string={"limit": 2, "cursor": first["next_cursor"]}).get_json()
    third = api.get("/contacts", query_string={"limit": 2, "cursor": second["next_cursor"]}).get_json()
    assert [row["id"] for row in second["data"] + third["data"]] == [ids[2], ids[1], ids[0]]
    assert third["next_cursor"] is None
    opted_out = api.get("/contacts", query_string={"status": "opted_out"}).get_json()["data"]
    assert [row["id"] for row in opted_out] == [ids[0]]
    assert [r["id"] for r in api.get("/contacts", query_string={"q": "Customer 3"}).get_json()["data"]] == [ids[2]]
    assert api.get("/contacts", query_string={"limit": 0}).status_code == 422
    assert api.get("/contacts", query_string={"cursor": "abc"}).get_json()["errors"][0]["field"] == "cursor"
    assert api.get("/contacts", query_string={"sort": "name"}).get_json()["errors"][0]["field"] == "sort"


def test_get_tags_opt_out_and_delete(app, api):
    contact_id = add_contacts(app, 1)[0]
    assert api.get(f"/contacts/{contact_id}").get_json()["phone"] == phone(1)
    assert api.get("/contacts/999999").status_code == 404
    assert api.post(f"/contacts/{contact_id}/tags", json={"tags": ["a", "b"]}).get_json()["tags"] == ["a", "b"]
    assert api.delete(f"/contacts/{contact_id}/tags/A").get_json()["tags"] == ["b"]
    body = api.post(f"/contacts/{contact_id}/opt-out").get_json()
    assert body["opted_out"] is True and body["opt_out_source"] == "api"
    assert api.delete(f"/contacts/{contact_id}").status_code == 204
    assert api.get(f"/contacts/{contact_id}").get_json()["deleted_at"] is not None
    assert api.post(f"/contacts/{contact_id}/tags", json={"tags": ["c"]}).status_code == 409
    assert api.post("/contacts", json={"phone": phone(1)}).status_code == 409
    with app.app_context():
        actions = set(db.session.scalars(select(AuditEntry.action)))
        actors = set(db.session.scalars(select(AuditEntry.actor)))
    assert {"contact.opt_out", "contact.delete"} <= actions and any("API key “Shop”" in a for a in actors)
