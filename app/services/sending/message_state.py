"""Message statuses: the one table of allowed transitions, its one writer, and the counters that follow them.

Delivery statuses only move forward (sent < delivered < read); `read` implies delivered and sent.
Each status keeps its own timestamp, and a run's counters are defined by those timestamps
(see app/models/campaign.py), so `recount` can always check them. Each recipient counts once per funnel step,
whatever order the API's answer and the status webhooks arrive in: a message WhatsApp accepted and later reported
failed counts as failed, not sent (its sent_at stays, as what happened, but no longer counts).

Every status change goes through here: `move` for one row (ORM object or plain row) with its counter changes, and
`bulk` for a set-based UPDATE, allowed only for the transitions in BULK, which change no counter.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import ColumnElement, Update, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.clock import utcnow
from app.extensions import db
from app.models import HourlyMessageStats, Message, MessageStatus, SendRun

S = MessageStatus
RANK = {S.PENDING: 0, S.SENDING: 1, S.SENT: 2, S.DELIVERED: 3, S.READ: 4}
ALLOWED: dict[str, set[str]] = {
    S.PENDING: {S.SENDING, S.SKIPPED, S.CANCELLED, S.FAILED},
    # back to pending = retry later; skipped or cancelled = found at send time that it must not go out
    S.SENDING: {S.PENDING, S.SENT, S.DELIVERED, S.READ, S.FAILED, S.SKIPPED, S.CANCELLED},
    S.SENT: {S.DELIVERED, S.READ, S.FAILED},
    S.DELIVERED: {S.READ},
    S.READ: set(),
    S.FAILED: set(),
    S.SKIPPED: set(),
    S.CANCELLED: set(),
    S.RECEIVED: set(),
}
# Reaching a status sets its own timestamp and those of the statuses it implies.
TIMESTAMPS = {
    S.SENT: ("sent_at",),
    S.DELIVERED: ("sent_at", "delivered_at"),
    S.READ: ("sent_at", "delivered_at", "read_at"),
    S.FAILED: ("failed_at",),
}
COUNTER_OF_TIMESTAMP = {"sent_at": "sent", "delivered_at": "delivered", "read_at": "read", "replied_at": "replied"}
COUNTERS = ("targeted", "skipped", "sent", "delivered", "read", "failed", "replied")
HOURLY = ("sent", "delivered", "read", "failed", "replied")
# The transitions `bulk` may apply: claiming, giving claimed messages back unsent, and cancelling unsent ones.
# None of them changes a counter, which is what lets them skip `move`.
BULK = frozenset({(S.PENDING, S.SENDING), (S.SENDING, S.PENDING), (S.PENDING, S.CANCELLED)})


class Movable(Protocol):
    """What a transition reads and writes: a Message, or a plain row of its columns where a bulk path (status
    webhooks, accepted sends) loads no ORM objects."""

    run_id: int | None
    status: str
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None


def can_transition(old: str, new: str) -> bool:
    return new in ALLOWED.get(old, set())


def counter_changes(message: Movable, new_status: str) -> Counter:
    """What moving this message to `new_status` adds to its run's counters (before the row changes)."""
    changes: Counter = Counter()
    for column in TIMESTAMPS.get(new_status, ()):
        if getattr(message, column) is None and column in COUNTER_OF_TIMESTAMP:
            changes[COUNTER_OF_TIMESTAMP[column]] += 1
    if new_status == S.FAILED and message.status != S.FAILED:
        changes["failed"] += 1
        if message.sent_at is not None:
            changes["sent"] -= 1  # accepted, then reported failed: it counts as failed only
    if new_status == S.SKIPPED and message.status != S.SKIPPED:
        changes["skipped"] += 1
    return changes


