"""Claiming a batch of a campaign's messages, and getting the claimed messages ready to send.

A claim moves due `pending` messages to `sending` in one statement, so two workers never get the same message:
on PostgreSQL the candidate rows are locked with FOR UPDATE SKIP LOCKED; on SQLite the single
UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING is atomic because SQLite has one writer at a time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, false, or_, select, update

from app.extensions import db
from app.models import Campaign, Contact, Message, MessageStatus
from app.models.base import utcnow
from app.services import message_state, rendering
from app.services.dispatch_sender import SendItem
from app.services.errors import ServiceError

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


def prepare(campaign: Campaign, message_ids: list[int], now: datetime) -> list[SendItem]:
    """Re-check opt-outs, render and store each claimed message; returns what to send. Commits."""
    totals = message_state.new_totals()
    statement = select(Message).where(Message.id.in_(message_ids)).order_by(Message.id)
    items = [item for message in db.session.scalars(statement).unique()
             if (item := _prepare_one(campaign, message, now, totals)) is not None]
    message_state.add_to_counters(totals)
    db.session.commit()
    return items


def _prepare_one(campaign: Campaign, message: Message, now: datetime, totals) -> SendItem | None:
    contact = message.contact
    reason = skip_reason(contact)
    if reason:
        message_state.move(message, S.PENDING, now, totals)  # the table allows skipping only from pending
        message_state.move(message, S.SKIPPED, now, totals)
        message.skip_reason, message.claimed_at = reason, None
        return None
    try:
        rendered = rendering.render(campaign, contact)
    except (ServiceError, ValueError) as error:
        return _fail(message, now, totals, str(error))
    if rendered.empty and not campaign.accept_fallbacks:  # staff may accept empty values; otherwise Meta rejects
        names = ", ".join(rendered.empty)
        return _fail(message, now, totals, f"No value for {names} for this contact, so WhatsApp would reject it.")
    message.parameters = {"components": rendered.components}
    message.body = rendered.preview
    return SendItem(message.id, contact.wa_id, rendered.components, f"c{campaign.id}:{message.id}")


def skip_reason(contact: Contact) -> str | None:
    """Why this contact must not get the message now, if it must not."""
    if contact.opted_out_at is not None:
        return f"Opted out of messages on {contact.opted_out_at:%Y-%m-%d}"
    if contact.deleted_at is not None:
        return "Contact was deleted before the message was sent"
    return None


def _fail(message: Message, now: datetime, totals, detail: str) -> None:
    message_state.move(message, S.FAILED, now, totals)
    message.error_code, message.error_title, message.error_detail = None, RENDER_FAILED_TITLE, detail
    return None
