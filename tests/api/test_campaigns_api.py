"""/api/v1/campaigns: create through the composer's rules, launch, pause, resume, cancel, and the funnel."""

from __future__ import annotations

import pytest

from tests.factories.campaigns import ORDER_UPDATE, add_contacts, make_template

ORDER_VARIABLES = {"body.1": {"source": "name", "fallback": "there"}, "body.2": {"source": "literal", "value": "#1"}}


@pytest.fixture
def whatsapp(app):
    app.config.update(WHATSAPP_PHONE_NUMBER_ID="106540352242922", WHATSAPP_ACCESS_TOKEN="token",
                      WHATSAPP_BUSINESS_ACCOUNT_ID="102290129340398")


def _create(api, template: int, **fields):
    payload = {"name": "Shipped", "template_id": template, "variables": ORDER_VARIABLES,
               "audience": {"tags_any": ["vip"]}} | fields
    return api.post("/campaigns", json=payload)


def test_create_list_and_get(app, api, whatsapp):
    template_id = make_template(app, "order_update", ORDER_UPDATE)
    response = _create(api, template_id)
    assert response.status_code == 201, response.get_json()
    campaign = response.get_json()
    assert campaign["status"] == "draft" and campaign["audience"] == {"tags_any": ["vip"]}
    assert campaign["template_name"] == "order_update"
    assert [row["id"] for row in api.get("/campaigns").get_json()["data"]] == [campaign["id"]]
    assert api.get(f"/campaigns/{campaign['id']}").get_json()["name"] == "Shipped"
    assert api.get("/campaigns/999").status_code == 404


def test_campaign_problems_use_the_api_field_names(app, api, whatsapp):
    template_id = make_template(app, "order_update", ORDER_UPDATE)
    cases = [({"template_id": 999}, "template_id"),
             ({"variables": {"body.1": {"source": "attribute"}}}, "variables.body.1"),
             ({"variables": {**ORDER_VARIABLES, "body.9": {"source": "name"}}}, "variables.body.9"),
             ({"schedule": {"kind": "at", "scheduled_at": "2001-01-01T10:00"}}, "schedule.scheduled_at"),
             ({"schedule": {"kind": "sometime"}}, "schedule.kind"),
             ({"audience": {"tags_any": ["a"], "tags_all": ["b"]}}, "audience"),
             ({"max_rate": "fast"}, "max_rate")]
    for fields, field in cases:
        response = _create(api, template_id, **fields)
        assert response.status_code == 422, fields
        assert field in [error["field"] for error in response.get_json()["errors"]], response.get_json()
    assert api.get("/campaigns").get_json()["data"] == []


def test_launch_pause_resume_cancel_and_metrics(app, api, whatsapp):
    template_id = make_template(app, "order_update", ORDER_UPDATE)
    add_contacts(app, 3)
    campaign_id = _create(api, template_id, audience={}).get_json()["id"]
    launched = api.post(f"/campaigns/{campaign_id}/launch")
    assert launched.status_code == 200, launched.get_json()
    assert launched.get_json()["status"] == "running" and launched.get_json()["counters"]["targeted"] == 3
    assert api.post(f"/campaigns/{campaign_id}/launch").status_code == 409
    assert api.post(f"/campaigns/{campaign_id}/pause").get_json()["status"] == "paused"
    assert api.post(f"/campaigns/{campaign_id}/resume").get_json()["status"] == "running"
    assert api.post(f"/campaigns/{campaign_id}/cancel").get_json()["status"] == "cancelled"
    assert api.post(f"/campaigns/{campaign_id}/resume").status_code == 409
    metrics = api.get(f"/campaigns/{campaign_id}/metrics").get_json()
    assert [step["key"] for step in metrics["funnel"]][:3] == ["targeted", "sent", "delivered"]
    assert metrics["funnel"][0]["count"] == 3


def test_a_draft_with_unfilled_variables_is_saved_but_not_launched(app, api, whatsapp):
    template_id = make_template(app, "order_update", ORDER_UPDATE)
    add_contacts(app, 1)
    response = _create(api, template_id, audience={}, variables={"body.1": {"source": "name"}})
    assert response.status_code == 201
    launched = api.post(f"/campaigns/{response.get_json()['id']}/launch")
    assert launched.status_code == 409 and launched.mimetype == "application/problem+json"
    assert api.get(f"/campaigns/{response.get_json()['id']}").get_json()["status"] == "draft"
