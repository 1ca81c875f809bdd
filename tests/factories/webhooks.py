"""Shared by the webhook tests (there are no tests here): signed posts, Meta-shaped bodies, campaign rows.

Test modules pick up the fixtures by assigning them, e.g. `hooks, sim_api = support.hooks, support.sim_api`, plus
the simulator fixtures `sim_server` and `sim_receiver` that `sim_api` needs.
"""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

import jobs.webhooks
from app.extensions import db
from app.models import Campaign, CampaignStatus, Contact, Message, MessageTemplate, WebhookEvent
from app.services.sending import message_state
from app.whatsapp.webhook import SIGNATURE_HEADER, sign
from tests.conftest import run_jobs
from tests.whatsapp import conftest as wa

APP_SECRET = wa.APP_SECRET
VERIFY_TOKEN = "verify-me-please"
BUSINESS_NUMBER = "15550783881"
T0 = 1_780_000_000  # a Unix time; statuses use T0 + n
_wamids = itertools.count(1)

sim_server, sim_receiver, sim_api = wa.sim_server, wa.sim_receiver, wa.sim_api


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=UTC)


def new_wamid(kind: str = "OUT") -> str:
    return f"wamid.TEST{kind}{next(_wamids):08d}"


# --- bodies -----------------------------------------------------------------------------------------------------

def envelope(field: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"object": "whatsapp_business_account",
            "entry": [{"id": wa.WABA_ID, "changes": [{"value": value, "field": field}]}]}


def messages_value(**parts: Any) -> dict[str, Any]:
    metadata = {"display_phone_number": BUSINESS_NUMBER, "phone_number_id": wa.PHONE_NUMBER_ID}
    return {"messaging_product": "whatsapp", "metadata": metadata, **parts}


