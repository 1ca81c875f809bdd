"""The webhook inbox: raw bodies stored before we answer Meta, claimed once for processing, retried, purged.

An event is finished when `processed_at` is set; its `outcome` says what it did (or why it was rejected or left
orphaned). An unfinished event counts its processing `attempts`; the sweeper retries it until it finishes or
has failed MAX_ATTEMPTS times, after which it stays unfinished, with the last error as outcome, for inspection.

Bodies are stored through a per-process group commit (see _GroupCommit) and claimed in batches, with SKIP LOCKED on
PostgreSQL so several drain jobs can share a backlog.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from queue import SimpleQueue

from sqlalchemy import Connection, Engine, delete, or_, select, update

from app.clock import utcnow
from app.extensions import db
from app.models import WebhookEvent
from app.services.admin import audit
from app.services.errors import NotFound

MAX_ATTEMPTS = 20
SWEEP_AFTER = timedelta(seconds=60)  # leave a fresh event to the job that was queued for it
OUTCOME_LENGTH = 4000
PROBLEM_OUTCOMES = ("orphaned", "error", "rejected", "unhandled")
BATCH_SIZE = 500  # events applied in one transaction: big enough to amortise the round trips, small enough to
# keep SQLite's single write lock short for the webhook endpoint waiting to insert
# A request still waiting after this answers 503 and Meta retries; should the row land after all, applying the
# event twice changes nothing.
STORE_TIMEOUT_SECONDS = 20
GROUP_LIMIT = 500  # bodies per INSERT; only reached when hundreds arrive within one commit's time


@dataclass(frozen=True)
class ClaimedEvent:
    """A stored event this transaction has claimed: what processing needs, without an ORM object per event."""

    id: int
    body: str
    received_at: datetime
    outcome: str | None


@dataclass(frozen=True)
class Outcome:
    event_id: int
    text: str
    finished_at: datetime | None  # None keeps the event unfinished for the sweeper's next retry


class StorageUnavailable(Exception):
    """The database could not store a webhook body (down, or too slow to answer): Meta must be asked to retry."""


@dataclass(frozen=True)
class Stored:
    event_id: int
    # The first event of its commit group. Asking for a drain after this one covers the whole group, which was
    # committed at the same moment, so the others need not ask Redis again.
    first_in_group: bool


def store(raw_body: bytes) -> Stored:
    """Insert the body exactly as received and commit. Raises StorageUnavailable."""
    # PostgreSQL text cannot hold NUL; JSON never contains a raw one, so replacing it loses nothing real.
    text = raw_body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    return _group_commit(db.engine).store({"body": text, "received_at": utcnow(), "attempts": 0})


def claim(event_id: int) -> ClaimedEvent | None:
    """Count an attempt and lock the unfinished event for this transaction; None if it is finished or unknown.

    The UPDATE row-locks the event on PostgreSQL and takes SQLite's write lock, so two workers never apply the same
    event (or, on SQLite, any two events) at the same time.
    """
    claimed = _claim_where(WebhookEvent.id == event_id, WebhookEvent.processed_at.is_(None))
    return claimed[0] if claimed else None


def claim_new(limit: int = BATCH_SIZE) -> list[ClaimedEvent]:
    """Claim up to `limit` stored events no worker has attempted yet, oldest first (the drain job's work)."""
    return _claim_many(limit, WebhookEvent.attempts == 0)


def claim_due(after_id: int = 0, now: datetime | None = None, limit: int = BATCH_SIZE) -> list[ClaimedEvent]:
    """Claim unfinished events whose own job has had its chance, oldest first, from `after_id` on (the sweeper)."""
    now = now or utcnow()
    return _claim_many(limit, WebhookEvent.id > after_id, WebhookEvent.attempts < MAX_ATTEMPTS,
                       WebhookEvent.received_at < now - SWEEP_AFTER)


def any_new() -> bool:
    """Whether a stored event awaits its first attempt (looked up in a transaction of its own)."""
    statement = select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None), WebhookEvent.attempts == 0)
    found = db.session.scalar(statement.limit(1)) is not None
    # End the read: on SQLite a read transaction that later writes fails if another writer committed meanwhile.
    db.session.rollback()
    return found


def _claim_many(limit: int, *conditions) -> list[ClaimedEvent]:
    # SKIP LOCKED lets concurrent drain jobs on PostgreSQL take disjoint batches instead of queueing behind one
    # another; SQLite has no row locks, and its single writer serialises the claims anyway.
    ids = (select(WebhookEvent.id).where(WebhookEvent.processed_at.is_(None), *conditions)
           .order_by(WebhookEvent.id).limit(limit).with_for_update(skip_locked=True))
    claimed = _claim_where(WebhookEvent.id.in_(ids.scalar_subquery()))
    if not claimed:
        db.session.rollback()  # nothing to do: end the transaction at once rather than hold SQLite's write lock
    return claimed


