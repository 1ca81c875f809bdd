"""Events reach endpoints: message statuses from a status webhook (set-based, one INSERT per batch), customer
messages, opt-out and opt-in, and finished campaigns; nothing is written to the outbox when no endpoint wants it."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from app.extensions import db
from jobs.outbound_webhooks import sweep_outbound_webhooks
from tests.conftest import run_jobs
from tests.factories import campaigns as dispatch
from tests.factories import outbound
from tests.factories import webhooks as support
from tests.factories.outbound import make_endpoint, outbox
from tests.factories.webhooks import inbound_body, status, statuses_body, text

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
receiver = outbound.receiver
sim, sim_process_wide = dispatch.sim, dispatch.sim_process_wide
ASHA = "919800000001"


@pytest.fixture
def sent(hooks, make_contact):
    """Three campaign messages WhatsApp accepted: (campaign id, [wamid, …])."""
    campaign_id = support.make_campaign(hooks.app)
    wamids = []
    for number in range(3):
        contact_id = make_contact(f"+91980000010{number}", f"Customer {number}")
        wamids.append(support.new_wamid())
        support.make_message(hooks.app, campaign_id, contact_id, "sent", wamids[-1])
    return campaign_id, wamids


def _by_type(receiver):
    found = {}
    for got in receiver.received:
        assert got.signature_ok
        found.setdefault(got.json["type"], []).append(got.json)
    return found


def test_status_webhooks_reach_the_endpoint_with_one_insert_per_batch(hooks, receiver, sent):
    campaign_id, wamids = sent
    make_endpoint(hooks.app, receiver, ["message.delivered", "message.failed"])
    inserts = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOUND_EVENTS"):
            inserts.append(statement)

    with hooks.app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            hooks.deliver(statuses_body(*[status(wamid, "delivered", 5) for wamid in wamids],
                                        *[status(wamid, "read", 6) for wamid in wamids],
                                        status(wamids[0], "delivered", 5)))  # a duplicate: no second event
        finally:
            event.remove(db.engine, "before_cursor_execute", count)

    delivered = _by_type(receiver)["message.delivered"]
    assert sorted(item["data"]["wamid"] for item in delivered) == sorted(wamids)
    assert {item["data"]["campaign_id"] for item in delivered} == {campaign_id}
    assert sorted(item["data"]["phone"] for item in delivered) == ["+919800000100", "+919800000101",
                                                                   "+919800000102"]
    assert "message.read" not in _by_type(receiver)  # not wanted by this endpoint
    assert len(inserts) == 1


def test_a_failed_status_carries_its_error(hooks, receiver, sent):
    _, wamids = sent
    make_endpoint(hooks.app, receiver, ["message.failed"])
    hooks.deliver(statuses_body(status(wamids[1], "failed", 4, error_code=131026)))
    [failed] = _by_type(receiver)["message.failed"]
    assert failed["data"]["wamid"] == wamids[1] and failed["data"]["error"]["code"] == 131026


def test_nothing_enters_the_outbox_when_no_endpoint_wants_it(hooks, receiver, sent):
    _, wamids = sent
    make_endpoint(hooks.app, receiver, ["campaign.finished"])
    hooks.deliver(statuses_body(status(wamids[0], "delivered", 5)), inbound_body(text(ASHA, "Hello")))
    assert outbox(hooks.app) == []
    assert receiver.received == []


def test_a_customer_message_reaches_the_endpoint(hooks, receiver):
    make_endpoint(hooks.app, receiver, ["message.received"])
    hooks.deliver(inbound_body(text(ASHA, "Is my order shipped?", seconds=3)))
    [got] = _by_type(receiver)["message.received"]
    assert got["data"]["text"] == "Is my order shipped?"
    assert (got["data"]["phone"], got["data"]["name"]) == (f"+{ASHA}", "Asha Rao")


def test_opting_out_and_back_in_reach_the_endpoint(hooks, receiver):
    make_endpoint(hooks.app, receiver, ["contact.opted_out", "contact.opted_in"])
    hooks.deliver(inbound_body(text(ASHA, "STOP", seconds=3)))
    hooks.deliver(inbound_body(text(ASHA, "STOP", seconds=4)))  # already out: no second event
    hooks.deliver(inbound_body(text(ASHA, "START", seconds=5)))
    found = _by_type(receiver)
    [out], [back] = found["contact.opted_out"], found["contact.opted_in"]
    assert (out["data"]["phone"], out["data"]["source"]) == (f"+{ASHA}", "keyword")
    assert back["data"]["phone"] == f"+{ASHA}"


def test_a_finished_campaign_reaches_the_endpoint_with_its_figures(app, sim, receiver):
    make_endpoint(app, receiver, ["campaign.finished"])
    dispatch.add_contacts(app, 3)
    campaign_id = dispatch.make_campaign(app, name="Diwali offer")
    dispatch.launch(app, campaign_id)
    with app.app_context():
        sweep_outbound_webhooks()  # campaign jobs queue no delivery job: the minute's sweep sends it
    run_jobs(app)
    [finished] = _by_type(receiver)["campaign.finished"]
    assert (finished["data"]["campaign_id"], finished["data"]["name"]) == (campaign_id, "Diwali offer")
    assert finished["data"]["status"] == "completed"
    assert (finished["data"]["figures"]["targeted"], finished["data"]["figures"]["sent"]) == (3, 3)


def test_whatsapps_sent_status_reaches_the_endpoint_once(hooks, receiver, make_contact):
    """Our sent_at is when we recorded the API's answer; WhatsApp's `sent` status, in whole seconds, is a moment
    earlier and corrects it: that change is the message.sent event (a repeat of the webhook changes nothing)."""
    campaign_id = support.make_campaign(hooks.app)
    wamid = support.new_wamid()
    support.make_message(hooks.app, campaign_id, make_contact("+919800000200"), "sent", wamid, sent_seconds=2)
    make_endpoint(hooks.app, receiver, ["message.sent"])
    hooks.deliver(statuses_body(status(wamid, "sent", 1)), statuses_body(status(wamid, "sent", 1)))
    [sent] = _by_type(receiver)["message.sent"]
    assert (sent["data"]["wamid"], sent["occurred_at"]) == (wamid, support.at(1).isoformat())
