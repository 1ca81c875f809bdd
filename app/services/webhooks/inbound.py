"""Customer messages from webhooks: link or create the contact, store the message once, attribute replies.

A message is stored with INSERT … ON CONFLICT (wamid) DO NOTHING, so a webhook Meta delivers twice (even to two
workers at once) stores it once, and only the copy that stored it goes on to opt-out handling and replies.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Contact, Message, MessageSource, MessageStatus
from app.services.api.outbound import events as outbound_events
from app.services.contacts import phones
from app.services.sending import message_state
from app.whatsapp.events import InboundMessage

# Messages a person did not type: never answered automatically, never read as a keyword.
AUTOMATIC_TYPES = frozenset({"system", "unsupported", "reaction", "ephemeral", "unknown"})


@dataclass(frozen=True)
class StoredMessage:
    id: int
    event: InboundMessage
    contact: Contact


def store_messages(messages: Iterable[InboundMessage], totals: message_state.Totals, counts: Counter,
                   now: datetime) -> list[StoredMessage]:
    """Store each new message (oldest first) and count replies to campaigns; returns the ones stored just now."""
    stored = []
    for message in sorted(messages, key=lambda m: (m.timestamp or now, m.wamid)):
        if not _valid_sender(message.from_wa_id):
            counts["messages from invalid senders"] += 1
            continue
        contact = contact_for(message.from_wa_id, message.profile_name, now)
        message_id = _insert_message(message, contact.id, now)
        if message_id is None:
            counts["duplicate messages"] += 1
            continue
        counts["messages stored"] += 1
        counts["replies attributed"] += _attribute_reply(message, totals, now)
        stored.append(StoredMessage(message_id, message, contact))
    outbound_events.messages_received(stored, now)  # the outbox, if anyone listens
    return stored


def contact_for(wa_id: str, profile_name: str | None, now: datetime, create: bool = True) -> Contact | None:
    """The contact with this WhatsApp id (a live one first), created as +<wa_id> if there is none; locked."""
    contact = _find_contact(wa_id)
    if contact is None and create:
        db.session.execute(_insert(Contact.__table__).values(
            phone=f"+{wa_id}", wa_id=wa_id, name=_clean_name(profile_name), attributes={},
            timezone=phones.time_zone(wa_id), created_at=now, updated_at=now,
        ).on_conflict_do_nothing(index_elements=[Contact.phone]))
        contact = _find_contact(wa_id)
    if contact is not None and not contact.name and _clean_name(profile_name):
        contact.name = _clean_name(profile_name)
    return contact


def inbound_content(message: InboundMessage) -> dict[str, Any]:
    """The typed details of a message (media, location, button, …) as JSON, without empty parts."""
    content: dict[str, Any] = {
        "profile_name": message.profile_name,
        "button": _present({"payload": message.button_payload, "text": message.button_text}),
        "interactive": _present({"type": message.interactive_type, "id": message.interactive_id,
                                 "title": message.interactive_title}),
        "media": _as_dict(message.media), "location": _as_dict(message.location),
        "contacts": list(message.contacts), "reaction": _as_dict(message.reaction), "order": message.order,
        "system": message.system, "referral": message.referral,
        "errors": [dataclasses.asdict(error) for error in message.errors],
    }
    return {key: value for key, value in content.items() if value}


def _insert_message(message: InboundMessage, contact_id: int, now: datetime) -> int | None:
    """The new message's id, or None when this wamid is already stored."""
    statement = _insert(Message.__table__).values(
        campaign_id=None, source=MessageSource.INBOUND, contact_id=contact_id, direction="in",
        message_type=message.type[:16],
        status=MessageStatus.RECEIVED, parameters={}, body=message.visible_text, content=inbound_content(message),
        attempts=0, wamid=message.wamid, context_wamid=message.context_id, created_at=message.timestamp or now,
        updated_at=now,
    ).on_conflict_do_nothing(index_elements=[Message.wamid]).returning(Message.id)
    return db.session.execute(statement).scalar()


def _attribute_reply(message: InboundMessage, totals: message_state.Totals, now: datetime) -> int:
    """Mark the run's message this replies to (context.id) as replied; only its first reply counts."""
    if not message.context_id:
        return 0
    target = db.session.execute(select(Message.id, Message.run_id).where(
        Message.wamid == message.context_id, Message.direction == "out")).first()
    if target is None or target.run_id is None:
        return 0
    # Conditional, so two replies processed at once still count once.
    marked = db.session.execute(
        update(Message).where(Message.id == target.id, Message.replied_at.is_(None))
        .values(replied_at=message.timestamp or now).execution_options(synchronize_session=False)).rowcount
    if marked:
        totals.count_reply(target.run_id, message.timestamp or now)
    return marked


def _find_contact(wa_id: str) -> Contact | None:
    statement = (select(Contact).where(or_(Contact.wa_id == wa_id, Contact.phone == f"+{wa_id}"))
                 .order_by(Contact.deleted_at.is_not(None), Contact.id).limit(1)
                 .with_for_update(of=Contact).execution_options(populate_existing=True))
    return db.session.scalars(statement).first()


def _valid_sender(wa_id: str) -> bool:
    return wa_id.isascii() and wa_id.isdigit() and 6 <= len(wa_id) <= 15


def _clean_name(name: str | None) -> str | None:
    return " ".join((name or "").split())[:255] or None


def _present(values: dict[str, Any]) -> dict[str, Any] | None:
    kept = {key: value for key, value in values.items() if value is not None}
    return kept or None


def _as_dict(value: Any) -> dict[str, Any] | None:
    return _present(dataclasses.asdict(value)) if value is not None else None


def _insert(table):
    """INSERT … ON CONFLICT for whichever database we are on (both SQLite and PostgreSQL support it)."""
    dialect = db.session.get_bind().dialect.name
    return (postgresql if dialect == "postgresql" else sqlite).insert(table)
