"""Campaign actions through the API are audited as the key; opt-outs made by staff (one or in bulk), through the API
and by WhatsApp's 131050 (a failed status, or a send's answer) reach outbound endpoints; a finished campaign's event
is delivered at once, not at the minute's sweep."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from app.clock import utcnow
from app.extensions import db
from app.models import AuditEntry, Contact
from tests.conftest import csrf_token_from, run_jobs
from tests.factories import campaigns as dispatch
from tests.factories import outbound
from tests.factories import webhooks as support
from tests.factories.campaigns import ORDER_UPDATE, add_contacts, make_template, phone
from tests.factories.outbound import make_endpoint, outbox
from tests.factories.webhooks import status, statuses_body

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
receiver = outbound.receiver
sim, sim_process_wide = dispatch.sim, dispatch.sim_process_wide
OPT_EVENTS = ["contact.opted_out", "contact.opted_in"]


def _received(receiver, event_type: str) -> list[dict]:
    assert all(got.signature_ok for got in receiver.received)
    return [got.json["data"] for got in receiver.received if got.json["type"] == event_type]


@pytest.fixture
def counted_inserts(app):
    """The INSERT statements into the outbox while the test runs (an executemany counts once)."""
    found: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOUND_EVENTS"):
            found.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    yield found
    event.remove(engine, "before_cursor_execute", count)


def test_campaign_actions_through_the_api_are_audited_as_the_key(app, api, admin_client):
    app.config.update(WHATSAPP_PHONE_NUMBER_ID="106540352242922", WHATSAPP_ACCESS_TOKEN="token")
    template_id = make_template(app, "order_update", ORDER_UPDATE)
    add_contacts(app, 2)
    variables = {"body.1": {"source": "name", "fallback": "there"}, "body.2": {"source": "literal", "value": "#1"}}
    campaign_id = api.post("/campaigns", json={"name": "Shipped", "template_id": template_id,
                                               "variables": variables}).get_json()["id"]
    for action in ("launch", "pause", "resume", "cancel"):
        assert api.post(f"/campaigns/{campaign_id}/{action}").status_code == 200, action
    prefix = api.get("/me").get_json()["prefix"]
    with app.app_context():
        entries = {row.action: row.actor for row in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action.like("campaign.%")))}
    expected = f"API key “Shop” ({prefix})"
    assert entries == {action: expected for action in ("campaign.create", "campaign.launch", "campaign.pause",
                                                        "campaign.resume", "campaign.cancel")}
    page = admin_client.get("/admin/audit", query_string={"action": "campaign.launch"}).get_data(as_text=True)
    assert "API key “Shop”" in page and prefix in page


def test_staff_opt_out_and_undo_reach_the_endpoint(app, staff_client, receiver):
    make_endpoint(app, receiver, OPT_EVENTS)
    contact_id = add_contacts(app, 1)[0]
    token = csrf_token_from(staff_client.get(f"/contacts/{contact_id}").get_data(as_text=True))
    staff_client.post(f"/contacts/{contact_id}/opt-out", data={"csrf_token": token})
    staff_client.post(f"/contacts/{contact_id}/opt-out", data={"csrf_token": token})  # already out: no event
    staff_client.post(f"/contacts/{contact_id}/undo-opt-out", data={"csrf_token": token})
    run_jobs(app)  # the views queued the delivery job: no sweep needed
    [out] = _received(receiver, "contact.opted_out")
    [back] = _received(receiver, "contact.opted_in")
    assert (out["contact_id"], out["phone"], out["source"]) == (contact_id, phone(1), "staff")
    assert back["contact_id"] == contact_id


def test_a_bulk_staff_opt_out_is_one_insert_for_all_its_events(app, staff_client, receiver, counted_inserts):
    make_endpoint(app, receiver, OPT_EVENTS)
    ids = add_contacts(app, 4)
    with app.app_context():
        db.session.get(Contact, ids[3]).record_opt_out("keyword", utcnow())  # already out: no event for it
        db.session.commit()
    token = csrf_token_from(staff_client.get("/contacts/").get_data(as_text=True))
    html = staff_client.post("/contacts/bulk", data={"csrf_token": token, "action": "opt_out", "scope": "selected",
                                                     "ids": ids}, follow_redirects=True).get_data(as_text=True)
    assert "3 contacts changed" in html
    assert len(counted_inserts) == 1
    run_jobs(app)
    events = _received(receiver, "contact.opted_out")
    assert sorted(item["contact_id"] for item in events) == ids[:3]
    assert {item["source"] for item in events} == {"staff"}


def test_an_api_opt_out_reaches_the_endpoint(app, api, receiver):
    make_endpoint(app, receiver, OPT_EVENTS)
    contact_id = add_contacts(app, 1)[0]
    api.post(f"/contacts/{contact_id}/opt-out")
    api.post(f"/contacts/{contact_id}/opt-out")
    run_jobs(app)
    [out] = _received(receiver, "contact.opted_out")
    assert (out["contact_id"], out["source"]) == (contact_id, "api")


def test_a_131050_failed_status_opts_out_and_reaches_the_endpoint(hooks, receiver, make_contact):
    make_endpoint(hooks.app, receiver, OPT_EVENTS)
    contact_id = make_contact("+919800000300", "Ravi")
    campaign_id, wamid = support.make_campaign(hooks.app), support.new_wamid()
    support.make_message(hooks.app, campaign_id, contact_id, "sent", wamid)
    hooks.deliver(statuses_body(status(wamid, "failed", 4, error_code=131050)),
                  statuses_body(status(wamid, "failed", 5, error_code=131050)))  # a repeat: no second event
    [out] = _received(receiver, "contact.opted_out")
    assert (out["contact_id"], out["phone"], out["source"]) == (contact_id, "+919800000300", "user_preferences")


def test_a_send_answered_with_131050_opts_out_and_reaches_the_endpoint(app, sim, receiver):
    make_endpoint(app, receiver, OPT_EVENTS)
    ids = add_contacts(app, 3)
    sim.configure(fixed_outcomes={phone(2)[1:]: {"code": 131050, "mode": "sync"}})
    campaign_id = dispatch.make_campaign(app)
    dispatch.launch(app, campaign_id)  # runs the lane, which queues the delivery job, which runs too
    [out] = _received(receiver, "contact.opted_out")
    assert (out["contact_id"], out["source"]) == (ids[1], "user_preferences")


def test_a_finished_campaign_is_delivered_without_waiting_for_the_sweep(app, sim, receiver):
    make_endpoint(app, receiver, ["campaign.finished"])
    add_contacts(app, 2)
    campaign_id = dispatch.make_campaign(app, name="Diwali offer")
    dispatch.launch(app, campaign_id)  # no sweep_outbound_webhooks here
    [finished] = _received(receiver, "campaign.finished")
    assert (finished["campaign_id"], finished["status"]) == (campaign_id, "completed")
    assert outbox(app)[0][0] == "campaign.finished"
