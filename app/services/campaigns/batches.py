"""A campaign's batches through the send path, one at a time.

A batch re-checks that the campaign is running, claims due pending messages of its run (sending.claims), renders
them (prepare), releases the database connection, sends them at the sender's shared rate over keep-alive HTTP
(sending.sender), writes all results with the counters in one transaction (sending.results, with the campaign's
part in engine.settle_batch), and says when the next batch is due. The job that runs it (jobs.campaigns.send_batch)
enqueues that next batch.

Quiet hours are kept in each recipient's own time (the timezone their number belongs to, copied onto the message at
launch; the campaign's timezone when unknown): a batch claims only recipients outside them, and when only held
recipients are left, the next batch waits for the first of their windows to open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, available_timezones

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus, TemplateStatus
from app.queues import redis_connection
from app.services.campaigns import campaign_state, engine, prepare
from app.services.contacts import phones
from app.services.sending import claims, rate_limit, results
from app.services.sending.sender import Outcome, SendItem, SendPlan, send_all, whatsapp_settings
from app.whatsapp.settings import WhatsAppSettings

S, C = MessageStatus, CampaignStatus
NOW, LATER, IDLE = "now", "later", "idle"
BATCH_SECONDS = 5  # a batch holds about this many seconds of its lane's share of the rate
MIN_BATCH = 10
HELD_UNTIL_KEY = "quiet-held-until:{}"
# Once a batch found only recipients in quiet hours, batches queued meanwhile (the sweeper queues one a minute while
# pending messages exist) wait without scanning the held messages again, for at most this long; so a message the
# sweeper gives back to pending in an open timezone waits this long at worst.
HELD_RECHECK_SECONDS = 300


@dataclass(frozen=True)
class BatchReport:
    campaign_id: int
    claimed: int = 0
    sent: int = 0
    next_step: str = IDLE  # NOW: another batch is due; LATER: after `delay` seconds; IDLE: nothing to schedule
    delay: float = 0.0


@dataclass(frozen=True)
class QuietNow:
    """Whose quiet hours it is at one moment, by recipient timezone."""

    zones: frozenset[str]  # the timezones inside the campaign's quiet hours now
    default_quiet: bool  # recipients without a timezone follow the campaign's, which is inside them now


@dataclass(frozen=True)
class QuietHold:
    """Recipients waiting for their quiet hours to end."""

    held: int = 0  # pending recipients inside their quiet hours now
    opens_at: datetime | None = None  # when the first of their windows opens
    zone: str | None = None  # the timezone whose window opens first

    @property
    def opens_local(self) -> datetime | None:
        """`opens_at` on that timezone's clock, as the recipients see it."""
        return self.opens_at.astimezone(ZoneInfo(self.zone)) if self.opens_at and self.zone else None


@dataclass(frozen=True)
class ReadyBatch:
    """A claimed and rendered batch, ready to send; the session is released, so nothing holds a connection."""

    campaign_id: int
    plan: SendPlan
    ids: list[int]  # every claimed message, including those skipped or failed while rendering
    items: list[SendItem]
    settings: WhatsAppSettings


def send_batch(campaign_id: int) -> BatchReport:
    """Claim, render, send and record one batch of a running campaign, then say when the next one is due."""
    ready = ready_batch(campaign_id)
    if isinstance(ready, BatchReport):
        return ready
    sent = finish_batch(ready, send_all(ready.plan, ready.items, ready.settings))
    report = next_step(campaign_id)
    return BatchReport(campaign_id, len(ready.ids), sent, report.next_step, report.delay)


def ready_batch(campaign_id: int) -> ReadyBatch | BatchReport:
    """Claim and render the campaign's next batch; or, when there is none to send now, what to do instead."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != C.RUNNING:
        return BatchReport(campaign_id)
    now = utcnow()
    waiting = _not_now(campaign, now) or _still_held(campaign_id, now)
    if waiting is not None:
        return waiting
    plan, size = send_plan(campaign), batch_size(campaign)
    ids = claims.claim(size, now, *of_run(campaign), *sendable(quiet_now(campaign, now)))
    if not ids:
        return next_step(campaign_id)
    try:
        items = prepare.prepare(campaign, ids, now)
    except Exception:
        db.session.rollback()
        claims.release(ids)  # nothing went out: these may be claimed again safely
        raise
    settings = whatsapp_settings(plan.phone_number_id)
    db.session.remove()  # no connection is held while we wait on the rate limiter and on WhatsApp
    return ReadyBatch(campaign_id, plan, ids, items, settings)


def finish_batch(ready: ReadyBatch, outcomes: list[Outcome]) -> int:
    """Record a sent batch's outcomes with the counters; returns how many WhatsApp accepted."""
    results.record(outcomes, utcnow(), engine.settle_batch(ready.campaign_id))
    return sum(1 for outcome in outcomes if outcome.result is not None and outcome.result.ok)


