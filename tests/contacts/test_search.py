"""The contact list: search, filters, paging, HTMX fragments, one contact's page and editing."""

import re
from datetime import UTC, datetime

import pytest

from app.extensions import db
from app.models import AuditEntry, Contact, OptOutSource
from tests.conftest import csrf_token_from


@pytest.fixture
def people(make_contact):
    return {
        "asha": make_contact("+919876543210", "Asha Verma", tags=["VIP", "Mumbai"], attributes={"city": "Mumbai"}),
        "ravi": make_contact("+919812345678", "Ravi Kumar", tags=["Delhi"]),
        "sita": make_contact("+447911123456", "Sita Ram", opted_out_at=datetime(2026, 1, 5, tzinfo=UTC),
                             opt_out_source=OptOutSource.KEYWORD),
        "gone": make_contact("+919900000001", "Deleted Person", deleted_at=datetime(2026, 2, 1, tzinfo=UTC)),
    }


def _page(client, query=""):
    return client.get(f"/contacts/{query}").get_data(as_text=True)


def test_list_shows_active_contacts(staff_client, people):
    html = _page(staff_client)
    assert "Asha Verma" in html and "Ravi Kumar" in html and "Sita Ram" in html
    assert "Deleted Person" not in html


@pytest.mark.parametrize("typed", ["+91 98765 43210", "098765 43210", "98765-43210", "919876543210",
                                   "(987) 654-3210", "asha", "VERMA", "43210"])
def test_search_finds_by_name_or_phone_in_any_format(staff_client, people, typed):
    html = _page(staff_client, f"?q={typed.replace('+', '%2B')}")
    assert "Asha Verma" in html, typed
    assert "Ravi Kumar" not in html, typed


def test_search_with_nothing_found_says_so(staff_client, people):
    html = _page(staff_client, "?q=nobody-like-this")
    assert "No contacts match these filters." in html


def test_filters_by_tag_and_status(staff_client, people):
    html = _page(staff_client, "?tag=vip")
    assert "Asha Verma" in html and "Ravi Kumar" not in html
    html = _page(staff_client, "?status=opted_out")
    assert "Sita Ram" in html and "Asha Verma" not in html
    html = _page(staff_client, "?status=subscribed")
    assert "Sita Ram" not in html and "Asha Verma" in html


def test_filters_by_created_date(app, staff_client, people):
    with app.app_context():
        db.session.get(Contact, people["ravi"]).created_at = datetime(2025, 6, 1, 10, tzinfo=UTC)
        db.session.commit()
    html = _page(staff_client, "?created_to=2025-06-01")
    assert "Ravi Kumar" in html and "Asha Verma" not in html
    html = _page(staff_client, "?created_from=2025-06-02")
    assert "Ravi Kumar" not in html and "Asha Verma" in html


def test_sorting_by_name(staff_client, people):
    html = _page(staff_client, "?sort=name")
    assert html.index("Asha Verma") < html.index("Ravi Kumar") < html.index("Sita Ram")


def test_pagination_keeps_filters_in_links(app, staff_client, make_contact):
    for number in range(55):
        make_contact(f"+9198000{number:05d}", f"Person {number:02d}", tags=["bulk"])
    first = _page(staff_client, "?tag=bulk&sort=name")
    assert "Person 00" in first and "Person 50" not in first
    assert 'href="/contacts/?tag=bulk&amp;sort=name&amp;page=2"' in first
    second = _page(staff_client, "?tag=bulk&sort=name&page=2")
    assert "Person 50" in second and "Person 00" not in second and "← Previous" in second


@pytest.mark.parametrize(("page", "shown"), [("9999999999999999999999", True), ("²", None), ("-3", None),
                                           ("0", None), ("abc", None)])
