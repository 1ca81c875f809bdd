"""Message statuses: the one table of allowed transitions, and the campaign counters that follow them.

Delivery statuses only move forward (sent < delivered < read); `read` implies delivered and sent.
Each status keeps its own timestamp, and a campaign's counters are defined by those timestamps
(see app/models/campaign.py), so `recount` can always check them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.extensions import db
from app.models import Campaign, HourlyMessageStats, Message, MessageStatus

S = MessageStatus
RANK = {S.PENDING: 0, S.SENDING: 1, S.SENT: 2, S.DELIVERED: 3, S.READ: 4}
ALLOWED: dict[str, set[str]] = {
    S.PENDING: {S.SENDING, S.SKIPPED, S.CANCELLED, S.FAILED},
    S.SENDING: {S.PENDING, S.SENT, S.DELIVERED, S.READ, S.FAILED},  # back to pending = retry later
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


class Movable(Protocol):
    """What a transition reads and writes: a Message, or a plain row of its columns where a bulk path (status
    webhooks, accepted sends) loads no ORM objects."""

    campaign_id: int | None
    status: str
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None


def can_transition(old: str, new: str) -> bool:
    return new in ALLOWED.get(old, set())


def counter_changes(message: Movable, new_status: str) -> Counter:
    """What moving this message to `new_status` adds to its campaign's counters (before the row changes)."""
    changes: Counter = Counter()
    for column in TIMESTAMPS.get(new_status, ()):
        if getattr(message, column) is None and column in COUNTER_OF_TIMESTAMP:
            changes[COUNTER_OF_TIMESTAMP[column]] += 1
    if new_status == S.FAILED and message.status != S.FAILED:
        changes["failed"] += 1
    if new_status == S.SKIPPED and message.status != S.SKIPPED:
        changes["skipped"] += 1
    return changes


class Totals(defaultdict):
    """Counter changes per campaign id, plus per-hour changes for the dashboard's time series."""

    def __init__(self) -> None:
        super().__init__(Counter)
        self.hours: defaultdict[datetime, Counter] = defaultdict(Counter)

    def count_reply(self, campaign_id: int | None, at: datetime) -> None:
        if campaign_id is not None:
            self[campaign_id]["replied"] += 1
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
        changes = counter_changes(message, new_status)
        if message.campaign_id is not None:
            totals[message.campaign_id].update(changes)
        totals.hours[_hour(at)].update({name: n for name, n in changes.items() if name in HOURLY})
    for column in TIMESTAMPS.get(new_status, ()):
        if getattr(message, column) is None:
            setattr(message, column, at)
    message.status = new_status
    return True


def new_totals() -> Totals:
    return Totals()


def add_to_counters(totals: Totals) -> None:
    """Add counter changes with one UPDATE per campaign (`x = x + n`, so concurrent writers never lose counts).

    Campaigns are updated in id order and hours in time order, so two workers never wait on each other in a cycle.
    """
    for campaign_id, changes in sorted(totals.items()):
        values = {name: getattr(Campaign, name) + amount for name, amount in changes.items() if amount}
        if values:
            db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values)
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


def recount(campaign_id: int) -> dict[str, int]:
    """The counters computed from the message rows; equal to the maintained ones when all is well."""
    row = db.session.execute(select(
        func.count(),
        func.count(case((Message.status == S.SKIPPED, 1))),
        func.count(Message.sent_at),
        func.count(Message.delivered_at),
        func.count(Message.read_at),
        func.count(case((Message.status == S.FAILED, 1))),
        func.count(Message.replied_at),
    ).where(Message.campaign_id == campaign_id)).one()
    return dict(zip(COUNTERS, row, strict=True))


def maintained(campaign: Campaign) -> dict[str, int]:
    return {name: getattr(campaign, name) for name in COUNTERS}


def in_flight(statuses: Iterable[str]) -> bool:
    return any(status in (S.PENDING, S.SENDING) for status in statuses)
