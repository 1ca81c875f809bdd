"""Claiming a batch of due messages, so two workers never send the same one, and giving unsent ones back.

A claim moves due `pending` messages to `sending` in one statement (message_state.bulk): on PostgreSQL the candidate
rows are locked with FOR UPDATE SKIP LOCKED; on SQLite the single UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING
is atomic because SQLite has one writer at a time. Which messages are candidates is the source's choice (a campaign
run's, outside quiet hours; the messages sent on their own), given as criteria.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, false, or_, select, update

from app.extensions import db
from app.models import Message, MessageStatus, SendRun
from app.services.sending import message_state

S = MessageStatus


def due(now: datetime) -> ColumnElement[bool]:
    """Pending messages whose (re)try time has come."""
    return or_(Message.next_attempt_at.is_(None), Message.next_attempt_at <= now)


def claim(limit: int, now: datetime, *criteria: ColumnElement[bool]) -> list[int]:
    """Atomically move up to `limit` due pending messages meeting `criteria` to sending; returns their ids. Commits."""
    candidates = (select(Message.id).where(Message.status == S.PENDING, due(now), *criteria)
                  .order_by(Message.id).limit(limit))
    statement = (message_state.bulk(S.PENDING, S.SENDING, Message.id.in_(_claimable(candidates)),
                                    claimed_at=now, updated_at=now)
                 .returning(Message.id))
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
        db.session.execute(update(SendRun).where(false()).values(id=SendRun.id)
                           .execution_options(synchronize_session=False))


def release(message_ids: list[int]) -> int:
    """Return claimed messages that were never sent to pending, as if never claimed. Commits."""
    released = message_state.bulk_move(S.SENDING, S.PENDING, Message.id.in_(message_ids),
                                       claimed_at=None) if message_ids else 0
    db.session.commit()
    return released
