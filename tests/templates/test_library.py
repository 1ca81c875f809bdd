"""Message templates: syncing from the Cloud API (the simulator), the list and detail pages, creating one."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, MessageTemplate, TemplateStatus
from app.services.templates import library
from app.services.templates.library import TemplateSyncFailed
from jobs.templates import JOB_ID, enqueue_sync_templates, sync_templates
from tests.conftest import csrf_token_from, run_jobs

pytest_plugins = ["tests.factories.composer"]


@pytest.fixture
def staff_client(quick_staff_client):
    """A signed-in staff member without scrypt's second per user (see tests/factories/composer.py)."""
    return quick_staff_client

NEW_TEMPLATE = {"name": "diwali_offer", "language": "en_US", "category": "MARKETING",
                "header_text": "Hello {{1}}", "example-header.1": "Asha",
                "body": "Hi {{1}}, enjoy {{2}} off this Diwali. See you soon!", "example-body.1": "Asha",
                "example-body.2": "20%", "footer": "Reply STOP to opt out",
                "button_type": ["QUICK_REPLY", "URL"], "button_text": ["Shop now", "See offers"],
                "button_value": ["", "https://shop.example/offers/{{1}}"], "button_example": ["", "diwali"]}


def _rows(app) -> dict[tuple[str, str], MessageTemplate]:
    with app.app_context():
        return {(row.name, row.language): row for row in db.session.scalars(select(MessageTemplate))}


def test_sync_upserts_every_template_with_its_status_and_components(app, sim):
    with app.app_context():
        assert sync_templates() == 6
    rows = _rows(app)
    assert set(rows) == {("hello_world", "en_US"), ("order_update", "en_US"), ("order_update", "hi"),
                         ("festival_offer", "en_US"), ("appointment_reminder", "en_US"), ("summer_clearance", "en_US")}
    offer = rows[("festival_offer", "en_US")]
    assert (offer.status, offer.category, offer.parameter_format) == ("APPROVED", "MARKETING", "NAMED")
    assert offer.meta_id and offer.synced_at and offer.components[1]["type"] == "BODY"
    assert rows[("summer_clearance", "en_US")].status == TemplateStatus.PAUSED
    with app.app_context():
        assert library.last_sync().summary == "Synced 6 templates: 6 new, 0 changed, 0 removed."


def test_a_second_sync_updates_changed_rows_and_marks_vanished_ones(app, sim):
    with app.app_context():
        sync_templates()
    store = sim.simulator.templates
    store.set_status(store.get("order_update", "en_US").data["id"], "REJECTED")
    store.get("order_update", "en_US").data["rejected_reason"] = "INVALID_FORMAT"
    del store._templates[("hello_world", "en_US")]
    with app.app_context():
        sync_templates()
        assert library.last_sync().details == {"ok": True, "total": 5, "created": 0, "updated": 1, "removed": 1}
    rows = _rows(app)
    assert len(rows) == 6
    assert (rows[("order_update", "en_US")].status, rows[("order_update", "en_US")].status_reason) == \
        ("REJECTED", "INVALID_FORMAT")
    assert rows[("hello_world", "en_US")].status == TemplateStatus.DISABLED
    assert rows[("hello_world", "en_US")].status_reason == "Deleted from your WhatsApp account."


def test_a_failed_sync_is_recorded_and_raised(app, sim):
    app.config["WHATSAPP_ACCESS_TOKEN"] = "wrong"
    with app.app_context(), pytest.raises(TemplateSyncFailed, match="code 190"):
        sync_templates()
    with app.app_context():
        last = library.last_sync()
    assert not last.ok and "Access token expired or invalid (code 190)" in last.details["error"]


def test_sync_without_configuration_says_what_is_missing(app):
    app.config.update(WHATSAPP_ACCESS_TOKEN=None, WHATSAPP_BUSINESS_ACCOUNT_ID=None)
    with app.app_context(), pytest.raises(TemplateSyncFailed, match="WHATSAPP_ACCESS_TOKEN"):
        sync_templates()


