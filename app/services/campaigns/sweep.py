"""The campaigns' part of the periodic sweep: settle stuck messages (sending.sweeper), complete running campaigns
with nothing left, and list the campaigns whose work must be queued again after Redis lost it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, select

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus
from app.services.campaigns import batches
from app.services.sending import sweeper
from app.services.sending.claims import due

S, C = MessageStatus, CampaignStatus


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
    returned, failed = sweeper.settle_stuck(now)
    completed = [campaign_id for campaign_id in _running_without_work() if batches.complete_if_finished(campaign_id)]
    return SweepReport(returned, failed, completed, _running_with_due(now), _scheduled())


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
