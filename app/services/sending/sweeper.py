"""Crash safety: what the periodic sweeper finds and fixes in the database, the source of truth.

A message stuck in `sending` is ambiguous: its worker died, or WhatsApp never answered, and the request may have
reached Meta. A status webhook (matched by biz_opaque_callback_data) settles it; only when none came within the
grace period (SEND_SETTLE_GRACE_SECONDS) is it sent again. The sweeper also reports running campaigns with due
messages, so their batches can be queued again after Redis lost them, and completes campaigns with nothing left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import exists, select

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus
from app.services.campaigns import batches as dispatch
from app.services.sending import message_state
from app.services.sending.claims import due, hold_write_lock
from app.services.sending.results import max_attempts
from app.whatsapp.errors import classify_transport

S, C = MessageStatus, CampaignStatus
SETTLE_LIMIT = 5000  # stuck messages handled per sweep; the next sweep takes the rest


@dataclass
class SweepReport:
    returned: int = 0  # stuck messages given back to pending, to be sent again
    failed: int = 0  # stuck messages out of tries
    completed: list[int] = field(default_factory=list)  # campaigns finished by this sweep
    due: list[int] = field(default_factory=list)  # running campaigns with messages due now
    scheduled: list[int] = field(default_factory=list)  # scheduled campaigns, whose start must be in the scheduler


def sweep(now: datetime | None = None) -> SweepReport:
    """Settle stuck messages, complete finished campaigns, and list the campaigns that need work queued."""
    now = now or utcnow()
    returned, failed = settle_stuck(now)
    completed = [campaign_id for campaign_id in _running_without_work() if dispatch.complete_if_finished(campaign_id)]
    return SweepReport(returned, failed, completed, _running_with_due(now), _scheduled())


def grace_seconds() -> float:
    return float(current_app.config["SEND_SETTLE_GRACE_SECONDS"])


def settle_stuck(now: datetime) -> tuple[int, int]:
    """Give messages in `sending` past the grace period back to pending (or fail them when out of tries). Commits."""
    hold_write_lock()
    cutoff = now - timedelta(seconds=grace_seconds())
    stuck = list(db.session.scalars(
        select(Message).where(Message.status == S.SENDING, Message.claimed_at < cutoff,
                              Message.campaign_id.is_not(None))
        .order_by(Message.id).limit(SETTLE_LIMIT).with_for_update(of=Message, skip_locked=True)).unique())
    cancelled = _cancelled_campaigns({message.campaign_id for message in stuck})
    totals, failed = message_state.new_totals(), 0
    for message in stuck:
        failed += _settle_one(message, message.campaign_id in cancelled, now, totals)
    message_state.add_to_counters(totals)
    db.session.commit()
    return len(stuck) - failed, failed


def _settle_one(message: Message, cancelled: bool, now: datetime, totals) -> bool:
    if message.attempts >= max_attempts():
        info = classify_transport(outcome_unknown=True)
        message.error_code, message.error_title, message.error_detail = None, info.title, info.explanation
        message_state.move(message, S.FAILED, now, totals)
        return True
    message_state.move(message, S.PENDING, now, totals)
    message.claimed_at, message.next_attempt_at = None, None
    if cancelled:
        message_state.move(message, S.CANCELLED, now, totals)
    return False


def _cancelled_campaigns(campaign_ids: set[int | None]) -> set[int]:
    if not campaign_ids:
        return set()
    return set(db.session.scalars(select(Campaign.id).where(Campaign.id.in_(campaign_ids),
                                                            Campaign.status == C.CANCELLED)))


def _running_with_due(now: datetime) -> list[int]:
    has_due = exists().where(Message.campaign_id == Campaign.id, Message.status == S.PENDING, due(now))
    return _running_where(has_due)


def _running_without_work() -> list[int]:
    busy = exists().where(Message.campaign_id == Campaign.id, Message.status.in_((S.PENDING, S.SENDING)))
    return _running_where(~busy)


def _running_where(*criteria) -> list[int]:
    return _ids(select(Campaign.id).where(Campaign.status == C.RUNNING, *criteria))


def _scheduled() -> list[int]:
    return _ids(select(Campaign.id).where(Campaign.status == C.SCHEDULED))


def _ids(statement) -> list[int]:
    ids: Sequence[int] = db.session.scalars(statement.order_by(Campaign.id)).all()
    return list(ids)
