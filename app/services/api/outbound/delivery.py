"""Delivering the outbox: fan events out to the endpoints that want them, post due deliveries, record the answers.

Set-based throughout: a batch of events is claimed with one UPDATE … RETURNING and fanned out with one executemany;
a batch of due deliveries is claimed the same way (its next_attempt_at pushed past a lease, so a worker that dies
mid-batch only delays it), posted concurrently with no database session held (transport), and recorded with one
executemany. A failure is retried with exponential backoff and jitter until RETRY_HOURS after the delivery was
created, then given up; an endpoint that has failed for DISABLE_AFTER_DAYS with no success in between is disabled,
with an audit entry and a banner for admins. At least once: a receiver dedupes on the event id header.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, delete, func, select, update

from app.clock import utcnow
from app.extensions import db
from app.models import Contact, DeliveryStatus, OutboundDelivery, OutboundEndpoint, OutboundEvent
from app.services.admin import audit, settings
from app.services.api.outbound.transport import Attempt, Options, Outcome, post_all

D = DeliveryStatus
LEASE = timedelta(minutes=10)  # longer than a batch can take (timeouts × batch ÷ threads)
FAN_OUT_BATCH = 1000


@dataclass
class BatchReport:
    delivered: int = 0
    failed: int = 0  # attempts that failed (retried later or given up)

    @property
    def attempted(self) -> int:
        return self.delivered + self.failed


def fan_out(now: datetime | None = None, limit: int = FAN_OUT_BATCH) -> int:
    """Give each new event its JSON body and a delivery per endpoint that wants it; returns events handled. Commits."""
    now = now or utcnow()
    candidates = select(OutboundEvent.id).where(OutboundEvent.fanned_out_at.is_(None)).order_by(OutboundEvent.id)
    claimed = db.session.execute(
        update(OutboundEvent).where(OutboundEvent.id.in_(_claimable(candidates.limit(limit), OutboundEvent)))
        .values(fanned_out_at=now).returning(OutboundEvent.id, OutboundEvent.event_type, OutboundEvent.occurred_at,
                                             OutboundEvent.payload)
        .execution_options(synchronize_session=False)).all()
    if not claimed:
        db.session.rollback()
        return 0
    endpoints = db.session.execute(select(OutboundEndpoint.id, OutboundEndpoint.events)
                                   .where(OutboundEndpoint.enabled.is_(True))).all()
    phones = _phones({row.payload.get("contact_id") for row in claimed if "phone" not in row.payload})
    bodies = [{"id": row.id, "body": render(row.id, row.event_type, row.occurred_at, row.payload, phones)}
              for row in claimed]
    db.session.execute(update(OutboundEvent), bodies)
    deliveries = [{"event_id": row.id, "endpoint_id": endpoint.id, "status": D.PENDING, "attempts": 0,
                   "next_attempt_at": now, "created_at": now}
                  for row in claimed for endpoint in endpoints if row.event_type in endpoint.events]
    if deliveries:
        db.session.execute(OutboundDelivery.__table__.insert(), deliveries)
    db.session.commit()
    return len(claimed)


def render(event_id: int, event_type: str, occurred_at: datetime, payload: dict, phones: dict[int, str]) -> str:
    """The JSON body receivers get: our event id (also in a header, for dedupe), its type, when, and its data."""
    data = dict(payload)
    if "contact_id" in data and "phone" not in data:
        data["phone"] = phones.get(data["contact_id"])
    return json.dumps({"id": f"evt_{event_id}", "type": event_type, "occurred_at": occurred_at.isoformat(),
                       "data": data}, separators=(",", ":"), ensure_ascii=False)


def _phones(contact_ids: set) -> dict[int, str]:
    ids = sorted(contact_id for contact_id in contact_ids if contact_id is not None)
    if not ids:
        return {}
    rows = db.session.execute(select(Contact.id, Contact.phone).where(Contact.id.in_(ids)))
    return {row.id: row.phone for row in rows}


def deliver_due(now: datetime | None = None) -> BatchReport:
    """Claim a batch of due deliveries, post them, record the answers (two short transactions around the posts)."""
    now = now or utcnow()
    attempts = claim_due(now)
    if not attempts:
        return BatchReport()
    outcomes = post_all(attempts, options())
    return record(outcomes, utcnow())


def claim_due(now: datetime, limit: int | None = None) -> list[Attempt]:
    """Due pending deliveries of enabled endpoints, leased to this worker; their attempt counted. Commits."""
    limit = limit or current_app.config["OUTBOUND_WEBHOOK_BATCH_SIZE"]
    candidates = _due(now).order_by(OutboundDelivery.next_attempt_at, OutboundDelivery.id).limit(limit)
    ids = list(db.session.scalars(
        update(OutboundDelivery).where(OutboundDelivery.id.in_(_claimable(candidates, OutboundDelivery)))
        .values(next_attempt_at=now + LEASE, attempts=OutboundDelivery.attempts + 1, last_attempt_at=now)
        .returning(OutboundDelivery.id).execution_options(synchronize_session=False)))
    if not ids:
        db.session.rollback()
        return []
    rows = db.session.execute(
        select(OutboundDelivery.id, OutboundDelivery.endpoint_id, OutboundEndpoint.url, OutboundEndpoint.secret,
               OutboundEvent.id.label("event_id"), OutboundEvent.event_type, OutboundEvent.body)
        .join(OutboundEndpoint, OutboundEndpoint.id == OutboundDelivery.endpoint_id)
        .join(OutboundEvent, OutboundEvent.id == OutboundDelivery.event_id)
        .where(OutboundDelivery.id.in_(ids)).order_by(OutboundDelivery.id)).all()
    db.session.commit()  # release the session before the slow part
    return [Attempt(row.id, row.endpoint_id, row.url, row.secret, row.event_id, row.event_type, row.body or "{}")
            for row in rows]


def _due(now: datetime) -> Select:
    """Pending deliveries whose time has come, of endpoints that are enabled."""
    return (select(OutboundDelivery.id).join(OutboundEndpoint, OutboundEndpoint.id == OutboundDelivery.endpoint_id)
            .where(OutboundDelivery.status == D.PENDING, OutboundDelivery.next_attempt_at <= now,
                   OutboundEndpoint.enabled.is_(True)))


def _claimable(candidates: Select, model):
    if db.session.get_bind().dialect.name != "postgresql":
        return candidates.scalar_subquery()  # SQLite: one writer at a time makes the single UPDATE atomic
    # Lock the rows, skipping those another worker is claiming; materialised so the LIMIT runs exactly once.
    batch = candidates.with_for_update(of=model, skip_locked=True).cte("batch").prefix_with("MATERIALIZED")
    return select(batch.c.id)


def options() -> Options:
    config = current_app.config
    return Options(config["OUTBOUND_WEBHOOK_CONCURRENCY"], config["OUTBOUND_WEBHOOK_CONNECT_TIMEOUT_SECONDS"],
                   config["OUTBOUND_WEBHOOK_READ_TIMEOUT_SECONDS"], config["OUTBOUND_WEBHOOK_MAX_RESPONSE_BYTES"],
                   allow_private())


def allow_private() -> bool:
    return settings.get("outbound_private_addresses") == "allow"


def record(outcomes: list[Outcome], now: datetime) -> BatchReport:
    """Write every answer with one executemany, then the endpoints' health. Commits."""
    facts = {row.id: row for row in db.session.execute(
        select(OutboundDelivery.id, OutboundDelivery.created_at, OutboundDelivery.attempts)
        .where(OutboundDelivery.id.in_([outcome.delivery_id for outcome in outcomes])))}
    rows = [_row(outcome, facts[outcome.delivery_id], now) for outcome in outcomes if outcome.delivery_id in facts]
    if rows:
        db.session.execute(update(OutboundDelivery), rows)
    _endpoint_health(outcomes, now)
    db.session.commit()
    delivered = sum(outcome.ok for outcome in outcomes)
    return BatchReport(delivered=delivered, failed=len(outcomes) - delivered)


