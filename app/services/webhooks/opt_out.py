"""Customers opting out (STOP, local stop words, the Stop button, WhatsApp's own setting) and back in (START).

An opt-out by message is confirmed once: the confirmation is a pending outbound Message created in the same
transaction as the opt-out, so it exists exactly once however often the webhook is delivered, and a job sends it.
Only the customer can undo their own opt-out; staff and import opt-outs are never lifted by a START.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.clock import utcnow
from app.extensions import db
from app.models import Contact, Message, MessageStatus, OptOutSource
from app.services.admin import settings
from app.services.sending import message_state
from app.services.webhooks.inbound import AUTOMATIC_TYPES, StoredMessage, contact_for
from app.services.webhooks.statuses import CONFIRMATION_TAG
from app.whatsapp.client import SendResult, WhatsAppClient
from app.whatsapp.events import InboundMessage, UserPreferenceEvent

log = logging.getLogger(__name__)
S = MessageStatus
CUSTOMER_SOURCES = (OptOutSource.KEYWORD, OptOutSource.BUTTON, OptOutSource.USER_PREFERENCES)
STOP_BUTTONS = frozenset({"stop", "stop promotions"})
PURPOSE = "opt_out_confirmation"
MAX_ATTEMPTS = 3
RETRY_AFTER = timedelta(minutes=2)
_EDGE_PUNCTUATION = " .!?।"
OUT, IN = "out", "in"


@dataclass(frozen=True)
class Keywords:
    opt_out: frozenset[str]
    opt_in: frozenset[str]

    @classmethod
    def from_settings(cls) -> Keywords:
        return cls(frozenset(map(normalise, settings.get("opt_out_keywords"))),
                   frozenset(map(normalise, settings.get("opt_in_keywords"))))


@dataclass(frozen=True)
class Outgoing:
    message_id: int
    to: str
    body: str


def normalise(text: str | None) -> str:
    """Compare keywords casefolded, with spaces collapsed and edge punctuation ("Stop.", "रोकें।") dropped."""
    text = " ".join(unicodedata.normalize("NFKC", text or "").split())
    return text.strip(_EDGE_PUNCTUATION).casefold()


def intent(message: InboundMessage, keywords: Keywords) -> tuple[str, OptOutSource] | None:
    """(OUT or IN, how) when the message asks to stop or restart messages; None for anything else."""
    if message.type in AUTOMATIC_TYPES:
        return None
    if message.type == "text":
        words, source, stop_words = [message.text], OptOutSource.KEYWORD, keywords.opt_out
    elif message.type in ("button", "interactive"):
        words = [message.button_payload, message.button_text, message.interactive_id, message.interactive_title]
        source, stop_words = OptOutSource.BUTTON, keywords.opt_out | STOP_BUTTONS
    else:
        return None
    said = {normalise(word) for word in words if word}
    if said & stop_words:
        return OUT, source
    if said & keywords.opt_in:
        return IN, source
    return None


def handle_messages(stored: Iterable[StoredMessage], counts: Counter, now: datetime) -> list[int]:
    """Apply STOP/START in newly stored messages; returns the contacts that now await a confirmation."""
    keywords, confirm = None, []
    for item in stored:
        keywords = keywords or Keywords.from_settings()
        found = intent(item.event, keywords)
        if found is None:
            continue
        action, source = found
        at = item.event.timestamp or now
        if action == OUT and opt_out(item.contact, source, at):
            counts["opt-outs"] += 1
            confirm.append(queue_confirmation(item.contact, item.event.wamid, now))
        elif action == IN and opt_in(item.contact, at):
            counts["opt-ins"] += 1
    return confirm


def handle_preferences(events: Iterable[UserPreferenceEvent], counts: Counter, now: datetime) -> None:
    """WhatsApp's "stop/resume marketing messages" setting. No confirmation: WhatsApp confirms it itself."""
    for event in sorted(events, key=lambda e: e.timestamp or now):
        value, at = event.value.lower(), event.timestamp or now
        contact = contact_for(event.wa_id, None, now, create=value == "stop") if event.wa_id.isdigit() else None
        if contact is None:
            counts["preferences for unknown customers"] += 1
        elif value == "stop" and opt_out(contact, OptOutSource.USER_PREFERENCES, at):
            counts["opt-outs"] += 1
        elif value == "resume" and opt_in(contact, at):
            counts["opt-ins"] += 1


def opt_out(contact: Contact, source: OptOutSource, at: datetime) -> bool:
    """Opt the contact out unless they already are (the first opt-out's time and source are kept)."""
    return contact.record_opt_out(source, at)


