"""Replies from the inbox (staff) and from auto-reply rules: stored first as pending outbound messages, then sent.

Free text is only allowed inside the customer-service window; outside it only an approved template may be sent.
Sending goes through the same shared rate limiter as campaigns, the same error table and the same retry backoff
(dispatch_results.retry_delay); delivery ticks then arrive through the ordinary status webhooks by wamid.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, Contact, Message, MessageStatus, MessageTemplate, TemplateStatus
from app.services.errors import ServiceError
from app.services.inbox import conversations
from app.services.sending import message_state
from app.services.sending import results as dispatch_results
from app.services.sending.claims import due, hold_write_lock
from app.services.sending.rate_limit import RateLimiter, send_limits
from app.services.templates import rendering
from app.whatsapp.client import SendResult, WhatsAppClient
from app.whatsapp.errors import ErrorAction

log = logging.getLogger(__name__)
S = MessageStatus
STAFF_REPLY, AUTO_REPLY = "inbox_reply", "auto_reply"
PURPOSES = (STAFF_REPLY, AUTO_REPLY)
CALLBACK_TAG = "inbox"  # biz_opaque_callback_data "inbox:<message id>" (campaign-less: see webhook_statuses)
MAX_TEXT = 4096
MAX_RATE_WAIT_SECONDS = 30.0
CLOSED_WINDOW = ("More than 24 hours have passed since this customer last wrote, so WhatsApp only allows an "
                 "approved template until they write again.")


@dataclass(frozen=True)
class SendReport:
    sent: int
    retry_in: float | None  # seconds until the earliest reply put back for a retry is due


def reply_text(contact_id: int, body: str, user_id: int | None) -> Message:
    """Queue free text to the customer; refused outside the 24-hour window. Commits."""
    body = (body or "").strip()
    if not body:
        raise ServiceError("Write a message first.", field="body")
    if len(body) > MAX_TEXT:
        raise ServiceError(f"A WhatsApp message holds at most {MAX_TEXT} characters.", field="body")
    conversation = conversations.get_conversation(contact_id)
    if not conversations.window_for(conversation.last_inbound_at).open:
        raise ServiceError(CLOSED_WINDOW, field="body")
    message = queue_text(conversation.contact, body, STAFF_REPLY, utcnow(), user_id=user_id)
    db.session.commit()
    return message


def reply_template(contact_id: int, template_id: int | None, values: dict[str, str], user_id: int | None) -> Message:
    """Queue an approved template, its variables filled with `values` (variable key → text). Commits."""
    conversation = conversations.get_conversation(contact_id)
    contact = conversation.contact
    if contact.opted_out and not conversations.window_for(conversation.last_inbound_at).open:
        raise ServiceError("This customer opted out: answer them only after they write to you again.")
    template = approved_template(template_id)
    mapping = {key: {"source": "literal", "value": value} for key, value in values.items()}
    missing = [v.label for v in rendering.template_variables(template) if not rendering.clean(values.get(v.key))]
    if missing:
        raise ServiceError(f"Fill in every variable: {', '.join(missing)}.", field="template_id")
    message = queue_template(contact, template, mapping, STAFF_REPLY, utcnow(), user_id=user_id)
    db.session.commit()
    return message


def approved_template(template_id: int | None) -> MessageTemplate:
    template = db.session.get(MessageTemplate, template_id) if template_id else None
    if template is None or template.status != TemplateStatus.APPROVED:
        raise ServiceError("Choose an approved template.", field="template_id")
    return template


def queue_text(contact: Contact, body: str, purpose: str, now: datetime, **extra: Any) -> Message:
    """A pending outbound text for the contact, in the caller's transaction."""
    return _queue(contact, "text", body, {"purpose": purpose, **extra}, now)


def queue_template(contact: Contact, template: MessageTemplate, mapping: dict[str, Any], purpose: str,
                   now: datetime, **extra: Any) -> Message:
    """A pending outbound template for the contact, rendered now (as Campaign.variables would be)."""
    rendered = rendering.render(Campaign(template=template, variables=mapping), contact)
    parameters = {"purpose": purpose, "template": template.name, "language": template.language,
                  "template_id": template.id, "components": rendered.components, **extra}
    return _queue(contact, "template", rendered.preview, parameters, now)


def _queue(contact: Contact, kind: str, body: str, parameters: dict[str, Any], now: datetime) -> Message:
    message = Message(campaign_id=None, contact_id=contact.id, direction="out", message_type=kind,
                      status=S.PENDING, body=body, parameters=parameters, attempts=0, created_at=now)
    db.session.add(message)
    db.session.flush()
    conversations.record_outbound(contact.id, f"You: {body}", now)
    return message


