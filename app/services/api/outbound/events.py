"""Emitting events into the outbox, in the transaction of the change they report: the hot path's whole cost.

Each emit first reads which event types enabled endpoints want (one indexed read of a table of a handful of rows).
When none wants them it stops there; otherwise the whole batch's events go in with one executemany. Measured by
bench/outbound_webhooks.py on this 2-core machine under a load average of 5-6, per batch of 200 statuses: the read
0.13 ms (SQLite) / 0.27 ms (PostgreSQL); the insert 3 ms of a 25 ms batch (SQLite) / 10 ms of 45 ms (PostgreSQL,
where an INSERT … SELECT FROM unnest(…) measured the same as the executemany: the cost is the rows, not the calls).
Delivery is the jobs' business after the commit (delivery.py), so webhook intake and sending never wait on a
receiver. `take_emitted` tells the job module whether this process wrote any, so it queues a delivery job only then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select

from app.extensions import db
from app.models import OutboundEndpoint, OutboundEvent

MESSAGE_SENT, MESSAGE_DELIVERED, MESSAGE_READ, MESSAGE_FAILED = (
    "message.sent", "message.delivered", "message.read", "message.failed")
MESSAGE_RECEIVED = "message.received"
CONTACT_OPTED_OUT, CONTACT_OPTED_IN = "contact.opted_out", "contact.opted_in"
CAMPAIGN_FINISHED = "campaign.finished"
PING = "ping"  # sent only by the "Send a test event" button, to one endpoint
# What admins choose from, in the order the form lists them.
EVENT_TYPES: dict[str, str] = {
    MESSAGE_SENT: "A message was sent (WhatsApp accepted it)",
    MESSAGE_DELIVERED: "A message was delivered to the customer's phone",
    MESSAGE_READ: "A message was read",
    MESSAGE_FAILED: "A message could not be delivered",
    MESSAGE_RECEIVED: "A customer sent us a message",
    CONTACT_OPTED_OUT: "A contact opted out",
    CONTACT_OPTED_IN: "A contact opted back in",
    CAMPAIGN_FINISHED: "A campaign finished (completed, cancelled or failed)",
}
STATUS_TYPES = {"sent": MESSAGE_SENT, "delivered": MESSAGE_DELIVERED, "read": MESSAGE_READ, "failed": MESSAGE_FAILED}
USER_PREFERENCES = "user_preferences"  # OptOutSource.USER_PREFERENCES: WhatsApp's own marketing control
APPLIED = "applied"  # webhooks.statuses' verdict for a status that changed its message

_emitted = False  # per process: events were written since the job module last asked


class StatusTarget(Protocol):  # webhooks.statuses.Target, without importing the webhooks package
    id: int
    campaign_id: int | None
    contact_id: int
    wamid: str | None
    error_code: int | None
    error_title: str | None


def wanted_types() -> set[str]:
    """The event types at least one enabled endpoint wants."""
    rows = db.session.scalars(select(OutboundEndpoint.events).where(OutboundEndpoint.enabled.is_(True)))
    return {event_type for events in rows for event_type in events}


def message_statuses(statuses: Sequence[Any], verdicts: Sequence[str], targets: Mapping[str, StatusTarget],
                     now: datetime) -> int:
    """One event per status that changed its message (webhooks.statuses.apply_statuses' APPLIED verdicts)."""
    if not statuses or not (wanted := wanted_types() & set(STATUS_TYPES.values())):
        return 0
    rows = [_status_row(targets[status.wamid], status.status, status.timestamp or now, now)
            for status, verdict in zip(statuses, verdicts, strict=True)
            if verdict == APPLIED and STATUS_TYPES.get(status.status) in wanted]
    return _insert(rows)


def _status_row(target: StatusTarget, status: str, at: datetime, now: datetime) -> dict[str, Any]:
    data = {"message_id": target.id, "wamid": target.wamid, "status": status, "contact_id": target.contact_id,
            "campaign_id": target.campaign_id}
    if status == "failed":
        data["error"] = {"code": target.error_code, "title": target.error_title}
    return _row(STATUS_TYPES[status], at, now, data)


class Stored(Protocol):  # webhooks.inbound.StoredMessage
    id: int
    event: Any
    contact: Any


def messages_received(stored: Iterable[Stored], now: datetime) -> int:
    """One event per customer message stored just now."""
    stored = list(stored)
    if not stored or MESSAGE_RECEIVED not in wanted_types():
        return 0
    return _insert([_row(MESSAGE_RECEIVED, item.event.timestamp or now, now, {
        "message_id": item.id, "wamid": item.event.wamid, "type": item.event.type, "text": item.event.visible_text,
        "in_reply_to": item.event.context_id, "contact_id": item.contact.id, "phone": item.contact.phone,
        "name": item.contact.name}) for item in stored])


def contact_opted(contact: Any, opted_out: bool, how: str | None, at: datetime, now: datetime) -> int:
    """A contact opted out (`how`: keyword, button, user_preferences, staff, api …) or back in."""
    return contacts_opted([contact], opted_out, how, at, now)


class OptedContact(Protocol):  # a Contact, or a row of UPDATE … RETURNING id, phone, name
    id: int
    phone: str
    name: str | None


def contacts_opted(contacts: Iterable[OptedContact], opted_out: bool, how: str | None, at: datetime,
                   now: datetime) -> int:
    """Many contacts opted out (or in) at once, e.g. a bulk action: one insert for all of them."""
    event_type = CONTACT_OPTED_OUT if opted_out else CONTACT_OPTED_IN
    contacts = list(contacts)
    if not contacts or event_type not in wanted_types():
        return 0
    source = {"source": str(how)} if opted_out and how else {}
    return _insert([_row(event_type, at, now, {"contact_id": contact.id, "phone": contact.phone,
                                               "name": contact.name} | source) for contact in contacts])


def stopped_marketing(contacts: Iterable[OptedContact], now: datetime) -> int:
    """Contacts a send found (error 131050) to have turned marketing messages off in WhatsApp: the senders'
    announcement, run in the transaction that recorded the batch (the sending package cannot import this one)."""
    return contacts_opted(contacts, True, USER_PREFERENCES, now, now)


def campaign_finished(campaign: Any, now: datetime) -> int:
    """A campaign (or one run of a recurring one) completed, was cancelled or failed, with its funnel figures."""
    if CAMPAIGN_FINISHED not in wanted_types():
        return 0
    run = campaign.run
    figures = {name: getattr(run, name) for name in ("targeted", "skipped", "sent", "delivered", "read", "failed",
                                                     "replied")} if run is not None else {}
    return _insert([_row(CAMPAIGN_FINISHED, now, now, {
        "campaign_id": campaign.id, "name": campaign.name, "status": str(campaign.status),
        "started_at": _iso(campaign.started_at), "finished_at": _iso(now), "figures": figures})])


def take_emitted() -> bool:
    """Whether this process emitted events since the last call (then a delivery job is worth queuing)."""
    global _emitted
    emitted, _emitted = _emitted, False
    return emitted


def _row(event_type: str, at: datetime, now: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": event_type, "occurred_at": at, "payload": data, "created_at": now}


def _insert(rows: list[dict[str, Any]]) -> int:
    global _emitted
    if rows:
        # One executemany for the batch; Core rather than the ORM's bulk insert, which costs a third more here.
        db.session.execute(OutboundEvent.__table__.insert(), rows)
        _emitted = True
    return len(rows)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
