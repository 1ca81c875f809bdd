"""The webhook inbox: raw bodies stored before we answer Meta, claimed once for processing, retried, purged.

An event is finished when `processed_at` is set; its `outcome` says what it did (or why it was rejected or left
orphaned). An unfinished event counts its processing `attempts`; the sweeper retries it until it finishes or
has failed MAX_ATTEMPTS times, after which it stays unfinished, with the last error as outcome, for inspection.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update

from app.extensions import db
from app.models import WebhookEvent
from app.models.base import utcnow
from app.services import audit
from app.services.errors import NotFound

MAX_ATTEMPTS = 20
SWEEP_AFTER = timedelta(seconds=60)  # leave a fresh event to the job that was queued for it
OUTCOME_LENGTH = 4000
PROBLEM_OUTCOMES = ("orphaned", "error", "rejected")


def store(raw_body: bytes) -> int:
    """Insert the body exactly as received and commit; returns the event id. Raises if the database is down."""
    # PostgreSQL text cannot hold NUL; JSON never contains a raw one, so replacing it loses nothing real.
    text = raw_body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    event = WebhookEvent(body=text, received_at=utcnow())
    db.session.add(event)
    db.session.commit()
    return event.id


def claim(event_id: int) -> WebhookEvent | None:
    """Count an attempt and lock the unfinished event for this transaction; None if it is finished or unknown.

    The UPDATE comes first on purpose: it row-locks the event on PostgreSQL and takes SQLite's write lock, so two
    workers never apply the same event (or, on SQLite, any two events) at the same time.
    """
    claimed = db.session.execute(
        update(WebhookEvent).where(WebhookEvent.id == event_id, WebhookEvent.processed_at.is_(None))
        .values(attempts=WebhookEvent.attempts + 1).execution_options(synchronize_session=False)).rowcount
    if not claimed:
        return None
    return db.session.scalars(select(WebhookEvent).where(WebhookEvent.id == event_id)
                              .execution_options(populate_existing=True)).one()


def finish(event: WebhookEvent, outcome: str, at: datetime) -> None:
    event.processed_at, event.outcome = at, outcome[:OUTCOME_LENGTH]


def keep_for_retry(event: WebhookEvent, outcome: str) -> None:
    event.outcome = outcome[:OUTCOME_LENGTH]


def record_failure(event_id: int, error: BaseException) -> None:
    """After a failed attempt (rolled back, so its count was lost): count it and keep the error as the outcome."""
    db.session.rollback()
    first_line = (str(error).splitlines() or [""])[0][:500]
    db.session.execute(
        update(WebhookEvent).where(WebhookEvent.id == event_id, WebhookEvent.processed_at.is_(None))
        .values(attempts=WebhookEvent.attempts + 1, outcome=f"error: {type(error).__name__}: {first_line}")
        .execution_options(synchronize_session=False))
    db.session.commit()


def never_tried(limit: int = 200) -> list[int]:
    """Stored events no worker has attempted yet, oldest first (the drain job's work list)."""
    return list(db.session.scalars(
        select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None), WebhookEvent.attempts == 0)
        .order_by(WebhookEvent.id).limit(limit)))


def due_for_retry(now: datetime | None = None, limit: int = 200) -> list[int]:
    """Unfinished events old enough that their own job has had its chance, oldest first."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None), WebhookEvent.attempts < MAX_ATTEMPTS,
                                      WebhookEvent.received_at < now - SWEEP_AFTER)
        .order_by(WebhookEvent.id).limit(limit)))


def purge_processed_events(days: int) -> int:
    """Delete finished events received more than `days` ago; returns how many went. The caller commits."""
    cutoff = utcnow() - timedelta(days=days)
    statement = delete(WebhookEvent).where(WebhookEvent.processed_at.is_not(None), WebhookEvent.received_at < cutoff)
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount


def recent(problems_only: bool = False, limit: int = 100) -> list[WebhookEvent]:
    """The newest events for the admin page; `problems_only` keeps unfinished, orphaned and failed ones."""
    statement = select(WebhookEvent).order_by(WebhookEvent.id.desc()).limit(limit)
    if problems_only:
        statement = statement.where(or_(WebhookEvent.processed_at.is_(None),
                                        *[WebhookEvent.outcome.startswith(word) for word in PROBLEM_OUTCOMES]))
    return list(db.session.scalars(statement))


def reopen(event_id: int) -> WebhookEvent:
    """Make a stored event unprocessed again so it is applied once more (processing is idempotent)."""
    event = db.session.get(WebhookEvent, event_id)
    if event is None:
        raise NotFound("That webhook event no longer exists; it may have been removed by retention.")
    event.processed_at, event.attempts, event.outcome = None, 0, "reprocessing requested"
    audit.record("webhook.reprocess", f"Reprocessed webhook event {event_id}", target=str(event_id))
    db.session.commit()
    return event