def give_back(ready: ReadyBatch) -> None:
    """A ready batch that will not be sent: its messages go back to pending, or are cancelled with the campaign."""
    finish_batch(ready, [Outcome(message_id, None) for message_id in ready.ids])


def still_running(campaign_id: int) -> bool:
    """Whether the campaign is running now, read fresh (a pause or cancel may have come from another process)."""
    status = db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    db.session.rollback()  # end the read: nothing may stay open while the next sends go out
    return status == C.RUNNING


def _not_now(campaign: Campaign, now: datetime) -> BatchReport | None:
    """Stop here when the template cannot be sent."""
    template = campaign.template
    if template is None or template.status != TemplateStatus.APPROVED:
        name = f"“{template.name}” is {template.status.lower()}" if template else "was deleted"
        pause_running(campaign.id, f"The campaign's template {name}; choose an approved template to continue.")
        return BatchReport(campaign.id)
    return None


def send_plan(campaign: Campaign) -> SendPlan:
    sender = campaign.phone_number_id or current_app.config["WHATSAPP_PHONE_NUMBER_ID"] or ""
    return SendPlan(sender, rate_limit.send_limits(sender, campaign.id, campaign.max_rate))


def of_run(campaign: Campaign) -> list[ColumnElement[bool]]:
    """The campaign's messages, by its run (the claim's index leads with run_id)."""
    return [Message.run_id == (campaign.run.id if campaign.run is not None else None)]


def parallel_batches() -> int:
    """How many batches of one campaign may run at once (on different workers), from SEND_PARALLEL_BATCHES."""
    return max(1, int(current_app.config["SEND_PARALLEL_BATCHES"]))


def batch_size(campaign: Campaign) -> int:
    """Big enough to spread the cost of a job, small enough that pause and cancel act within seconds."""
    cap = int(current_app.config["SEND_BATCH_SIZE"])
    share = rate_limit.effective_rate(campaign.max_rate) * BATCH_SECONDS / parallel_batches()
    return max(1, min(cap, max(MIN_BATCH, math.ceil(share))))


def next_step(campaign_id: int) -> BatchReport:
    """Another batch now, one later (the earliest retry or end of quiet hours), or none; completes a campaign with
    nothing left."""
    now = utcnow()
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None or campaign.status != C.RUNNING:
        return BatchReport(campaign_id)
    quiet = quiet_now(campaign, now)
    outside_quiet = sendable(quiet)
    if _has(campaign_id, S.PENDING, claims.due(now), *outside_quiet):
        return BatchReport(campaign_id, next_step=NOW)
    retry_at = db.session.scalar(select(func.min(Message.next_attempt_at))
                                 .where(Message.campaign_id == campaign_id, Message.status == S.PENDING,
                                        *outside_quiet))
    opens_at = quiet_hold(campaign, now, quiet).opens_at if quiet is not None else None
    wake_at = min((when for when in (retry_at, opens_at) if when is not None), default=None)
    if wake_at is not None and wake_at == opens_at:
        _remember_held(campaign_id, wake_at, now)
    if wake_at is not None:
        return BatchReport(campaign_id, next_step=LATER, delay=max(0.0, (wake_at - now).total_seconds()))
    if not _has(campaign_id, S.SENDING):
        complete_if_finished(campaign_id)
    return BatchReport(campaign_id)


def _has(campaign_id: int, status: str, *criteria) -> bool:
    return bool(db.session.scalar(select(exists().where(Message.campaign_id == campaign_id,
                                                        Message.status == status, *criteria))))


def complete_if_finished(campaign_id: int) -> bool:
    """Mark a running campaign completed when none of its messages is pending or sending. Commits."""
    campaign = engine.lock(campaign_id)
    finished = (campaign is not None and campaign.status == C.RUNNING
                and not _has(campaign_id, S.PENDING) and not _has(campaign_id, S.SENDING))
    if finished:
        campaign_state.transition(campaign, C.COMPLETED)
    db.session.commit()
    return finished


def pause_running(campaign_id: int, reason: str) -> None:
    """Pause a campaign the engine cannot go on with, with the reason shown on its page. Commits."""
    db.session.rollback()  # after an unexpected error the session may hold a failed transaction
    campaign = engine.lock(campaign_id)
    if campaign is not None and campaign.status == C.RUNNING:
        engine.pause(campaign, reason)
    db.session.commit()