def _claim_where(*conditions) -> list[ClaimedEvent]:
    statement = (update(WebhookEvent).where(*conditions).values(attempts=WebhookEvent.attempts + 1)
                 .returning(WebhookEvent.id, WebhookEvent.body, WebhookEvent.received_at, WebhookEvent.outcome)
                 .execution_options(synchronize_session=False))
    return sorted((ClaimedEvent(*row) for row in db.session.execute(statement)), key=lambda event: event.id)


def record_outcomes(outcomes: Iterable[Outcome]) -> None:
    """Write the outcome of every claimed event; the caller commits.

    Events with the same outcome share one UPDATE … WHERE id IN (…): in a flood of status webhooks nearly all of
    them read "1 statuses applied", so a batch costs a statement or two instead of one row update per event.
    """
    groups: defaultdict[tuple[str, datetime | None], list[int]] = defaultdict(list)
    for outcome in outcomes:
        groups[outcome.text[:OUTCOME_LENGTH], outcome.finished_at].append(outcome.event_id)
    for (text, finished_at), event_ids in groups.items():
        db.session.execute(update(WebhookEvent).where(WebhookEvent.id.in_(event_ids))
                           .values(outcome=text, processed_at=finished_at)
                           .execution_options(synchronize_session=False))


def record_failure(event_id: int, error: BaseException) -> None:
    """After a failed attempt (rolled back, so its count was lost): count it and keep the error as the outcome."""
    db.session.rollback()
    first_line = (str(error).splitlines() or [""])[0][:500]
    db.session.execute(
        update(WebhookEvent).where(WebhookEvent.id == event_id, WebhookEvent.processed_at.is_(None))
        .values(attempts=WebhookEvent.attempts + 1, outcome=f"error: {type(error).__name__}: {first_line}")
        .execution_options(synchronize_session=False))
    db.session.commit()


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


# --- Group commit --------------------------------------------------------------------------------------------------

_STORE = (WebhookEvent.__table__.insert()
          .returning(WebhookEvent.__table__.c.id, sort_by_parameter_order=True))  # ids in the order of the rows


@dataclass
class _Waiting:
    row: dict
    stored: Future = field(default_factory=Future)


class _GroupCommit:
    """One writer thread per process and database stores the bodies of every request waiting at that moment with one
    multi-row INSERT and one commit, then hands each request its id.

    Each webhook must be committed before we answer 200, and a commit (a WAL flush) plus its round trips is most of
    what accepting one costs; under load the requests that arrive during one commit share the next. When it is quiet
    a group is a single body, and a request waits for nothing but its own INSERT.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine, self.pid, self.queue = engine, os.getpid(), SimpleQueue()
        self.connection: Connection | None = None
        threading.Thread(target=self._run, name="webhook-group-commit", daemon=True).start()

    def store(self, row: dict) -> Stored:
        waiting = _Waiting(row)
        self.queue.put(waiting)
        try:
            return waiting.stored.result(timeout=STORE_TIMEOUT_SECONDS)
        except TimeoutError as error:
            raise StorageUnavailable("the database did not answer in time") from error

    def _run(self) -> None:
        while True:
            group = [self.queue.get()]
            while len(group) < GROUP_LIMIT and not self.queue.empty():
                group.append(self.queue.get())
            self._write(group)

    def _write(self, group: list[_Waiting]) -> None:
        try:
            ids = self._insert([waiting.row for waiting in group])
        except Exception as error:  # every waiting request answers 503; the thread lives on for the next group
            self._disconnect()
            for waiting in group:
                failure = StorageUnavailable(f"{type(error).__name__}: {str(error).splitlines()[0][:200]}")
                failure.__cause__ = error
                waiting.stored.set_exception(failure)
            return
        for position, (waiting, event_id) in enumerate(zip(group, ids, strict=True)):
            waiting.stored.set_result(Stored(event_id, first_in_group=position == 0))


    def _insert(self, rows: list[dict]) -> list[int]:
        # The writer keeps its one connection: checking one out of the pool and back in (with its reset) for every
        # group cost more CPU than the INSERT. Autocommit makes the INSERT its own transaction, durable when it
        # returns, in one round trip instead of three (BEGIN, INSERT, COMMIT): half the CPU and time per group.
        if self.connection is None:
            self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return list(self.connection.execute(_STORE, rows).scalars().all())

    def _disconnect(self) -> None:
        """Drop a connection that failed (the database restarted, say); the next group opens a new one."""
        if self.connection is not None:
            try:
                self.connection.invalidate()
                self.connection.close()
            except Exception:  # it is broken already; there is nothing more to do with it
                pass
            self.connection = None


_group_commits: dict[Engine, _GroupCommit] = {}
_group_commits_lock = threading.Lock()


def _group_commit(engine: Engine) -> _GroupCommit:
    """This process's writer for `engine`; a forked process (a gunicorn worker) starts its own."""
    writer = _group_commits.get(engine)
    if writer is None or writer.pid != os.getpid():
        with _group_commits_lock:
            writer = _group_commits.get(engine)
            if writer is None or writer.pid != os.getpid():
                writer = _group_commits[engine] = _GroupCommit(engine)
    return writer