def test_page_numbers_a_database_cannot_take_are_clamped_or_ignored(staff_client, people, page, shown):
    response = staff_client.get(f"/contacts/?page={page}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    if shown:  # past the end: an empty page, with the way back
        assert "Asha Verma" not in html and "← Previous" in html
    else:  # not a page number: the first page
        assert "Asha Verma" in html and "← Previous" not in html
    assert staff_client.get(f"/contacts/count?page={page}").status_code == 200
    assert staff_client.get(f"/contacts/export.csv?page={page}").status_code == 200


def test_htmx_request_gets_only_the_results_fragment(staff_client, people):
    full = staff_client.get("/contacts/?q=asha")
    fragment = staff_client.get("/contacts/?q=asha", headers={"HX-Request": "true", "HX-Target": "contact-results"})
    assert "<html" in full.get_data(as_text=True)
    body = fragment.get_data(as_text=True)
    assert "<html" not in body and "Asha Verma" in body and 'id="contact-filters"' not in body


def test_count_partial_counts_and_caps(app, staff_client, people, monkeypatch):
    assert "3 contacts match" in _page(staff_client, "count")
    assert "1 contact matches" in _page(staff_client, "count?tag=vip")
    monkeypatch.setattr("app.services.contacts.search.COUNT_CAP", 2)
    assert "More than 2 contacts match" in _page(staff_client, "count")


def test_staff_cannot_see_deleted_contacts(staff_client, people):
    assert staff_client.get("/contacts/?status=deleted").status_code == 403
    assert staff_client.get(f"/contacts/{people['gone']}").status_code == 404


def test_admin_sees_and_restores_deleted_contacts(admin_client, people):
    assert "Deleted Person" in _page(admin_client, "?status=deleted")
    token = csrf_token_from(_page(admin_client))
    admin_client.post(f"/contacts/{people['gone']}/restore", data={"csrf_token": token})
    assert "Deleted Person" in _page(admin_client)


@pytest.mark.parametrize("action", ["opt-out", "undo-opt-out", "delete"])
def test_staff_cannot_change_a_deleted_contact(app, staff_client, people, action):
    token = csrf_token_from(_page(staff_client))
    response = staff_client.post(f"/contacts/{people['gone']}/{action}", data={"csrf_token": token})
    assert response.status_code == 404
    with app.app_context():
        gone = db.session.get(Contact, people["gone"])
        assert gone.opted_out_at is None and gone.deleted_at == datetime(2026, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize(("action", "message"), [("opt-out", "This contact is deleted: restore it first."),
                                                 ("delete", "This contact is already deleted.")])
def test_admin_is_told_a_deleted_contact_cannot_change(app, admin_client, people, action, message):
    token = csrf_token_from(_page(admin_client))
    response = admin_client.post(f"/contacts/{people['gone']}/{action}", data={"csrf_token": token},
                                 follow_redirects=True)
    assert message in response.get_data(as_text=True)
    with app.app_context():
        gone = db.session.get(Contact, people["gone"])
        assert gone.opted_out_at is None and gone.deleted_at == datetime(2026, 2, 1, tzinfo=UTC)


def test_changing_an_unknown_contact_is_404(staff_client):
    token = csrf_token_from(_page(staff_client))
    assert staff_client.post("/contacts/999999/opt-out", data={"csrf_token": token}).status_code == 404


def test_contact_page_explains_opt_out(staff_client, people):
    html = _page(staff_client, str(people["sita"]))
    assert "Opted out" in html and "by replying STOP" in html
    assert "Undo staff opt-out" not in html  # a customer's own STOP cannot be undone by staff


def test_staff_opt_out_and_undo(staff_client, people):
    token = csrf_token_from(_page(staff_client))
    staff_client.post(f"/contacts/{people['ravi']}/opt-out", data={"csrf_token": token})
    html = _page(staff_client, str(people["ravi"]))
    assert "by a member of staff" in html and "Undo staff opt-out" in html
    staff_client.post(f"/contacts/{people['ravi']}/undo-opt-out", data={"csrf_token": token})
    assert "Subscribed" in _page(staff_client, str(people["ravi"]))


def test_customer_opt_out_cannot_be_undone_by_staff(staff_client, people):
    token = csrf_token_from(_page(staff_client))
    response = staff_client.post(f"/contacts/{people['sita']}/undo-opt-out", data={"csrf_token": token},
                                 follow_redirects=True)
    assert "only they can opt back in" in response.get_data(as_text=True)


def test_add_contact_normalises_the_phone(app, staff_client):
    token = csrf_token_from(_page(staff_client, "new"))
    response = staff_client.post("/contacts/new", data={
        "csrf_token": token, "phone": "098765 43210", "name": "  Meera   Das ", "tags": "vip, VIP , Pune",
        "attr_key": ["city", "", "plan"], "attr_value": ["Pune", "", "Gold"]}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "+919876543210" in html and "Meera Das" in html and "Gold" in html
    with app.app_context():
        contact = db.session.scalar(db.select(Contact))
        assert contact.wa_id == "919876543210"
        assert [tag.name for tag in contact.tags] == ["Pune", "vip"]
        assert contact.attributes == {"city": "Pune", "plan": "Gold"}


@pytest.mark.parametrize(("phone", "message"), [
    ("12345", "12345 has 5 digits; mobile numbers in India have 10."),
    ("98765 4321", "98765 4321 has 9 digits; mobile numbers in India have 10."),
    ("call me", "“call me” has letters in it; a phone number has only digits."),
    ("  ", "Enter a phone number."),
    ("+919876543210", "already has the number"),
])
def test_add_contact_rejects_bad_or_duplicate_numbers(staff_client, people, phone, message):
    token = csrf_token_from(_page(staff_client, "new"))
    response = staff_client.post("/contacts/new", data={"csrf_token": token, "phone": phone, "name": "X"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and 'value="X"' in html  # the form keeps what was typed


def test_attribute_value_without_name_is_rejected(staff_client):
    token = csrf_token_from(_page(staff_client, "new"))
    response = staff_client.post("/contacts/new", data={"csrf_token": token, "phone": "9876543210",
                                                        "attr_key": [""], "attr_value": ["orphan"]})
    assert response.status_code == 422 and "needs a field name" in response.get_data(as_text=True)


@pytest.mark.parametrize("field", ['=HYPERLINK("http://evil.example","x")', "+1", "-2", "@SUM(A1)"])
def test_field_name_a_spreadsheet_would_run_is_refused(app, staff_client, field):
    token = csrf_token_from(_page(staff_client, "new"))
    response = staff_client.post("/contacts/new", data={"csrf_token": token, "phone": "9876543210",
                                                        "attr_key": [field], "attr_value": ["x"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "cannot start with" in html
    with app.app_context():
        assert db.session.scalar(db.select(Contact)) is None


def test_edit_contact(app, staff_client, people):
    token = csrf_token_from(_page(staff_client, f"{people['ravi']}/edit"))
    staff_client.post(f"/contacts/{people['ravi']}/edit", data={
        "csrf_token": token, "phone": "+91 98123 45678", "name": "Ravi K", "tags": ""})
    with app.app_context():
        ravi = db.session.get(Contact, people["ravi"])
        assert ravi.name == "Ravi K" and ravi.tags == []


def test_unknown_contact_is_404(staff_client):
    assert staff_client.get("/contacts/999999").status_code == 404


def _audit_summaries(client, action: str) -> list[str]:
    html = client.get(f"/admin/audit?action={action}").get_data(as_text=True)
    return [" ".join(cell.split()) for cell in re.findall(r'<td class="wrap">(.*?)</td>', html, re.S)]


def test_an_edit_is_in_the_audit_log_naming_what_changed_but_not_the_personal_values(app, admin_client, people):
    token = csrf_token_from(_page(admin_client, f"{people['asha']}/edit"))
    admin_client.post(f"/contacts/{people['asha']}/edit", data={
        "csrf_token": token, "phone": "98765 43211", "name": "Asha V. Rao", "tags": "VIP, Gold",
        "attr_key": ["city", "plan"], "attr_value": ["Pune", "Platinum"]})
    assert _audit_summaries(admin_client, "contact.edit") == [
        "Edited +919876543211: number (was +919876543210); name; added fields plan; changed fields city; "
        "added tags Gold; removed tags Mumbai"]
    with app.app_context():
        entry = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "contact.edit"))
        assert entry.target == "+919876543211"
        assert entry.details == {"changed": ["phone", "name"], "previous_phone": "+919876543210",
                                 "fields_added": ["plan"], "fields_changed": ["city"], "tags_added": ["Gold"],
                                 "tags_removed": ["Mumbai"]}
        assert not {"Asha V. Rao", "Pune", "Platinum"} & set(str(entry.details).split("'"))


def test_saving_a_contact_unchanged_records_nothing_and_adding_one_is_recorded(admin_client, people):
    token = csrf_token_from(_page(admin_client, f"{people['ravi']}/edit"))
    admin_client.post(f"/contacts/{people['ravi']}/edit", data={
        "csrf_token": token, "phone": "+91 98123 45678", "name": "Ravi  Kumar", "tags": "delhi"})
    assert _audit_summaries(admin_client, "contact.edit") == []
    admin_client.post("/contacts/new", data={"csrf_token": token, "phone": "9000000001", "name": "New"})
    assert _audit_summaries(admin_client, "contact.add") == ["Added +919000000001"]
