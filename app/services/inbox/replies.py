"""Replies from the inbox (staff) and from auto-reply rules: checked here, then queued for the send path.

Free text is only allowed inside the customer-service window; outside it only an approved template may be sent.
A reply is a message sent on its own (app.services.sending.direct): the same claim, shared rate limiter, error table
and retry backoff as campaigns; delivery ticks then arrive through the ordinary status webhooks by wamid. The caller
queues the direct lane (jobs.sending.enqueue_send_direct) after the commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, Contact, Message, MessageSource, MessageTemplate, TemplateStatus
from app.services.errors import ServiceError
from app.services.inbox import conversations
from app.services.sending import direct
from app.services.sending.sender import TemplateRef
from app.services.templates import rendering

STAFF_REPLY, AUTO_REPLY = MessageSource.INBOX_REPLY, MessageSource.AUTO_REPLY
MAX_TEXT = 4096
CLOSED_WINDOW = ("More than 24 hours have passed since this customer last wrote, so WhatsApp only allows an "
                 "approved template until they write again.")


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


def queue_text(contact: Contact, body: str, source: str, now: datetime, **extra: Any) -> Message:
    """A pending outbound text for the contact, in the caller's transaction; the direct lane sends it."""
    message = direct.queue_text(contact.id, body, source, now, **extra)
    conversations.record_outbound(contact.id, f"You: {body}", now)
    return message


def queue_template(contact: Contact, template: MessageTemplate, mapping: dict[str, Any], source: str,
                   now: datetime, **extra: Any) -> Message:
    """A pending outbound template for the contact, rendered now (as Campaign.variables would be)."""
    rendered = rendering.render(Campaign(template=template, variables=mapping), contact)
    message = direct.queue_template(contact.id, TemplateRef(template.name, template.language), rendered.components,
                                    rendered.preview, source, now, template_id=template.id, **extra)
    conversations.record_outbound(contact.id, f"You: {rendered.preview}", now)
    return message