def _row(outcome: Outcome, fact, now: datetime) -> dict:
    row = {"id": outcome.delivery_id, "response_code": outcome.code, "duration_ms": outcome.duration_ms,
           "error": outcome.error}
    if outcome.ok:
        return row | {"status": D.DELIVERED, "delivered_at": now, "next_attempt_at": None}
    retry_at = now + timedelta(seconds=backoff_seconds(fact.attempts))
    if retry_at > fact.created_at + timedelta(hours=current_app.config["OUTBOUND_WEBHOOK_RETRY_HOURS"]):
        return row | {"status": D.FAILED, "next_attempt_at": None}
    return row | {"status": D.PENDING, "next_attempt_at": retry_at}


def backoff_seconds(attempts: int) -> float:
    """Exponential from RETRY_BASE_SECONDS, capped, with jitter so a receiver's outage does not end in a stampede."""
    config = current_app.config
    delay = min(config["OUTBOUND_WEBHOOK_RETRY_BASE_SECONDS"] * 2 ** max(attempts - 1, 0),
                config["OUTBOUND_WEBHOOK_RETRY_MAX_SECONDS"])
    return delay * random.uniform(0.75, 1.25)


def _endpoint_health(outcomes: list[Outcome], now: datetime) -> None:
    """A success clears an endpoint's failing streak; a failure starts one, and one long enough disables it."""
    succeeded = {outcome.endpoint_id for outcome in outcomes if outcome.ok}
    failing = {outcome.endpoint_id for outcome in outcomes if not outcome.ok} - succeeded
    if succeeded:
        db.session.execute(update(OutboundEndpoint).where(OutboundEndpoint.id.in_(succeeded),
                                                          OutboundEndpoint.failing_since.is_not(None))
                           .values(failing_since=None).execution_options(synchronize_session=False))
    if not failing:
        return
    db.session.execute(update(OutboundEndpoint).where(OutboundEndpoint.id.in_(failing),
                                                      OutboundEndpoint.failing_since.is_(None))
                       .values(failing_since=now).execution_options(synchronize_session=False))
    cutoff = now - timedelta(days=current_app.config["OUTBOUND_WEBHOOK_DISABLE_AFTER_DAYS"])
    for endpoint in db.session.scalars(select(OutboundEndpoint).where(
            OutboundEndpoint.id.in_(failing), OutboundEndpoint.enabled.is_(True),
            OutboundEndpoint.failing_since <= cutoff).with_for_update(of=OutboundEndpoint)):
        _disable_failing(endpoint, now)


