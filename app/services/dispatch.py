"""The dispatch engine: one batch of a running campaign at a time.

A batch re-checks that the campaign is running, claims due pending messages (dispatch_claim), renders them,
releases the database connection, sends them at the sender's shared rate over keep-alive HTTP (dispatch_sender),
writes all results with the counters in one transaction (dispatch_results), and says when the next batch is due.
The job that runs it (jobs.campaigns.send_batch) enqueues that next batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import exists, func, select

from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus, TemplateStatus
from app.models.base import utcnow
from app.services import campaign_state, dispatch_claim, dispatch_results, rate_limit
from app.services.dispatch_sender import SendPlan, send_all, whatsapp_settings

S, C = MessageStatus, CampaignStatus
NOW, LATER, IDLE = "now", "later", "idle"
BATCH_SECONDS = 5  # a batch holds about this many seconds of its lane's share of the rate
MIN_BATCH, DEFAULT_BATCH_SIZE, DEFAULT_PARALLEL_BATCHES = 10, 500, 4


@dataclass(frozen=True)
class BatchReport:
    campaign_id: int
    claimed: int = 0
    sent: int = 0
    next_step: str = IDLE  # NOW: another batch is due; LATER: after `delay` seconds; IDLE: nothing to schedule
    delay: float = 0.0


def send_batch(campaign_id: int) -> BatchReport:
    """Claim, render, send and record one batch of a running campaign, then say when the next one is due."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != C.RUNNING:
        return BatchReport(campaign_id)
    now = utcnow()
    waiting = _not_now(campaign, now)
    if waiting is not None:
        return waiting
    plan, size = send_plan(campaign), batch_size(campaign)
    ids = dispatch_claim.claim(campaign_id, size, now)
    sent = _send_claimed(campaign, plan, ids, now) if ids else 0  # `campaign` is detached after this
    report = next_step(campaign_id)
    return BatchReport(campaign_id, len(ids), sent, report.next_step, report.delay)


def _send_claimed(campaign: Campaign, plan: SendPlan, ids: list[int], now: datetime) -> int:
    campaign_id = campaign.id
    try:
        items = dispatch_claim.prepare(campaign, ids, now)
    except Exception:
        db.session.rollback()
        dispatch_claim.release(ids)  # nothing went out: these may be claimed again safely
        raise
    settings = whatsapp_settings(plan.phone_number_id)
    db.session.remove()  # no connection is held while we wait on the rate limiter and on WhatsApp
    outcomes = send_all(plan, items, settings)
    dispatch_results.record(campaign_id, outcomes, utcnow())
    return sum(1 for outcome in outcomes if outcome.result is not None and outcome.result.ok)


def _not_now(campaign: Campaign, now: datetime) -> BatchReport | None:
    """Stop here when the template cannot be sent, or wait when the campaign is in its quiet hours."""
    template = campaign.template
    if template is None or template.status != TemplateStatus.APPROVED:
        name = f"“{template.name}” is {template.status.lower()}" if template else "was deleted"
        pause_running(campaign.id, f"The campaign's template {name}; choose an approved template to continue.")
        return BatchReport(campaign.id)
    quiet_end = quiet_hours_end(campaign, now)
    if quiet_end is not None:
        return BatchReport(campaign.id, next_step=LATER, delay=(quiet_end - now).total_seconds())
    return None


def send_plan(campaign: Campaign) -> SendPlan:
    sender = campaign.phone_number_id or current_app.config.get("WHATSAPP_PHONE_NUMBER_ID") or ""
    assert campaign.template is not None
    return SendPlan(campaign.template.name, campaign.template.language, sender,
                    rate_limit.send_limits(sender, campaign.id, campaign.max_rate))


def parallel_batches() -> int:
    """How many batches of one campaign may run at once (on different workers), from SEND_PARALLEL_BATCHES."""
    return max(1, int(current_app.config.get("SEND_PARALLEL_BATCHES") or DEFAULT_PARALLEL_BATCHES))


def batch_size(campaign: Campaign) -> int:
    """Big enough to spread the cost of a job, small enough that pause and cancel act within seconds."""
    cap = int(current_app.config.get("SEND_BATCH_SIZE") or DEFAULT_BATCH_SIZE)
    share = rate_limit.effective_rate(campaign.max_rate) * BATCH_SECONDS / parallel_batches()
    return max(1, min(cap, max(MIN_BATCH, math.ceil(share))))


def next_step(campaign_id: int) -> BatchReport:
    """Another batch now, one later (the earliest retry), or none; completes a campaign with nothing left."""
    now = utcnow()
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != C.RUNNING:
        return BatchReport(campaign_id)
    if _has(campaign_id, S.PENDING, dispatch_claim.due(now)):
        return BatchReport(campaign_id, next_step=NOW)
    retry_at = db.session.scalar(select(func.min(Message.next_attempt_at))
                                 .where(Message.campaign_id == campaign_id, Message.status == S.PENDING))
    if retry_at is not None:
        return BatchReport(campaign_id, next_step=LATER, delay=max(0.0, (retry_at - now).total_seconds()))
    if not _has(campaign_id, S.SENDING):
        complete_if_finished(campaign_id)
    return BatchReport(campaign_id)


def _has(campaign_id: int, status: str, *criteria) -> bool:
    return bool(db.session.scalar(select(exists().where(Message.campaign_id == campaign_id,
                                                        Message.status == status, *criteria))))


def complete_if_finished(campaign_id: int) -> bool:
    """Mark a running campaign completed when none of its messages is pending or sending. Commits."""
    campaign = dispatch_claim.lock_campaign(campaign_id)
    finished = (campaign is not None and campaign.status == C.RUNNING
                and not _has(campaign_id, S.PENDING) and not _has(campaign_id, S.SENDING))
    if finished:
        campaign_state.transition(campaign, C.COMPLETED)
    db.session.commit()
    return finished


def pause_running(campaign_id: int, reason: str) -> None:
    """Pause a campaign the engine cannot go on with, with the reason shown on its page. Commits."""
    db.session.rollback()  # after an unexpected error the session may hold a failed transaction
    campaign = dispatch_claim.lock_campaign(campaign_id)
    if campaign is not None and campaign.status == C.RUNNING:
        dispatch_results.pause(campaign, reason)
    db.session.commit()


def quiet_hours_end(campaign: Campaign, now: datetime) -> datetime | None:
    """When the campaign's quiet hours (in its timezone) end, if `now` falls inside them."""
    if not campaign.quiet_hours_start or not campaign.quiet_hours_end:
        return None
    zone = ZoneInfo(campaign.timezone or "UTC")
    local = now.astimezone(zone)
    start, end = _clock(campaign.quiet_hours_start), _clock(campaign.quiet_hours_end)
    clock = local.time().replace(tzinfo=None)
    inside = start <= clock < end if start <= end else (clock >= start or clock < end)
    if start == end or not inside:
        return None
    end_at = datetime.combine(local.date(), end, tzinfo=zone)
    return end_at if end_at > local else end_at + timedelta(days=1)


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))
