"""Factories for the analytics tests: campaigns and messages whose counters and hourly stats stay consistent
(every status change goes through app.services.sending.message_state, as in production). No tests here."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from app.extensions import db
from app.models import Campaign, CampaignStatus, Contact, Message, MessageStatus
from app.services.sending import message_state
from app.whatsapp.errors import classify

S, C = MessageStatus, CampaignStatus
HTMX = {"HX-Request": "true"}
PATHS = {
    "pending": (),
    "sent": (S.SENDING, S.SENT),
    "delivered": (S.SENDING, S.SENT, S.DELIVERED),
    "read": (S.SENDING, S.SENT, S.DELIVERED, S.READ),
    "failed": (S.SENDING, S.FAILED),
    "skipped": (S.SKIPPED,),
}


def phone(number: int) -> str:
    return f"+9198{number:08d}"


def add_contacts(app, count: int, start: int = 1, **columns) -> list[int]:
    """`count` contacts +9198000000NN named "Customer NN", in one commit."""
    with app.app_context():
        contacts = [Contact(phone=phone(n), wa_id=phone(n)[1:], name=f"Customer {n}", attributes={}, **columns)
                    for n in range(start, start + count)]
        db.session.add_all(contacts)
        db.session.commit()
        return [contact.id for contact in contacts]


def make_campaign(app, name: str = "Diwali offer", status: str = C.COMPLETED, started_at: datetime | None = None,
                  finished_at: datetime | None = None) -> int:
    with app.app_context():
        campaign = Campaign(name=name, phone_number_id="106540352242922", status=status, started_at=started_at,
                            finished_at=finished_at, audience={}, variables={})
        campaign.send_run()  # launched: its messages belong to its run
        db.session.add(campaign)
        db.session.commit()
        return campaign.id


def add_messages(app, campaign_id: int | None, contact_ids: list[int], outcome: str, at: datetime,
                 error_code: int | None = None, replied: bool = False, created_at: datetime | None = None) -> list[int]:
    """One message per contact, moved along `outcome`'s path at `at` (counters and hourly stats follow)."""
    with app.app_context():
        totals = message_state.new_totals()
        messages = []
        run_id = db.session.get(Campaign, campaign_id).run.id if campaign_id is not None else None
        for contact_id in contact_ids:
            message = Message(campaign_id=campaign_id, run_id=run_id, contact_id=contact_id, status=S.PENDING,
                              created_at=created_at or at, parameters={}, content={})
            if run_id is not None:
                totals[run_id]["targeted"] += 1
            _follow(message, outcome, at, error_code, totals)
            if replied:
                message.replied_at = at
                totals.count_reply(run_id, at)
            messages.append(message)
        db.session.add_all(messages)
        message_state.add_to_counters(totals)
        db.session.commit()
        return [message.id for message in messages]


def _follow(message: Message, outcome: str, at: datetime, error_code: int | None, totals) -> None:
    for status in PATHS[outcome]:
        if status == S.FAILED:
            info = classify(error_code)
            message.error_code, message.error_title, message.error_detail = error_code, info.title, info.explanation
        assert message_state.move(message, status, at, totals), (message.status, status)


def add_reply(app, contact_id: int, at: datetime, text: str = "Yes please") -> int:
    """An inbound message from a customer (no campaign)."""
    with app.app_context():
        message = Message(contact_id=contact_id, direction="in", message_type="text", status=S.RECEIVED, body=text,
                          created_at=at, parameters={}, content={})
        db.session.add(message)
        db.session.commit()
        return message.id


def figure(html: str, attribute: str, name: str) -> str:
    """The text of the element marked data-<attribute>="<name>"."""
    match = re.search(rf'data-{attribute}="{name}"[^>]*>([^<]*)<', html)
    assert match, f"no data-{attribute}={name} on the page"
    return match.group(1).strip()


def chart_json(html: str, element_id: str) -> dict:
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert match, f"no JSON block #{element_id}"
    return json.loads(match.group(1))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)