def opt_in(contact: Contact, at: datetime) -> bool:
    """Lift the customer's own earlier opt-out; never a staff or import one, nor one made after this request."""
    if contact.opted_out_at is None or contact.opt_out_source not in CUSTOMER_SOURCES or at < contact.opted_out_at:
        return False
    contact.opted_out_at, contact.opt_out_source = None, None
    return True


def queue_confirmation(contact: Contact, in_reply_to: str, now: datetime) -> int:
    """The one confirmation of this opt-out, as a pending outbound text message; returns the contact id."""
    db.session.add(Message(
        campaign_id=None, contact_id=contact.id, direction="out", message_type="text", status=S.PENDING,
        body=settings.get("opt_out_confirmation"), parameters={"purpose": PURPOSE, "in_reply_to": in_reply_to},
        created_at=now))
    return contact.id


def awaiting_confirmation(now: datetime | None = None, older_than: timedelta = timedelta(minutes=1)) -> list[int]:
    """Contacts with a confirmation still pending after its job had its chance (e.g. Redis was down)."""
    now = now or utcnow()
    statement = (select(Message.contact_id).where(*_due_confirmations(now), Message.created_at < now - older_than)
                 .distinct().limit(500))
    return list(db.session.scalars(statement))


def send_confirmations(contact_id: int, client: WhatsAppClient) -> int:
    """Send the contact's pending confirmation(s) as free text; returns how many were handed to WhatsApp."""
    outgoing = _claim(contact_id, utcnow())
    for item in outgoing:
        callback = f"{CONFIRMATION_TAG}:{item.message_id}"
        _record_result(item.message_id, client.send_text(item.to, item.body, biz_opaque_callback_data=callback))
    return len(outgoing)


def _claim(contact_id: int, now: datetime) -> list[Outgoing]:
    """Move due confirmations pending → sending (conditionally, so two jobs never both send one); commits."""
    contact = db.session.get(Contact, contact_id)
    rows = db.session.scalars(select(Message).where(Message.contact_id == contact_id, *_due_confirmations(now))
                              .order_by(Message.id)).all()
    outgoing = []
    for message in rows:
        if reason := _reason_not_to_send(contact):
            _guarded_move(message.id, S.CANCELLED, skip_reason=reason)
        elif _guarded_move(message.id, S.SENDING, claimed_at=now, attempts=Message.attempts + 1):
            outgoing.append(Outgoing(message.id, contact.wa_id, message.body or ""))
    db.session.commit()  # releases the connection before the network calls
    return outgoing


def _reason_not_to_send(contact: Contact | None) -> str | None:
    if contact is None or contact.deleted_at is not None:
        return "The contact was deleted before it was sent."
    if contact.opted_out_at is None:
        return "The customer opted back in before it was sent."
    return None


def _guarded_move(message_id: int, new: str, **values) -> bool:
    assert message_state.can_transition(S.PENDING, new)
    statement = (update(Message).where(Message.id == message_id, Message.status == S.PENDING)
                 .values(status=new, **values).execution_options(synchronize_session=False))
    return bool(db.session.execute(statement).rowcount)


def _record_result(message_id: int, result: SendResult) -> None:
    now = utcnow()
    message = db.session.scalars(select(Message).where(Message.id == message_id).with_for_update(of=Message)
                                 .execution_options(populate_existing=True)).one()
    info = result.error_info()
    if info is None:
        message.wamid = message.wamid or result.wamid
        message_state.move(message, S.SENT, now)  # a status webhook may already have moved it further
    elif result.outcome_unknown:
        # WhatsApp may have it; a status webhook naming it settles it. Never risk a second confirmation.
        message.error_title, message.error_detail = info.title, info.explanation
    elif info.retryable and message.attempts < MAX_ATTEMPTS:
        message_state.move(message, S.PENDING, now)
        message.next_attempt_at = now + max(RETRY_AFTER, timedelta(seconds=info.retry_after_min))
    else:
        message_state.move(message, S.FAILED, now)
        message.error_code, message.error_title = result.error_code, info.title
        message.error_detail = info.explanation
    if info is not None:
        log.warning("opt-out confirmation %s not sent: %s (%s)", message_id, info.title, result.error_message)
    db.session.commit()


def _due_confirmations(now: datetime) -> tuple:
    # campaign_id IS NULL + status lead ix_messages_campaign_id_status_next_attempt_at to the few pending ones.
    return (Message.campaign_id.is_(None), Message.status == S.PENDING, Message.direction == "out",
            Message.parameters["purpose"].as_string() == PURPOSE,
            Message.next_attempt_at.is_(None) | (Message.next_attempt_at <= now))