def _disable_failing(endpoint: OutboundEndpoint, now: datetime) -> None:
    days = (now - endpoint.failing_since).days
    endpoint.enabled = False
    endpoint.disabled_reason = (f"Disabled automatically on {now:%d %b %Y}: every delivery failed for {days} days. "
                                "Fix the receiver, then enable it again.")
    audit.record("outbound_webhook.disable", f"Disabled webhook endpoint {endpoint.url} after {days} days of "
                 "failed deliveries", target=f"outbound_endpoint:{endpoint.id}", actor="system")


def next_retry_at() -> datetime | None:
    """When the earliest pending delivery is due (for the job that wakes up then)."""
    found = db.session.scalar(select(func.min(OutboundDelivery.next_attempt_at))
                              .join(OutboundEndpoint, OutboundEndpoint.id == OutboundDelivery.endpoint_id)
                              .where(OutboundDelivery.status == D.PENDING, OutboundEndpoint.enabled.is_(True)))
    db.session.rollback()
    return found


def purge_older_than(days: float, limit: int = 5000, now: datetime | None = None) -> int:
    """Delete up to `limit` events older than `days` (oldest first) with their deliveries, unless one still waits to
    be delivered; returns how many events went. Commits."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    waiting = select(OutboundDelivery.id).where(OutboundDelivery.event_id == OutboundEvent.id,
                                                 OutboundDelivery.status == D.PENDING).exists()
    old = (select(OutboundEvent.id).where(OutboundEvent.created_at < cutoff, OutboundEvent.fanned_out_at.is_not(None),
                                          ~waiting).order_by(OutboundEvent.created_at).limit(limit))
    ids = list(db.session.scalars(old))
    if ids:
        # Deliveries first rather than trusting ON DELETE CASCADE: SQLite enforces it only with its foreign-key pragma.
        db.session.execute(delete(OutboundDelivery).where(OutboundDelivery.event_id.in_(ids)))
        db.session.execute(delete(OutboundEvent).where(OutboundEvent.id.in_(ids)))
    db.session.commit()
    return len(ids)


def work_left(now: datetime | None = None) -> bool:
    """Whether an event awaits fan-out or a delivery is due now (looked up in a transaction of its own)."""
    now = now or utcnow()
    new = db.session.scalar(select(OutboundEvent.id).where(OutboundEvent.fanned_out_at.is_(None)).limit(1))
    due = db.session.scalar(_due(now).limit(1))
    db.session.rollback()
    return new is not None or due is not None