class Totals(defaultdict):
    """Counter changes per run id, plus per-hour changes for the dashboard's time series (messages of every source,
    in a run or not)."""

    def __init__(self) -> None:
        super().__init__(Counter)
        self.hours: defaultdict[datetime, Counter] = defaultdict(Counter)

    def count_reply(self, run_id: int | None, at: datetime) -> None:
        if run_id is not None:
            self[run_id]["replied"] += 1
        self.hours[_hour(at)]["replied"] += 1


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def move(message: Movable, new_status: str, at: datetime, totals: Totals | None = None) -> bool:
    """Apply one allowed transition; returns False (and changes nothing) if not allowed.

    `totals` collects counter changes for `add_to_counters` to write in one go.
    """
    if not can_transition(message.status, new_status):
        return False
    if totals is not None:
        _count(message, new_status, at, totals)
    for column in TIMESTAMPS.get(new_status, ()):
        if getattr(message, column) is None:
            setattr(message, column, at)
    message.status = new_status
    return True


def _count(message: Movable, new_status: str, at: datetime, totals: Totals) -> None:
    changes = counter_changes(message, new_status)
    if message.run_id is not None:
        totals[message.run_id].update(changes)
    hourly = Counter({name: n for name, n in changes.items() if name in HOURLY})
    if hourly["sent"] < 0 and message.sent_at is not None:
        # Taken back from the hour it was counted in, so every hour still equals a recount of its messages.
        totals.hours[_hour(message.sent_at)]["sent"] += hourly.pop("sent")
    totals.hours[_hour(at)].update(hourly)


def bulk(old: str, new: str, *criteria: ColumnElement[bool], **values) -> Update:
    """The UPDATE moving every message matching `criteria` from `old` to `new`, for the caller to execute (a claim
    adds RETURNING); only for the transitions in BULK, which change no counter."""
    if (old, new) not in BULK or not can_transition(old, new):
        raise ValueError(f"{old} → {new} cannot be applied in bulk")
    return (update(Message).where(Message.status == old, *criteria)
            .values(status=new, updated_at=values.pop("updated_at", None) or utcnow(), **values)
            .execution_options(synchronize_session=False))


def bulk_move(old: str, new: str, *criteria: ColumnElement[bool], **values) -> int:
    """Execute `bulk`; returns how many messages moved."""
    return db.session.execute(bulk(old, new, *criteria, **values)).rowcount


def new_totals() -> Totals:
    return Totals()


def add_to_counters(totals: Totals) -> None:
    """Add counter changes with one UPDATE per run (`x = x + n`, so concurrent writers never lose counts).

    Runs are updated in id order and hours in time order, so two workers never wait on each other in a cycle.
    """
    for run_id, changes in sorted(totals.items()):
        values = {name: getattr(SendRun, name) + amount for name, amount in changes.items() if amount}
        if values:
            db.session.execute(update(SendRun).where(SendRun.id == run_id).values(**values)
                               .execution_options(synchronize_session=False))
    _add_to_hours(getattr(totals, "hours", {}))


def _add_to_hours(hours: Mapping[datetime, Counter]) -> None:
    table = HourlyMessageStats.__table__
    dialect = db.session.get_bind().dialect.name
    for hour, changes in sorted(hours.items()):
        row = {name: changes.get(name, 0) for name in HOURLY}
        if not any(row.values()):
            continue
        insert = (postgresql if dialect == "postgresql" else sqlite).insert(table).values(hour=hour, **row)
        db.session.execute(insert.on_conflict_do_update(
            index_elements=[table.c.hour],
            set_={name: table.c[name] + insert.excluded[name] for name in HOURLY}))


def recount(run_id: int) -> dict[str, int]:
    """The counters computed from the message rows; equal to the maintained ones when all is well."""
    row = db.session.execute(select(
        func.count(),
        func.count(case((Message.status == S.SKIPPED, 1))),
        func.count(case(((Message.sent_at.is_not(None)) & (Message.status != S.FAILED), 1))),
        func.count(Message.delivered_at),
        func.count(Message.read_at),
        func.count(case((Message.status == S.FAILED, 1))),
        func.count(Message.replied_at),
    ).where(Message.run_id == run_id)).one()
    return dict(zip(COUNTERS, row, strict=True))


def maintained(run: SendRun) -> dict[str, int]:
    """The maintained counters of a run (or of a campaign, which reads its run's)."""
    return {name: getattr(run, name) for name in COUNTERS}


def in_flight(statuses: Iterable[str]) -> bool:
    return any(status in (S.PENDING, S.SENDING) for status in statuses)
