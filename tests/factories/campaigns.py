"""Shared helpers for the dispatch tests: an in-process Cloud API simulator and campaign factories (no tests here).

Test modules import the fixtures they use from here, as they would from a conftest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from unittest import mock

import pytest
import requests
from sqlalchemy import select

import jobs.webhooks
from app.extensions import db
from app.models import Campaign, Contact, Message, MessageTemplate, TemplateStatus
from app.services.campaigns import lifecycle
from app.services.sending import claims, message_state
from app.whatsapp.sim_config import SimulatorConfig, WebhookBehaviour
from app.whatsapp.sim_rules import status_error
from app.whatsapp.sim_server import SimulatorServer
from app.whatsapp.sim_webhooks import envelope, messages_value
from app.whatsapp.simulator import Simulator, create_simulator
from app.whatsapp.webhook import SIGNATURE_HEADER, sign
from jobs.campaigns import enqueue_send_batch
from tests.conftest import run_jobs

TOKEN, PHONE_NUMBER_ID, WABA_ID = "dispatch-test-token", "106540352242922", "102290129340398"
APP_SECRET = "dispatch-test-app-secret"
HELLO = [{"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a "
                                  "WhatsApp message notification from the Cloud API, hosted by Meta."}]
ORDER_UPDATE = [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has been shipped and will reach you soon."}]


class Sim:
    """The running simulator: its URL, its in-process state, and its control API."""

    def __init__(self, url: str, simulator: Simulator):
        self.url, self.simulator = url, simulator

    def configure(self, **changes) -> dict:
        response = requests.post(f"{self.url}/_sim/config", json=changes, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def ledger(self, detail: bool = False) -> dict:
        return requests.get(f"{self.url}/_sim/ledger", params={"detail": "1" if detail else "0"}, timeout=5).json()


@pytest.fixture(scope="session")
def sim_process_wide() -> Iterator[Sim]:
    # No throughput cap: the app sends at SEND_RATE_PER_SECOND=1000 here, far above Meta's default 80 a second.
    config = SimulatorConfig(access_token=TOKEN, phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID,
                             max_messages_per_second=0, webhooks=WebhookBehaviour(enabled=False))
    simulator = create_simulator(config)
    server = SimulatorServer(simulator, "127.0.0.1", 0).start()
    yield Sim(server.url, simulator)
    server.shutdown()
    simulator.close()


@pytest.fixture
def sim(app, sim_process_wide: Sim) -> Sim:
    """The simulator, reset, with the app pointed at it and quick retries for tests."""
    sim_process_wide.simulator.reset()
    app.config.update(WHATSAPP_API_BASE_URL=sim_process_wide.url, WHATSAPP_ACCESS_TOKEN=TOKEN,
                      WHATSAPP_PHONE_NUMBER_ID=PHONE_NUMBER_ID, WHATSAPP_BUSINESS_ACCOUNT_ID=WABA_ID,
                      WHATSAPP_SEND_CONCURRENCY=4, SEND_RATE_PER_SECOND=1000, SEND_BATCH_SIZE=10,
                      WHATSAPP_APP_SECRET=APP_SECRET)
    return sim_process_wide


def report_failures(app, sim) -> int:
    """Post what Meta sends after accepting a message it cannot deliver: one signed `failed` status webhook, in the
    simulator's own words, for each send it failed by webhook; then process it as the worker does. Returns how many.

    (The session simulator posts no webhooks itself: the app is not served over HTTP in these tests.)
    """
    failed = [send for send in sim.ledger(detail=True)["recent"] if send["failure_code"] is not None]
    config, client = sim.simulator.config, app.test_client()
    for send in failed:
        item = {"id": send["wamid"], "status": "failed", "timestamp": str(int(datetime.now(UTC).timestamp())),
                "recipient_id": send["to"], "errors": [status_error(send["failure_code"])]}
        raw = json.dumps(envelope(config, "messages", messages_value(config, statuses=[item]))).encode()
        response = client.post("/webhooks/whatsapp", data=raw, content_type="application/json",
                               headers={SIGNATURE_HEADER: sign(raw, app.config["WHATSAPP_APP_SECRET"])})
        assert response.status_code == 200, response.get_data(as_text=True)
    with mock.patch.object(jobs.webhooks, "DRAIN_IDLE_SECONDS", 0):  # the drain ends once the inbox is empty
        run_jobs(app)
    return len(failed)


def phone(number: int) -> str:
    return f"+9198{number:08d}"


def add_contacts(app, count: int, start: int = 1, **columns) -> list[int]:
    """`count` contacts with numbers +9198000000NN, in one commit."""
    with app.app_context():
        contacts = [Contact(phone=phone(n), wa_id=phone(n)[1:], name=f"Customer {n}", attributes={}, **columns)
                    for n in range(start, start + count)]
        db.session.add_all(contacts)
        db.session.commit()
        return [contact.id for contact in contacts]


def make_template(app, name: str = "hello_world", components=None) -> int:
    with app.app_context():
        template = MessageTemplate(name=name, language="en_US", category="UTILITY", status=TemplateStatus.APPROVED,
                                   components=components or (ORDER_UPDATE if name == "order_update" else HELLO),
                                   synced_at=datetime.now(UTC))
        db.session.add(template)
        db.session.commit()
        return template.id


def make_campaign(app, template_id: int | None = None, name: str = "Diwali offer", **fields) -> int:
    """A draft campaign to everyone ({} audience) from the test sender; `fields` override any column."""
    with app.app_context():
        if template_id is None:
            template_id = db.session.scalar(select(MessageTemplate.id).where(MessageTemplate.name == "hello_world"))
        if template_id is None:
            template_id = make_template(app)
        campaign = Campaign(name=name, template_id=template_id, phone_number_id=PHONE_NUMBER_ID,
                            audience=fields.pop("audience", {}), **fields)
        db.session.add(campaign)
        db.session.commit()
        return campaign.id


def launch(app, campaign_id: int, run: bool = True) -> None:
    """Launch as the page does (the service, then the enqueue helper) and, by default, run every queued job."""
    with app.app_context():
        lifecycle.launch(campaign_id, None)
        enqueue_send_batch(campaign_id)
    if run:
        run_jobs(app)


def campaign_row(app, campaign_id: int) -> Campaign:
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        db.session.expunge(campaign)
        return campaign


def messages(app, campaign_id: int) -> dict[str, Message]:
    """The campaign's messages by the contact's phone number."""
    with app.app_context():
        rows = db.session.scalars(select(Message).where(Message.campaign_id == campaign_id)).unique().all()
        found = {message.contact.phone: message for message in rows}
        db.session.expunge_all()
        return found


def statuses(app, campaign_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in messages(app, campaign_id).values():
        counts[message.status] = counts.get(message.status, 0) + 1
    return counts


def assert_counters_match(app, campaign_id: int) -> dict[str, int]:
    """The invariant: maintained counters equal a recount of the message rows."""
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        maintained = message_state.maintained(campaign)
        recount = message_state.recount(campaign.run.id) if campaign.run else maintained
    assert maintained == recount
    return recount


def claim_of(campaign_id: int, limit: int, now, *criteria) -> list[int]:
    """Claim due messages of one campaign, as its batches do."""
    return claims.claim(limit, now, Message.campaign_id == campaign_id, *criteria)