def test_sync_now_button_queues_a_job_and_the_panel_polls_until_it_is_done(app, sim, staff_client):
    page = staff_client.get("/templates/").get_data(as_text=True)
    assert "Not synced yet" in page
    headers = {"HX-Request": "true", "X-CSRFToken": csrf_token_from(page)}
    response = staff_client.post("/templates/sync", headers=headers)
    html = response.get_data(as_text=True)
    assert "<html" not in html and "Syncing with WhatsApp" in html
    poll_url = re.search(r'hx-get="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert 'hx-trigger="every 1s"' in html
    assert "Syncing with WhatsApp" in staff_client.get(poll_url).get_data(as_text=True)  # no worker has run yet

    run_jobs(app)
    done = staff_client.get(poll_url).get_data(as_text=True)
    assert "every 1s" not in done and "Last synced" in done
    assert 'id="template-table" hx-swap-oob="true"' in done and "festival_offer" in done


def test_sync_now_without_javascript_redirects_to_the_waiting_page(app, sim, staff_client):
    page = staff_client.get("/templates/").get_data(as_text=True)
    response = staff_client.post("/templates/sync", data={"csrf_token": csrf_token_from(page)})
    assert response.status_code == 302 and "since=" in response.headers["Location"]
    assert "Syncing with WhatsApp" in staff_client.get(response.headers["Location"]).get_data(as_text=True)


def test_a_second_click_joins_the_waiting_sync(app, sim):
    with app.test_request_context():
        first, second = enqueue_sync_templates(None), enqueue_sync_templates(None)
        assert first.id == second.id == JOB_ID
        assert app.extensions["queues"]["high"].count == 1


def test_posts_require_a_csrf_token(staff_client, sim):
    assert staff_client.post("/templates/sync").status_code == 400
    assert staff_client.post("/templates/new", data=NEW_TEMPLATE).status_code == 400
    assert sim.simulator.templates.get("diwali_offer", "en_US") is None


def test_list_page_shows_status_reason_quality_and_failures(app, sim, staff_client, make_template):
    make_template("spring_sale", status=TemplateStatus.REJECTED, status_reason="INVALID_FORMAT", quality="RED")
    with app.app_context():
        library.record_sync_failure("Could not reach WhatsApp: connection refused")
    html = staff_client.get("/templates/").get_data(as_text=True)
    assert "spring_sale" in html and "Rejected" in html and "Low" in html
    assert "Meta rejected the format: check the variables" in html
    assert "The last sync failed" in html and "connection refused" in html


def test_detail_page_shows_the_bubble_preview(staff_client, named_template):
    html = staff_client.get(f"/templates/{named_template}").get_data(as_text=True)
    assert 'class="wa-bubble"' in html and "Image" in html  # the media header placeholder
    assert '<mark class="wa-var" title="body.first_name">{{first_name}}</mark>' in html
    assert "Shop now" in html and "Copy offer code" in html and "Tap Stop promotions to opt out" in html
    assert "Use in a campaign" in html
    assert staff_client.get("/templates/999").status_code == 404


def _create(client, data: dict):
    token = csrf_token_from(client.get("/templates/new").get_data(as_text=True))
    return client.post("/templates/new", data={**data, "csrf_token": token})


def test_create_submits_to_meta_and_keeps_it_pending(app, sim, staff_client):
    response = _create(staff_client, NEW_TEMPLATE)
    assert response.status_code == 302, response.get_data(as_text=True)
    created = sim.simulator.templates.get("diwali_offer", "en_US")
    assert created is not None and created.data["status"] == "PENDING"
    body, buttons = created.data["components"][1], created.data["components"][3]["buttons"]
    assert body["example"] == {"body_text": [["Asha", "20%"]]}
    assert buttons[1] == {"type": "URL", "text": "See offers", "url": "https://shop.example/offers/{{1}}",
                          "example": ["https://shop.example/offers/diwali"]}
    row = _rows(app)[("diwali_offer", "en_US")]
    assert (row.status, row.meta_id, row.parameter_format) == ("PENDING", created.data["id"], "POSITIONAL")
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Submitted “diwali_offer” to WhatsApp for review" in page and "In review" in page


def test_create_with_named_variables(app, sim, staff_client):
    data = {"name": "welcome_named", "language": "en_US", "category": "UTILITY",
            "body": "Welcome {{first_name}}, your id is {{member_id}}.", "example-body.first_name": "Asha",
            "example-body.member_id": "M-1"}
    assert _create(staff_client, data).status_code == 302
    created = sim.simulator.templates.get("welcome_named", "en_US").data
    assert created["parameter_format"] == "NAMED"
    assert created["components"][0]["example"] == {"body_text_named_params": [
        {"param_name": "first_name", "example": "Asha"}, {"param_name": "member_id", "example": "M-1"}]}


def test_form_errors_are_shown_by_field_and_nothing_is_submitted(app, sim, staff_client):
    response = _create(staff_client, {**NEW_TEMPLATE, "name": "Diwali Offer", "example-body.2": ""})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Use only lowercase letters, digits and underscores" in html
    assert "Give an example for {{2}}" in html
    example = html[html.index('name="example-body.2"'):]
    assert example.index("Give an example for {{2}}") < example.index("</fieldset>")  # next to its input
    assert sim.simulator.templates.get("Diwali Offer", "en_US") is None
    assert 'value="Hi {{1}}, enjoy' not in html and "enjoy {{2}} off this Diwali" in html  # the text is kept


def test_duplicate_names_are_refused_before_meta_sees_them(app, sim, staff_client, make_template):
    make_template("diwali_offer")
    response = _create(staff_client, NEW_TEMPLATE)
    assert response.status_code == 422 and "already exists" in response.get_data(as_text=True)


def test_a_refusal_from_meta_is_shown_on_the_form(app, sim, staff_client):
    sim.simulator.templates.create({"name": "diwali_offer", "language": "en_US", "category": "MARKETING",
                                    "components": [{"type": "BODY", "text": "Taken"}]})
    response = _create(staff_client, NEW_TEMPLATE)
    assert response.status_code == 502
    assert "WhatsApp did not accept the template: Content in this language already exists." in \
        response.get_data(as_text=True)
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "template.create" not in actions


def test_button_row_fragment(staff_client):
    response = staff_client.get("/templates/new/button")
    assert 'name="button_type"' in response.get_data(as_text=True) and "HX-Trigger" not in response.headers
    assert staff_client.get("/templates/new/button?removed=1").headers["HX-Trigger"] == "draft-changed"
