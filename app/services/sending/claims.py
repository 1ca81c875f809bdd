"""Claiming a batch of a campaign's messages, and getting the claimed messages ready to send.

A claim moves due `pending` messages to `sending` in one statement, so two workers never get the same message:
on PostgreSQL the candidate rows are locked with FOR UPDATE SKIP LOCKED; on SQLite the single
UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING is atomic because SQLite has one writer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, false, or_, select, update
from sqlalchemy.orm import lazyload

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, Contact, Message, MessageStatus
from app.services.errors import ServiceError
from app.services.sending import message_state
from app.services.sending.sender import SendItem
from app.services.templates import rendering

S = MessageStatus
RENDER_FAILED_TITLE = "Message could not be filled in"


def due(now: datetime) -> ColumnElement[bool]:
    """Pending messages whose (re)try time has come."""
    return or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now)


def claim(campaign_id: int, limit: int, now: datetime, *criteria: ColumnElement[bool]) -> list[int]:
    """Atomically move up to `limit` due pending messages of the campaign (that also meet `criteria`, such as being
    outside quiet hours) to sending; returns their ids."""
    _check_counter_free(S.PENDING, S.SENDING)
    candidates = (select(Message.id)
                  .where(Message.campaign_id == campaign_id, Message.status == S.PENDING, due(now), *criteria)
                  .order_by(Message.id).limit(limit))
    statement = (update(Message)
                 .where(Message.id.in_(_claimable(candidates)), Message.status == S.PENDING)
                 .values(status=S.SENDING, claimed_at=now, updated_at=now)
                 .returning(Message.id)
                 .execution_options(synchronize_session=False))
    ids = sorted(db.session.scalars(statement))
    db.session.commit()
    return ids


def _claimable(candidates: Select):
    if db.session.get_bind().dialect.name != "postgresql":
        return candidates.scalar_subquery()  # SQLite: one writer at a time makes the single UPDATE atomic
    # Lock the rows, skipping those another worker is claiming. The CTE is materialised so it runs exactly once:
    # PostgreSQL may otherwise re-run a LIMIT … SKIP LOCKED subquery and claim more than `limit` rows.
    batch = candidates.with_for_update(skip_locked=True).cte("batch").prefix_with("MATERIALIZED")
    return select(batch.c.id)


def hold_write_lock() -> None:
    """SQLite has no row locks: take its one write lock before reading rows we are about to change.

    (PostgreSQL callers lock rows with FOR UPDATE instead; this is a no-op there.)
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(Campaign).where(false()).values(id=Campaign.id)
                           .execution_options(synchronize_session=False))


def lock_campaign(campaign_id: int) -> Campaign | None:
    """The campaign row, fresh and locked until commit, for a change that must not race another."""
    hold_write_lock()
    return db.session.get(Campaign, campaign_id, with_for_update={"of": Campaign}, populate_existing=True)


def bulk_move(old: str, new: str, *criteria: ColumnElement[bool], **values) -> int:
    """Move many messages from `old` to `new` in one UPDATE; only for transitions that change no counter."""
    _check_counter_free(old, new)
    statement = (update(Message).where(Message.status == old, *criteria)
                 .values(status=new, updated_at=utcnow(), **values)
                 .execution_options(synchronize_session=False))
    return db.session.execute(statement).rowcount


def _check_counter_free(old: str, new: str) -> None:
    # Bulk moves bypass message_state.move for speed; the table still decides, and counters must not change.
    counted = new in message_state.TIMESTAMPS or new in (S.FAILED, S.SKIPPED)
    if counted or not message_state.can_transition(old, new):
        raise ValueError(f"{old} → {new} cannot be applied in bulk")


def release(message_ids: list[int]) -> int:
    """Return claimed messages that were never sent to pending, as if never claimed. Commits."""
    released = bulk_move(S.SENDING, S.PENDING, Message.id.in_(message_ids), claimed_at=None) if message_ids else 0
    db.session.commit()
    return released


@dataclass(frozen=True)
class Recipient:
    """What rendering and the opt-out check read of a contact: read as plain columns, because loading a batch's
    contacts as ORM objects (with their tags) and flushing its messages one by one cost more CPU than sending."""

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
    rows = db.session.execute(select(Message.id, *columns).join(Contact, Contact.id == Message.contact_id)
                              .where(Message.id.in_(message_ids)).order_by(Message.id))
    items, rendered, problems = [], [], []
    for message_id, *fields in rows:
        outcome = _prepare_one(campaign, message_id, Recipient(*fields))
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


def _prepare_one(campaign: Campaign, message_id: int, recipient: Recipient) -> tuple[SendItem, str] | _Problem:
    reason = skip_reason(recipient)
    if reason:
        return _Problem(message_id, skip=reason)
    try:
        rendered = rendering.render(campaign, recipient)
    except (ServiceError, ValueError) as error:
        return _Problem(message_id, detail=str(error))
    if rendered.empty and not campaign.accept_fallbacks:  # staff may accept empty values; otherwise Meta rejects
        names = ", ".join(rendered.empty)
        return _Problem(message_id, detail=f"No value for {names} for this contact, so WhatsApp would reject it.")
    item = SendItem(message_id, recipient.wa_id, rendered.components, f"c{campaign.id}:{message_id}")
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
            message_state.move(message, S.PENDING, now, totals)  # the table allows skipping only from pending
            message_state.move(message, S.SKIPPED, now, totals)
            message.skip_reason, message.claimed_at = problem.skip, None
        else:
            message_state.move(message, S.FAILED, now, totals)
            message.error_code, message.error_title, message.error_detail = None, RENDER_FAILED_TITLE, problem.detail
    message_state.add_to_counters(totals)


def skip_reason(contact: Contact | Recipient) -> str | None:
    """Why this contact must not get the message now, if it must not."""
    if contact.opted_out_at is not None:
        return f"Opted out of messages on {contact.opted_out_at:%Y-%m-%d}"
    if contact.deleted_at is not None:
        return "Contact was deleted before the message was sent"
    return None
