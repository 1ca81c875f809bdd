"""Customer messages from webhooks: link or create the contact, store the message once, attribute replies.

A message is stored with INSERT … ON CONFLICT (wamid) DO NOTHING, so a webhook Meta delivers twice (even to two
workers at once) stores it once, and only the copy that stored it goes on to opt-out handling and replies.

An edit or a deletion (types "edit" and "revoke") is stored as a row of its own pointing at the original through
context_wamid, then applied to the original: its text replaced (marked edited) or hidden (marked revoked). When the
original has not arrived yet the change waits and is applied the moment it does, so the order Meta delivers them in
does not matter, and a second delivery changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import re
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

# Changes to an earlier message rather than messages of their own.
CHANGE_TYPES = frozenset({"edit", "revoke"})
# Messages a person did not type: never answered automatically, never read as a keyword.
AUTOMATIC_TYPES = frozenset({"system", "unsupported", "reaction", "ephemeral", "unknown"}) | CHANGE_TYPES
CALL_ANSWERS = {"accept": "Allowed calls", "reject": "Declined calls"}


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
        counts["edits and deletions applied"] += _apply_changes(message.original_id or message.wamid)
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


def readable_text(message: InboundMessage) -> str | None:
    """What the message says, as a person would read it: the typed text, or a flow's answers, a call-permission
    answer, a system notice's words, an edit's new text."""
    if message.edited is not None:
        return readable_text(message.edited)
    detail = message.interactive_detail or {}
    if message.interactive_type == "nfm_reply":
        return _flow_answers(detail.get("response_json")) or _text(detail.get("body"))
    if message.interactive_type == "call_permission_reply":
        return CALL_ANSWERS.get(str(detail.get("response")), "Answered the call permission request")
    if message.system:
        return _text(message.system.get("body"))
    return message.visible_text


def inbound_content(message: InboundMessage) -> dict[str, Any]:
    """The typed details of a message (media, location, button, …) as JSON, without empty parts."""
    content: dict[str, Any] = {
        "profile_name": message.profile_name,
        "button": _present({"payload": message.button_payload, "text": message.button_text}),
        "interactive": _present({"type": message.interactive_type, "id": message.interactive_id,
                                 "title": message.interactive_title, **(message.interactive_detail or {})}),
        "media": _as_dict(message.media), "location": _as_dict(message.location),
        "contacts": list(message.contacts), "reaction": _as_dict(message.reaction), "order": message.order,
        "system": message.system, "referral": message.referral,
        "errors": [dataclasses.asdict(error) for error in message.errors],
        "edit": _present({"original_id": message.original_id, "type": message.edited.type})
        if message.type == "edit" and message.edited else None,
        "revoke": _present({"original_id": message.original_id}) if message.type == "revoke" else None,
    }
    return {key: value for key, value in content.items() if value}


def _insert_message(message: InboundMessage, contact_id: int, now: datetime) -> int | None:
    """The new message's id, or None when this wamid is already stored."""
    statement = _insert(Message.__table__).values(
        campaign_id=None, source=MessageSource.INBOUND, contact_id=contact_id, direction="in",
        message_type=message.type[:16],
        status=MessageStatus.RECEIVED, parameters={}, body=readable_text(message), content=inbound_content(message),
        attempts=0, wamid=message.wamid, context_wamid=message.original_id or message.context_id,
        created_at=message.timestamp or now,
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


def _apply_changes(original_wamid: str) -> int:
    """Apply the edits and deletions stored for this message, oldest first; 0 while the original is unknown.

    Replaying every change each time keeps this idempotent and order-independent: whichever of the original and
    its changes is stored last, the original ends as its latest edit says, and a deletion wins over any edit.
    For an ordinary message this is one indexed lookup (context_wamid) that finds nothing."""
    changes = db.session.scalars(select(Message).where(
        Message.context_wamid == original_wamid, Message.direction == "in",
        Message.message_type.in_(sorted(CHANGE_TYPES))).order_by(Message.created_at, Message.id)).all()
    original = db.session.scalars(select(Message).where(
        Message.wamid == original_wamid, Message.direction == "in",
        Message.message_type.not_in(sorted(CHANGE_TYPES)))).first() if changes else None
    if original is None:
        return 0
    content = dict(original.content or {})
    # Only the customer who wrote a message can change it.
    changes = [change for change in changes if change.contact_id == original.contact_id]
    for change in changes:
        content.setdefault("original_body", original.body)
        if change.message_type == "revoke":
            content["revoked_at"] = change.created_at.isoformat()
        elif change.body is not None:
            original.body, content["edited_at"] = change.body, change.created_at.isoformat()
        change.content = {**(change.content or {}), "applied_to": original.id}
    original.content = content  # a new dict, so the JSON column sees the change
    return len(changes)


FLOW_ANSWERS_MAX_CHARS = 4096  # the longest text WhatsApp carries; the answers stay whole in `content`


def _flow_answers(response: Any) -> str | None:
    """A flow's answers as "Label: value" lines; the flow_token is ours, not the customer's. Lines stop once the
    text is long enough, whatever the payload holds."""
    if not isinstance(response, dict):
        return None
    lines, length = [], 0
    for key, value in response.items():
        if key == "flow_token" or value in (None, "", [], {}):
            continue
        if length > FLOW_ANSWERS_MAX_CHARS:
            break
        lines.append(f"{_label(key)}: {_answer(value)}")
        length += len(lines[-1]) + 1
    text = "\n".join(lines)
    return (text[:FLOW_ANSWERS_MAX_CHARS - 1] + "…" if len(text) > FLOW_ANSWERS_MAX_CHARS else text) or None


def _label(key: str) -> str:
    # Flow Builder names fields like "screen_0_Delivery_date_1"; the middle is what the customer saw.
    words = re.sub(r"^screen_\d+_|_\d+$", "", str(key)).replace("_", " ").strip()
    return (words[:1].upper() + words[1:]) or str(key)


def _answer(value: Any) -> str:
    if isinstance(value, list):  # a multiple choice; anything nested deeper is shown as JSON, never recursed into
        return ", ".join(json.dumps(item, ensure_ascii=False) if isinstance(item, list | dict) else _answer(item)
                         for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


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