def quiet_now(campaign: Campaign, now: datetime) -> QuietNow | None:
    """Which recipient timezones are inside the campaign's quiet hours now; None when it has no quiet hours.

    Worked out for every timezone there is (a few hundred clock readings, no query), so a batch can leave their
    recipients out of its claim however many recipients the campaign has.
    """
    window = quiet_window(campaign)
    if window is None:
        return None
    default = campaign_zone(campaign)
    zones = _quiet_zones(window, default, now.replace(second=0, microsecond=0))
    return QuietNow(zones, default in zones)


@lru_cache(maxsize=256)
def _quiet_zones(window: tuple[time, time], default: str, minute: datetime) -> frozenset[str]:
    # Windows are whole minutes and so are today's UTC offsets: within one minute the answer cannot change.
    return frozenset(zone for zone in _all_zones() | {default} if window_end(window, zone, minute))


def sendable(quiet: QuietNow | None) -> list[ColumnElement[bool]]:
    """Criteria for messages whose recipient is outside quiet hours (none when the campaign has no quiet hours)."""
    if quiet is None:
        return []
    zone = Message.recipient_zone
    outside = zone.not_in(sorted(quiet.zones))
    return [and_(zone.is_not(None), outside) if quiet.default_quiet else or_(zone.is_(None), outside)]


def quiet_hold(campaign: Campaign, now: datetime, quiet: QuietNow | None = None) -> QuietHold:
    """How many pending recipients quiet hours hold back now, and when the first of their windows opens.

    Counts the campaign's pending messages in quiet timezones: run when nothing else is due, not for every batch.
    """
    quiet = quiet or quiet_now(campaign, now)
    window = quiet_window(campaign)
    if quiet is None or window is None or not quiet.zones:
        return QuietHold()
    zone = Message.recipient_zone
    inside = zone.in_(sorted(quiet.zones))
    rows = db.session.execute(
        select(zone, func.count()).where(Message.campaign_id == campaign.id, Message.status == S.PENDING,
                                         or_(zone.is_(None), inside) if quiet.default_quiet else inside)
        .group_by(zone)).all()
    if not rows:
        return QuietHold()
    ends = [(window_end(window, name, now), name) for name in {name or campaign_zone(campaign) for name, _ in rows}]
    opens_at, first_zone = min(((end, name) for end, name in ends if end is not None), default=(None, None))
    return QuietHold(sum(count for _, count in rows), opens_at, first_zone)


def _still_held(campaign_id: int, now: datetime) -> BatchReport | None:
    """Wait for the window a recent batch found every pending recipient waiting for, without looking again."""
    try:
        value = redis_connection().get(HELD_UNTIL_KEY.format(campaign_id))
    except RedisError:
        return None
    until = datetime.fromisoformat(value.decode()) if value else None
    if until is None or until <= now:
        return None
    return BatchReport(campaign_id, next_step=LATER, delay=(until - now).total_seconds())


def _remember_held(campaign_id: int, until: datetime, now: datetime) -> None:
    seconds = max(1, min(HELD_RECHECK_SECONDS, math.ceil((until - now).total_seconds())))
    try:
        redis_connection().set(HELD_UNTIL_KEY.format(campaign_id), until.isoformat(), ex=seconds)
    except RedisError:
        pass  # only an optimisation: the next batch looks at the messages instead


def quiet_window(campaign: Campaign) -> tuple[time, time] | None:
    """The campaign's quiet hours as local clock times (start, end), or None when it has none."""
    if not campaign.quiet_hours_start or not campaign.quiet_hours_end:
        return None
    start, end = _clock(campaign.quiet_hours_start), _clock(campaign.quiet_hours_end)
    return (start, end) if start != end else None


def campaign_zone(campaign: Campaign) -> str:
    """The timezone for recipients whose number has none of its own."""
    return campaign.timezone or "UTC"


def window_end(window: tuple[time, time], zone_name: str, now: datetime) -> datetime | None:
    """When quiet hours end in this timezone, if `now` is inside them there (an overnight window wraps midnight)."""
    start, end = window
    zone = _zone_info(zone_name)
    local = now.astimezone(zone)
    clock = local.time()
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    # Aware arithmetic in one zone is wall-clock arithmetic: "tomorrow 09:00" stays 09:00 across a DST change.
    end_at = datetime.combine(local.date(), end, tzinfo=zone)
    return end_at if end_at > local else end_at + timedelta(days=1)


@cache
def _all_zones() -> frozenset[str]:
    # The zones numbers map to, and every other zone tzdata has: a contact's timezone stored by an older
    # phonenumbers may be one the current version no longer returns, and it must still be kept quiet.
    return phones.known_time_zones() | available_timezones()


@cache
def _zone_info(name: str) -> ZoneInfo:
    # ZoneInfo only keeps a handful of zones it was asked for strongly; quiet_now reads hundreds each batch.
    return ZoneInfo(name)


def _clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))
