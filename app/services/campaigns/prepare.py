"""Getting a campaign's claimed messages ready to send: the opt-out check again, rendering, storing the rendered text.

Read as plain columns, because loading a batch's contacts as ORM objects (with their tags) and flushing its
messages one by one cost more CPU than sending them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import lazyload

from app.extensions import db
from app.models import Campaign, Contact, Message, MessageStatus
from app.services.errors import ServiceError
from app.services.sending import message_state
from app.services.sending.sender import SendItem, TemplateRef
from app.services.templates import rendering
from app.whatsapp import callback

S = MessageStatus
RENDER_FAILED_TITLE = "Message could not be filled in"


@dataclass(frozen=True)
class Recipient:
    """What rendering and the opt-out check read of a contact."""

    name: str | None
    phone: str
    wa_id: str
    attributes: dict | None
    opted_out_at: datetime | None
    deleted_at: datetime | None


@dataclass(frozen=True)
class _Problem:
    """A claimed message that will not be sent: skipped (`skip`) or failed to render (`detail`)."""

    message_id: int
    skip: str | None = None
    detail: str | None = None


def prepare(campaign: Campaign, message_ids: list[int], now: datetime) -> list[SendItem]:
    """Re-check opt-outs, render and store each claimed message; returns what to send. Commits."""
    columns = [getattr(Contact, name) for name in Recipient.__dataclass_fields__]
    rows = db.session.execute(select(Message.id, Message.run_id, *columns)
                              .join(Contact, Contact.id == Message.contact_id)
                              .where(Message.id.in_(message_ids)).order_by(Message.id))
    assert campaign.template is not None
    template = TemplateRef(campaign.template.name, campaign.template.language)
    labels = {variable.key: variable.label for variable in rendering.template_variables(campaign.template)}
    items, rendered, problems = [], [], []
    for message_id, run_id, *fields in rows:
        outcome = _prepare_one(campaign, template, labels, message_id, run_id, Recipient(*fields))
        if isinstance(outcome, _Problem):
            problems.append(outcome)
        else:
            item, preview = outcome
            items.append(item)
            rendered.append({"id": message_id, "parameters": {"components": item.components}, "body": preview,
                             "updated_at": now})
    if rendered:
        db.session.execute(update(Message), rendered)  # ORM bulk UPDATE by primary key: one executemany
    if problems:
        _record_problems(problems, now)
    db.session.commit()
    return items


def _prepare_one(campaign: Campaign, template: TemplateRef, labels: dict[str, str], message_id: int,
                 run_id: int | None, recipient: Recipient) -> tuple[SendItem, str] | _Problem:
    reason = skip_reason(recipient)
    if reason:
        return _Problem(message_id, skip=reason)
    try:
        rendered = rendering.render(campaign, recipient)
    except (ServiceError, ValueError) as error:
        return _Problem(message_id, detail=str(error))
    if rendered.empty:
        # WhatsApp refuses an empty parameter, URL suffix or media link (131008), so such a message is never sent:
        # the recipient is skipped with the reason, whether staff chose to launch anyway or a value emptied since.
        return _Problem(message_id, skip=no_value_reason([labels.get(key, key) for key in rendered.empty]))
    item = SendItem(message_id, recipient.wa_id, callback.encode(message_id, run_id), template=template,
                    components=rendered.components)
    return item, rendered.preview


def _record_problems(problems: list[_Problem], now: datetime) -> None:
    """Skip or fail the few messages that will not go out, through the transition table and the counters."""
    totals = message_state.new_totals()
    messages = {message.id: message for message in db.session.scalars(
        select(Message).where(Message.id.in_([problem.message_id for problem in problems]))
        .options(lazyload(Message.contact)))}
    for problem in problems:
        message = messages[problem.message_id]
        if problem.skip:
            message_state.move(message, S.SKIPPED, now, totals)
            message.skip_reason, message.claimed_at = problem.skip, None
        else:
            message_state.move(message, S.FAILED, now, totals)
            message.error_code, message.error_title, message.error_detail = None, RENDER_FAILED_TITLE, problem.detail
    message_state.add_to_counters(totals)


def no_value_reason(labels: list[str]) -> str:
    return f"No value for {', '.join(labels)}"[:255]


def skip_reason(contact: Contact | Recipient) -> str | None:
    """Why this contact must not get the message now, if it must not."""
    if contact.opted_out_at is not None:
        return f"Opted out of messages on {contact.opted_out_at:%Y-%m-%d}"
    if contact.deleted_at is not None:
        return "Contact was deleted before the message was sent"
    return None