def pending_contacts(now: datetime | None = None, limit: int = 500) -> list[int]:
    """Contacts with replies due to be sent (for the sweeper: Redis was down, a retry is due)."""
    statement = select(Message.contact_id).where(*_due_replies(now or utcnow())).distinct().limit(limit)
    return list(db.session.scalars(statement))


def send_pending(contact_id: int, client: WhatsAppClient, limiter: RateLimiter, phone_number_id: str) -> SendReport:
    """Send the contact's due replies one by one at the shared rate; results are recorded as they come."""
    sent = 0
    for message_id in _claim(contact_id, utcnow()):
        result = _send_one(client, limiter, phone_number_id, message_id)
        sent += _record(message_id, result) == S.SENT
    return SendReport(sent, _retry_in(contact_id))


def _claim(contact_id: int, now: datetime) -> list[int]:
    """Move due replies pending → sending (conditionally, so two jobs never send one twice); commits."""
    assert message_state.can_transition(S.PENDING, S.SENDING)
    hold_write_lock()
    ids = sorted(db.session.scalars(select(Message.id).where(Message.contact_id == contact_id, *_due_replies(now))))
    claimed = []
    for message_id in ids:
        statement = (update(Message).where(Message.id == message_id, Message.status == S.PENDING)
                     .values(status=S.SENDING, claimed_at=now).execution_options(synchronize_session=False))
        if db.session.execute(statement).rowcount:
            claimed.append(message_id)
    db.session.commit()  # releases the connection before the network calls
    return claimed


def _send_one(client: WhatsAppClient, limiter: RateLimiter, phone_number_id: str,
              message_id: int) -> SendResult | None:
    message = db.session.get(Message, message_id, populate_existing=True)
    to, kind, body, parameters = message.contact.wa_id, message.message_type, message.body or "", message.parameters
    db.session.commit()
    try:
        wait = limiter.reserve(send_limits(phone_number_id, 0, None), MAX_RATE_WAIT_SECONDS)
    except Exception:  # any Redis trouble means: do not send unpaced
        log.exception("rate limiter unavailable; reply %s stays pending", message_id)
        wait = None
    if wait is None:
        return None
    if wait > 0:
        time.sleep(wait)
    callback = f"{CALLBACK_TAG}:{message_id}"
    if kind == "template":
        return client.send_template(to, parameters["template"], parameters["language"],
                                    parameters.get("components") or [], biz_opaque_callback_data=callback)
    return client.send_text(to, body, biz_opaque_callback_data=callback)


def _record(message_id: int, result: SendResult | None) -> str:
    """Write one send's result through the message transition table, with campaigns' retry rules. Commits."""
    now = utcnow()
    hold_write_lock()
    message = db.session.scalars(select(Message).where(Message.id == message_id).with_for_update(of=Message)
                                 .execution_options(populate_existing=True)).one()
    totals = message_state.new_totals()
    if message.status == S.SENDING:
        _apply(message, result, now, totals)
    message_state.add_to_counters(totals)
    db.session.commit()
    return message.status


def _apply(message: Message, result: SendResult | None, now: datetime, totals) -> None:
    if result is None:  # no rate-limiter slot soon: try again shortly
        message_state.move(message, S.PENDING, now, totals)
        message.next_attempt_at = now + timedelta(seconds=5)
        return
    message.attempts += 1
    info = result.error_info()
    if info is None:
        message.wamid = message.wamid or result.wamid
        message.error_code = message.error_title = message.error_detail = None
        message_state.move(message, S.SENT, now, totals)
        return
    message.error_code, message.error_title, message.error_detail = info.code, info.title, info.explanation
    if result.outcome_unknown:
        message.claimed_at = now  # WhatsApp may have it: a status webhook settles it, never a blind resend
    elif info.action == ErrorAction.PERMANENT or message.attempts >= dispatch_results.max_attempts():
        message_state.move(message, S.FAILED, now, totals)
    else:
        message_state.move(message, S.PENDING, now, totals)
        message.next_attempt_at = now + timedelta(seconds=dispatch_results.retry_delay(message.attempts, info, result))
    log.warning("inbox reply %s not sent: %s", message.id, info.title)


def _retry_in(contact_id: int) -> float | None:
    statement = select(Message.next_attempt_at).where(
        Message.contact_id == contact_id, Message.campaign_id.is_(None), Message.status == S.PENDING,
        Message.direction == "out", Message.parameters["purpose"].as_string().in_(PURPOSES))
    times = [at for at in db.session.scalars(statement) if at is not None]
    db.session.commit()
    return max(0.0, (min(times) - utcnow()).total_seconds()) if times else None


def _due_replies(now: datetime) -> tuple:
    return (Message.campaign_id.is_(None), Message.status == S.PENDING, Message.direction == "out",
            Message.parameters["purpose"].as_string().in_(PURPOSES), due(now))
