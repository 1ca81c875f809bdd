"""What the campaign page shows: launch checks, live progress from the maintained counters, and failures.

The live part is polled every two seconds while a campaign sends, so it reads the campaign row's counters and
nothing that scans messages, except the failure list, which only exists once something failed, and the count of
recipients held for quiet hours, taken at most once a minute.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime

from redis.exceptions import RedisError
from sqlalchemy import func, select

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus
from app.queues import redis_connection
from app.services.campaigns import audience, batches, campaign_state, lifecycle, schedule, send_rate
from app.services.campaigns import review as campaign_review
from app.services.campaigns.audience import AudienceSummary
from app.services.campaigns.engine import STOP_REASON_PREFIX
from app.services.contacts import tags
from app.services.sending import message_state, rate_limit

C = CampaignStatus
LIVE = (C.RUNNING, C.SCHEDULED)  # the page polls while the campaign is in one of these
FAILURE_GROUPS = 20
QUIET_HOLD_CACHE_SECONDS = 120  # outlives the minute its key names


@dataclass(frozen=True)
class Failure:
    code: int | None
    title: str
    explanation: str
    count: int


@dataclass(frozen=True)
class Progress:
    percent: int
    processed: int  # sent, failed or skipped
    remaining: int  # not yet sent (pending, sending, or cancelled when the campaign was)
    seconds_left: int | None  # at the measured rate (or the campaign's configured one), while it sends
    rate: float | None = None  # messages a second over the last few seconds, while it sends


@dataclass
class RunView:
    campaign: Campaign
    status_label: str
    counters: dict[str, int]
    progress: Progress
    live: bool
    failures: list[Failure] = field(default_factory=list)
    quiet: batches.QuietHold | None = None  # recipients held for their quiet hours, while running
    problems: list[str] = field(default_factory=list)  # why a draft cannot launch
    audience: AudienceSummary | None = None  # the live audience, before launch
    audience_text: str = ""
    next_start: datetime | None = None
    runs: list[Campaign] = field(default_factory=list)  # a recurring campaign's runs, newest first
    review: campaign_review.Review | None = None  # a draft's review before launch
    repeat_text: str | None = None  # "Daily at 10:00" for a shortcut schedule
    ended: bool = False  # a recurring campaign that reached its end date


@dataclass(frozen=True)
class StopAlert:
    phone_number_id: str
    reason: str
    campaigns: int


def live_view(campaign_id: int) -> RunView:
    """The polled part of the page: status, controls, progress, counters, failures."""
    campaign = lifecycle.get(campaign_id)
    counters = message_state.maintained(campaign)
    running = campaign.status == C.RUNNING
    quiet = _quiet_hold(campaign, utcnow()) if running else None
    rate = send_rate.sample(campaign.id, counters["sent"] + counters["failed"]) if running else None
    return RunView(campaign, campaign_state.LABELS.get(campaign.status, campaign.status), counters,
                   progress(campaign, counters, rate), campaign.status in LIVE,
                   failures(campaign.id) if counters["failed"] else [], quiet)


def _quiet_hold(campaign: Campaign, now: datetime) -> batches.QuietHold | None:
    """Recipients held for quiet hours, counted at most once a minute per campaign (in Redis): counting scans the
    campaign's pending messages, and who is held only changes when the minute turns."""
    if batches.quiet_window(campaign) is None:
        return None
    key = f"quiet-hold:{campaign.id}:{now:%Y%m%d%H%M}"
    try:
        cached = redis_connection().get(key)
    except RedisError:
        return batches.quiet_hold(campaign, now)
    if cached is not None:
        held, opens_at, zone = json.loads(cached)
        return batches.QuietHold(held, datetime.fromisoformat(opens_at) if opens_at else None, zone)
    hold = batches.quiet_hold(campaign, now)
    try:
        opens_at = hold.opens_at.isoformat() if hold.opens_at else None
        redis_connection().set(key, json.dumps([hold.held, opens_at, hold.zone]), ex=QUIET_HOLD_CACHE_SECONDS)
    except RedisError:
        pass
    return hold


def page_view(campaign_id: int) -> RunView:
    """The whole page: the live part plus the summary, the launch checks and a recurring campaign's runs."""
    view = live_view(campaign_id)
    campaign = view.campaign
    view.audience_text = audience.describe(campaign.audience, {tag.key: tag.name for tag in tags.all_tags()})
    if campaign.status in (C.DRAFT, C.SCHEDULED):
        view.audience = audience.summary(campaign.audience)
    if campaign.status == C.DRAFT:
        view.problems = campaign_review.launch_problems(campaign, view.audience) + _schedule_problems(campaign)
        view.review = campaign_review.review(campaign, view.audience, _first_start(campaign))
    if campaign.status == C.SCHEDULED:
        view.next_start = _next_start(campaign)
    if campaign.schedule_kind == "cron":
        view.repeat_text = schedule.describe(campaign.cron)
        view.ended = campaign.status == C.COMPLETED and campaign.ends_at is not None
        view.runs = list(db.session.scalars(select(Campaign).where(Campaign.parent_id == campaign.id)
                                            .order_by(Campaign.id.desc()).limit(10)))
    return view


def progress(campaign: Campaign, counters: dict[str, int], rate: float | None = None) -> Progress:
    """How far the campaign is; `rate` is its measured send rate, which the time left goes by when it has one."""
    targeted = counters["targeted"]
    processed = min(targeted, counters["sent"] + counters["failed"] + counters["skipped"])
    finished = campaign.status == C.COMPLETED
    percent = 100 if finished and targeted else (processed * 100 // targeted if targeted else 0)
    remaining = targeted - processed
    seconds = None
    if campaign.status == C.RUNNING and remaining:
        pace = rate if rate else rate_limit.effective_rate(campaign.max_rate)
        seconds = math.ceil(remaining / pace)
    return Progress(percent, processed, remaining, seconds, rate)


def failures(campaign_id: int) -> list[Failure]:
    """Failed messages grouped by error, most common first."""
    count = func.count().label("count")
    rows = db.session.execute(
        select(Message.error_code, Message.error_title, Message.error_detail, count)
        .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.FAILED)
        .group_by(Message.error_code, Message.error_title, Message.error_detail)
        .order_by(count.desc()).limit(FAILURE_GROUPS))
    return [Failure(code, title or "Not sent", detail or "", number) for code, title, detail, number in rows]


def _first_start(campaign: Campaign) -> datetime | None:
    """A scheduled draft's first start, for the review's quiet-hours check; None: it would start now."""
    if campaign.schedule_kind not in ("at", "cron"):
        return None
    return lifecycle.next_run_before_end(campaign, utcnow())


def _next_start(campaign: Campaign) -> datetime | None:
    return lifecycle.next_run_before_end(campaign, utcnow())


def _schedule_problems(campaign: Campaign) -> list[str]:
    return lifecycle.schedule_problems(campaign, utcnow())


def stop_alerts() -> list[StopAlert]:
    """Senders whose campaigns the engine stopped because the account or token is unusable (for admins)."""
    rows = db.session.execute(
        select(Campaign.phone_number_id, Campaign.pause_reason, func.count())
        .where(Campaign.status == C.PAUSED, Campaign.pause_reason.startswith(STOP_REASON_PREFIX))
        .group_by(Campaign.phone_number_id, Campaign.pause_reason))
    return [StopAlert(sender, reason.removeprefix(STOP_REASON_PREFIX), count) for sender, reason, count in rows]