def status(wamid: str, name: str, seconds: int = 0, callback: str | None = None, recipient: str = "919800000001",
           error_code: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": name, "timestamp": str(T0 + seconds), "recipient_id": recipient}
    if callback:
        item["biz_opaque_callback_data"] = callback
    if error_code is not None:
        item["errors"] = [{"code": error_code, "title": "Meta's title", "message": "Meta's message",
                           "error_data": {"details": "Meta's details."}}]
    return item


def statuses_body(*items: dict[str, Any]) -> dict[str, Any]:
    return envelope("messages", messages_value(statuses=list(items)))


def inbound_body(*messages: dict[str, Any], name: str | None = "Asha Rao") -> dict[str, Any]:
    senders = dict.fromkeys(message["from"] for message in messages)
    contacts = [{"profile": {"name": name}, "wa_id": sender} for sender in senders] if name else []
    return envelope("messages", messages_value(contacts=contacts, messages=list(messages)))


def text(sender: str, body: str, seconds: int = 0, wamid: str | None = None, context: str | None = None,
         kind: str = "text", **content: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"from": sender, "id": wamid or new_wamid("IN"), "timestamp": str(T0 + seconds),
                               "type": kind}
    if kind == "text":
        message["text"] = {"body": body}
    message.update(content)
    if context:
        message["context"] = {"from": BUSINESS_NUMBER, "id": context}
    return message


def button(sender: str, payload: str, seconds: int = 0, label: str | None = None) -> dict[str, Any]:
    return text(sender, "", seconds, kind="button", button={"payload": payload, "text": label or payload})


def preference_body(wa_id: str, value: str, seconds: int = 0) -> dict[str, Any]:
    item = {"wa_id": wa_id, "detail": f"User requested to {value} marketing messages",
            "category": "marketing_messages", "value": value, "timestamp": T0 + seconds}
    return envelope("user_preferences", messages_value(user_preferences=[item]))


def template_body(event: str, name: str, language: str = "en_US", template_id: int = 1200000000000099,
                  reason: str = "NONE") -> dict[str, Any]:
    return envelope("message_template_status_update", {
        "event": event, "message_template_id": template_id, "message_template_name": name,
        "message_template_language": language, "reason": reason, "message_template_category": "MARKETING"})


def post_template_verdict(app, monkeypatch, name: str, event: str = "APPROVED") -> None:
    """Meta's verdict on a template as it arrives: a signed webhook naming the template's own Meta id. The caller runs
    the queued job (run_jobs) or leaves it to a background worker."""
    monkeypatch.setattr(jobs.webhooks, "DRAIN_IDLE_SECONDS", 0)
    monkeypatch.setattr(jobs.webhooks, "DRAIN_POLL_SECONDS", 0)
    app.config.update(WHATSAPP_APP_SECRET="template-secret")
    with app.app_context():
        meta_id = db.session.scalar(select(MessageTemplate.meta_id).where(MessageTemplate.name == name))
    raw = json.dumps(template_body(event, name, template_id=int(meta_id))).encode()
    response = app.test_client().post("/webhooks/whatsapp", data=raw, content_type="application/json",
                                      headers={SIGNATURE_HEADER: sign(raw, "template-secret")})
    assert response.status_code == 200


# --- the app side -----------------------------------------------------------------------------------------------

class Hooks:
    """Posts signed webhooks to the app's test client and runs the queued jobs like a worker would."""

    def __init__(self, app, sim):
        self.app, self.sim, self.client = app, sim, app.test_client()

    def post(self, body: dict[str, Any] | bytes, secret: str | None = APP_SECRET, **headers: str):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if secret is not None:
            headers.setdefault(SIGNATURE_HEADER, sign(raw, secret))
        return self.client.post("/webhooks/whatsapp", data=raw, headers=headers,
                                content_type="application/json")

    def deliver(self, *bodies: dict[str, Any] | bytes) -> None:
        """Post each body (asserting 200), then process everything queued."""
        for body in bodies:
            response = self.post(body)
            assert response.status_code == 200, response.get_data(as_text=True)
        run_jobs(self.app)

    def events(self) -> list[WebhookEvent]:
        with self.app.app_context():
            rows = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
            db.session.expunge_all()
            return list(rows)

    def sends(self, wa_id: str) -> list[dict[str, Any]]:
        """What the simulator accepted for this recipient (its ledger)."""
        return [send for send in self.sim.ledger(detail=True)["recent"] if send["to"] == wa_id]


@pytest.fixture
def hooks(app, sim_api, monkeypatch) -> Hooks:
    """The app configured for signed webhooks, sending through the in-process simulator.

    The drain job ends as soon as the inbox is empty: run_jobs works in bursts, and lingering for more webhooks
    or for a batch to fill (as it does in production) would only make every test wait.
    """
    monkeypatch.setattr(jobs.webhooks, "DRAIN_IDLE_SECONDS", 0)
    monkeypatch.setattr(jobs.webhooks, "DRAIN_POLL_SECONDS", 0)  # nor for a batch to fill
    app.config.update(WHATSAPP_APP_SECRET=APP_SECRET, WHATSAPP_VERIFY_TOKEN=VERIFY_TOKEN,
                      WHATSAPP_API_BASE_URL=sim_api.url, WHATSAPP_ACCESS_TOKEN=wa.ACCESS_TOKEN,
                      WHATSAPP_PHONE_NUMBER_ID=wa.PHONE_NUMBER_ID, WHATSAPP_BUSINESS_ACCOUNT_ID=wa.WABA_ID)
    return Hooks(app, sim_api)


def make_campaign(app, status: str = CampaignStatus.RUNNING, template_id: int | None = None,
                  name: str = "Diwali offer") -> int:
    with app.app_context():
        campaign = Campaign(name=name, phone_number_id=wa.PHONE_NUMBER_ID, status=status, template_id=template_id)
        campaign.send_run()  # launched: its messages belong to its run
        db.session.add(campaign)
        db.session.commit()
        return campaign.id


def make_message(app, campaign_id: int | None, contact_id: int, status: str = "sent", wamid: str | None = None,
                 sent_seconds: int = 0) -> int:
    """A campaign message as the dispatcher leaves it, counted on its campaign (sent ones have sent_at)."""
    with app.app_context():
        sent = status in ("sent", "delivered", "read")
        campaign = db.session.get(Campaign, campaign_id) if campaign_id is not None else None
        message = Message(campaign_id=campaign_id, run_id=campaign.run.id if campaign else None, contact_id=contact_id,
                          status=status, wamid=wamid, sent_at=at(sent_seconds) if sent else None,
                          source="campaign" if campaign else "inbox_reply")
        db.session.add(message)
        if campaign is not None:
            campaign.targeted += 1
            campaign.sent += 1 if sent else 0
        db.session.commit()
        return message.id


def counters(app, campaign_id: int) -> dict[str, int]:
    """The maintained counters, asserting they equal a recount of the message rows."""
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        maintained, recount = message_state.maintained(campaign), message_state.recount(campaign.run.id)
        assert maintained == recount
        return maintained


def message_row(app, message_id: int | None = None, wamid: str | None = None) -> Message:
    with app.app_context():
        condition = Message.id == message_id if message_id is not None else Message.wamid == wamid
        message = db.session.scalars(select(Message).where(condition)).one()
        db.session.expunge_all()
        return message


def contact_row(app, wa_id: str) -> Contact | None:
    with app.app_context():
        contact = db.session.scalars(select(Contact).where(Contact.wa_id == wa_id)).first()
        db.session.expunge_all()
        return contact


def messages_of(app, wa_id: str, direction: str | None = None) -> list[Message]:
    with app.app_context():
        statement = select(Message).join(Contact, Message.contact_id == Contact.id).where(Contact.wa_id == wa_id)
        if direction:
            statement = statement.where(Message.direction == direction)
        rows = db.session.scalars(statement.order_by(Message.id)).all()
        db.session.expunge_all()
        return list(rows)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
