"""End to end over real HTTP: the simulator posts signed webhooks to the served app while a worker processes them."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from app.clock import utcnow
from app.extensions import db
from app.models import Message, OptOutSource, WebhookEvent
from app.services.sending import message_state
from app.whatsapp.client import WhatsAppClient, body_parameters
from app.whatsapp.settings import WhatsAppSettings
from tests.factories import webhooks as support
from tests.factories.webhooks import run_jobs, wait_until

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
ASHA, RAVI = "919800000001", "919800000002"
EVERY_STATUS = {"enabled": True, "delivered_probability": 1.0, "read_probability": 1.0, "shuffle": True,
                "duplicate_probability": 0.5, "batch_size": 2, "batch_window_ms": 5}


@pytest.fixture
def served_app(hooks):
    """The app on a real port, like production behind gunicorn, with a worker thread running its jobs."""
    server = make_server("127.0.0.1", 0, hooks.app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    stop = threading.Event()

    def work():
        while not stop.is_set():
            run_jobs(hooks.app)
            stop.wait(0.05)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    yield f"http://127.0.0.1:{server.server_port}"
    stop.set()
    worker.join(10)
    server.shutdown()
    serving.join(5)


def _send(app, client, message_id, campaign_id, to, record: bool):
    """What the dispatcher does; without `record` it crashes after the send, before saving the answer."""
    result = client.send_template(to, "order_update", "en_US", [body_parameters(["Asha", "#1042"])],
                                  biz_opaque_callback_data=f"c{campaign_id}:{message_id}")
    assert result.ok
    if record:
        with app.app_context():
            statement = select(Message).where(Message.id == message_id).with_for_update(of=Message)
            message = db.session.scalars(statement).one()
            message.wamid = message.wamid or result.wamid
            totals = message_state.new_totals()
            message_state.move(message, "sent", utcnow(), totals)  # a webhook may have got there first
            message_state.add_to_counters(totals)
            db.session.commit()
    return result.wamid


def _status(app, wamid):
    with app.app_context():
        return db.session.scalar(select(Message.status).where(Message.wamid == wamid))


def test_sends_statuses_reply_and_stop_over_real_webhooks(hooks, served_app, make_contact):
    app, sim = hooks.app, hooks.sim
    sim.configure(webhook_url=f"{served_app}/webhooks/whatsapp", webhooks=EVERY_STATUS)
    campaign_id = support.make_campaign(app)
    asha = support.make_message(app, campaign_id, make_contact(f"+{ASHA}", "Asha"), "sending")
    ravi = support.make_message(app, campaign_id, make_contact(f"+{RAVI}", "Ravi"), "sending")
    with WhatsAppClient(WhatsAppSettings.from_mapping(app.config)) as client:
        asha_wamid = _send(app, client, asha, campaign_id, ASHA, record=False)
        ravi_wamid = _send(app, client, ravi, campaign_id, RAVI, record=True)
    wait_until(lambda: _status(app, asha_wamid) == "read" and _status(app, ravi_wamid) == "read")

    answer = sim.inbound(**{"from": ASHA, "profile_name": "Asha", "text": " stop ", "reply_to_last": True})
    assert answer.status_code == 200 and answer.json()["context_id"] == asha_wamid
    wait_until(lambda: [m.status for m in support.messages_of(app, ASHA, "out") if m.campaign_id is None]
               == ["read"])
    wait_until(lambda: sim.ledger()["webhooks"]["pending"] == 0)
    wait_until(lambda: all(event.processed_at for event in hooks.events()))

    assert support.counters(app, campaign_id) == {"targeted": 2, "skipped": 0, "sent": 2, "delivered": 2, "read": 2,
                                                  "failed": 0, "replied": 1}
    contact = support.contact_row(app, ASHA)
    assert contact.opt_out_source == OptOutSource.KEYWORD and contact.opted_out_at is not None
    assert [m.body for m in support.messages_of(app, ASHA, "in")] == [" stop "]
    ledger = sim.ledger(detail=True)
    assert ledger["per_recipient"] == {ASHA: 2, RAVI: 1} and ledger["duplicates"] == 0
    assert ledger["webhooks"]["failed"] == 0
    with app.app_context():
        outcomes = db.session.scalars(select(WebhookEvent.outcome)).all()
    assert not [outcome for outcome in outcomes if outcome.startswith(("orphaned", "error", "rejected"))]
