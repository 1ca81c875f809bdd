"""Launching, scheduling, pausing, resuming and cancelling campaigns.

Launch freezes the audience: one INSERT … SELECT writes a Message row for every matching contact (opted-out
contacts as `skipped`, with the reason), so every message that will ever be sent exists first as a row.
These functions commit; queueing the work that follows (a batch, a scheduled start) is the caller's, through
the enqueue helpers in jobs/campaigns.py, and the sweeper queues it within a minute if that ever fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter
from sqlalchemy import String, case, cast, func, insert, literal, select

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, CampaignStatus, Contact, Message, MessageSource, MessageStatus, User
from app.models.base import UTCDateTime
from app.models.contact import JsonDocument
from app.services.admin import account_status, audit
from app.services.campaigns import audience, campaign_state, engine, review
from app.services.errors import NotFound, ServiceError
from app.services.sending import message_state

S, C = MessageStatus, CampaignStatus
RECENT_RUN_SECONDS = 30  # a recurring campaign never starts two runs this close together
COPIED_FIELDS = ("template_id", "phone_number_id", "audience", "variables", "accept_fallbacks", "timezone",
                 "max_rate", "quiet_hours_start", "quiet_hours_end", "created_by_id")


@dataclass(frozen=True)
class ScheduledRun:
    """What a scheduled start did: the campaign now sending (if any), and when the next start is due (cron)."""

    run_id: int | None
    next_at: datetime | None


def start(campaign_id: int, user_id: int | None) -> ScheduledRun:
    """The launch button: send now, or schedule when the campaign has an "at" or "cron" schedule. Commits."""
    if get(campaign_id).schedule_kind in ("at", "cron"):
        return schedule(campaign_id, user_id)
    return ScheduledRun(launch(campaign_id, user_id).id, None)


def launch(campaign_id: int, user_id: int | None) -> Campaign:
    """Start a draft or scheduled campaign now: freeze its recipients and mark it running. Commits."""
    campaign = _locked(campaign_id)
    if campaign.status not in (C.DRAFT, C.SCHEDULED):
        raise ServiceError(f"A {campaign_state.LABELS[campaign.status].lower()} campaign cannot be started again.")
    problems = review.launch_problems(campaign)
    if problems:
        raise ServiceError(" ".join(_sentence(problem) for problem in problems))
    campaign_state.transition(campaign, C.RUNNING)
    materialise(campaign, utcnow())
    audit.record("campaign.launch", f"Launched campaign “{campaign.name}” to {campaign.targeted:,} contacts "
                 f"({campaign.skipped:,} skipped)", target=_target(campaign), **_actor(user_id))
    db.session.commit()
    return campaign


def materialise(campaign: Campaign, now: datetime) -> None:
    """One INSERT … SELECT: a message per matching contact, opted-out ones skipped; then the counters.

    Each message keeps its recipient's timezone, so quiet hours are checked while sending without a join. Rows are
    numbered in contact order, so recipients are sent to in the order they were added, whatever plan the database
    picks for the audience."""
    opted_out = Contact.opted_out_at.is_not(None)
    reason = literal("Opted out of messages on ", String) + _date_text(Contact.opted_out_at)
    run = campaign.send_run()
    db.session.flush()  # the run's id, for its messages
    rows = select(literal(campaign.id), literal(run.id), literal(MessageSource.CAMPAIGN), Contact.id,
                  literal("out"), literal("template"),
                  case((opted_out, literal(S.SKIPPED)), else_=literal(S.PENDING)),
                  case((opted_out, reason), else_=None), literal({}, JsonDocument), literal({}, JsonDocument),
                  literal(0), Contact.timezone, literal(now, UTCDateTime), literal(now, UTCDateTime)
                  ).where(audience.condition(campaign.audience or {})).order_by(Contact.id)
    columns = ["campaign_id", "run_id", "source", "contact_id", "direction", "message_type", "status", "skip_reason",
               "parameters", "content", "attempts", "recipient_zone", "created_at", "updated_at"]
    db.session.execute(insert(Message).from_select(columns, rows))
    counts = message_state.recount(run.id)
    run.targeted, run.skipped = counts["targeted"], counts["skipped"]


def _date_text(column):
    """A UTC timestamp column as YYYY-MM-DD text, in SQL (the insert never loads a row into Python)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(cast(column, String), 1, 10)


def schedule(campaign_id: int, user_id: int | None) -> ScheduledRun:
    """Schedule a draft whose schedule is "at" a time or a recurring "cron"; returns its first start. Commits."""
    campaign = _locked(campaign_id)
    if campaign.schedule_kind not in ("at", "cron"):
        raise ServiceError("This campaign is set to send now; launch it instead.")
    problems = review.launch_problems(campaign) + schedule_problems(campaign, utcnow())
    if problems:
        raise ServiceError(" ".join(_sentence(problem) for problem in problems))
    first = next_start(campaign, utcnow())
    campaign_state.transition(campaign, C.SCHEDULED)
    when = f"{first.astimezone(ZoneInfo(campaign.timezone or 'UTC')):%d %b %Y %H:%M} {campaign.timezone}"
    audit.record("campaign.schedule", f"Scheduled campaign “{campaign.name}”, first run {when}",
                 target=_target(campaign), **_actor(user_id))
    db.session.commit()
    return ScheduledRun(None, first)


def next_start(campaign: Campaign, after: datetime) -> datetime:
    """The next start of a scheduled campaign after `after`, in UTC; cron times are in the campaign's timezone."""
    if campaign.schedule_kind == "at":
        if campaign.scheduled_at is None or campaign.scheduled_at <= after:
            raise ServiceError("Pick a start time in the future.", field="scheduled_at")
        return campaign.scheduled_at
    if not campaign.cron or not croniter.is_valid(campaign.cron):
        raise ServiceError("Enter a valid repeat schedule (cron), e.g. 0 10 * * 1 for Mondays at 10:00.", field="cron")
    local = after.astimezone(ZoneInfo(campaign.timezone or "UTC"))
    return croniter(campaign.cron, local).get_next(datetime).astimezone(ZoneInfo("UTC"))


def schedule_problems(campaign: Campaign, now: datetime) -> list[str]:
    """Why a draft's schedule cannot start: its time has passed, or its end date comes before its next run."""
    if campaign.schedule_kind not in ("at", "cron"):
        return []
    try:
        first = next_start(campaign, now)
    except ServiceError as error:
        return [error.message]
    if _past_end(campaign, first):
        return ["The end date comes before the next run, so no run would start; choose a later end date."]
    return []


def next_run_before_end(campaign: Campaign, after: datetime) -> datetime | None:
    """The next start after `after`, or None when a recurring campaign's end date comes first."""
    try:
        when = next_start(campaign, after)
    except ServiceError:
        return None
    return None if _past_end(campaign, when) else when


def _past_end(campaign: Campaign, when: datetime) -> bool:
    return campaign.schedule_kind == "cron" and campaign.ends_at is not None and when > campaign.ends_at


def overdue_or_next_start(campaign_id: int) -> datetime | None:
    """When a scheduled campaign should start, to rebuild a lost scheduler entry: a missed "at" time is now."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != C.SCHEDULED:
        return None
    now = utcnow()
    if campaign.schedule_kind == "at":
        return max(campaign.scheduled_at or now, now)
    if campaign.ends_at is not None and next_run_before_end(campaign, now) is None:
        # No run left before the end date, yet still scheduled: its last start was lost. A start now runs what was
        # missed (unless the end date has passed, as a missed "at" time starts late) and marks the campaign ended.
        return now
    try:
        return next_start(campaign, now)
    except ServiceError:
        return None


def start_scheduled(campaign_id: int) -> ScheduledRun:
    """A scheduled start came due: launch the campaign ("at"), or a new run of it ("cron"). Commits."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None or campaign.status != C.SCHEDULED:
        return ScheduledRun(None, None)  # cancelled or unscheduled meanwhile
    if campaign.schedule_kind == "cron":
        return _start_recurring_run(campaign)
    try:
        return ScheduledRun(launch(campaign_id, None).id, None)
    except ServiceError as error:
        db.session.rollback()
        _back_to_draft(campaign_id, error.message)
        return ScheduledRun(None, None)


def _start_recurring_run(parent: Campaign) -> ScheduledRun:
    now = utcnow()
    if _past_end(parent, now):
        _end_recurring(parent.id)  # a start that came due after the end date (a late scheduler) starts nothing
        return ScheduledRun(None, None)
    next_at = next_run_before_end(parent, now)
    recent = select(Campaign.id).where(Campaign.parent_id == parent.id,
                                       Campaign.created_at > now - timedelta(seconds=RECENT_RUN_SECONDS))
    if db.session.scalar(recent.limit(1)) is not None:
        return ScheduledRun(None, next_at)  # this start already ran (the scheduler fired twice)
    run = Campaign(name=f"{parent.name} · {now.astimezone(ZoneInfo(parent.timezone or 'UTC')):%d %b %Y %H:%M}",
                   parent_id=parent.id, schedule_kind="now", **{name: getattr(parent, name) for name in COPIED_FIELDS})
    db.session.add(run)
    db.session.commit()
    try:
        started = ScheduledRun(launch(run.id, None).id, next_at)
    except ServiceError as error:
        db.session.rollback()
        _fail_run(run.id, error.message)
        started = ScheduledRun(None, next_at)
    if next_at is None:
        _end_recurring(parent.id)  # that was the last run before the end date
    return started


def _end_recurring(parent_id: int) -> None:
    """Mark a recurring campaign whose end date has come completed; its runs keep their own statuses."""
    parent = _locked(parent_id)
    if parent.status != C.SCHEDULED:
        return
    campaign_state.transition(parent, C.COMPLETED)  # the parent itself never sends: its runs do
    audit.record("campaign.end", f"Recurring campaign “{parent.name}” reached its end date; no more runs start",
                 target=_target(parent), actor="scheduler")
    db.session.commit()


def _back_to_draft(campaign_id: int, problem: str) -> None:
    campaign = _locked(campaign_id)
    campaign_state.transition(campaign, C.DRAFT)
    audit.record("campaign.launch_failed", f"Scheduled campaign “{campaign.name}” did not start: {problem}",
                 target=_target(campaign), actor="scheduler")
    db.session.commit()


def _fail_run(run_id: int, problem: str) -> None:
    run = _locked(run_id)
    campaign_state.transition(run, C.FAILED, reason=f"This run could not start: {problem}")
    audit.record("campaign.launch_failed", f"Recurring run “{run.name}” did not start: {problem}",
                 target=_target(run), actor="scheduler")
    db.session.commit()


def unschedule(campaign_id: int, user_id: int | None = None) -> Campaign:
    """Take a scheduled campaign back to draft. Commits."""
    return _change(campaign_id, C.DRAFT, "campaign.unschedule", "Unscheduled", user_id)


def pause(campaign_id: int, reason: str | None = None, user_id: int | None = None) -> Campaign:
    """Pause a running campaign; the batch being sent finishes, no new one starts. Commits."""
    return _change(campaign_id, C.PAUSED, "campaign.pause", "Paused", user_id, reason)


def resume(campaign_id: int, user_id: int | None = None) -> Campaign:
    """Let a paused campaign send again (the caller queues its batches). Commits."""
    if get(campaign_id).status != C.PAUSED:
        raise ServiceError("Only a paused campaign can be resumed; launch a draft instead.")
    blocked = account_status.launch_problem()
    if blocked:
        raise ServiceError(blocked)
    return _change(campaign_id, C.RUNNING, "campaign.resume", "Resumed", user_id)


def cancel(campaign_id: int, user_id: int | None = None) -> Campaign:
    """Stop a campaign for good: messages not yet sent are cancelled. Commits."""
    campaign = _locked(campaign_id)
    campaign_state.transition(campaign, C.CANCELLED)
    count = message_state.bulk_move(S.PENDING, S.CANCELLED, Message.campaign_id == campaign_id)
    audit.record("campaign.cancel", f"Cancelled campaign “{campaign.name}”; {count:,} unsent messages cancelled",
                 target=_target(campaign), **_actor(user_id))
    db.session.commit()
    return campaign


def _change(campaign_id: int, status: str, action: str, verb: str, user_id: int | None,
            reason: str | None = None) -> Campaign:
    campaign = _locked(campaign_id)
    campaign_state.transition(campaign, status, reason=reason)
    because = f": {reason}" if reason else ""
    audit.record(action, f"{verb} campaign “{campaign.name}”{because}", target=_target(campaign), **_actor(user_id))
    db.session.commit()
    return campaign


def get(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("That campaign does not exist.")
    return campaign


def _locked(campaign_id: int) -> Campaign:
    campaign = engine.lock(campaign_id)
    if campaign is None:
        raise NotFound("That campaign does not exist.")
    return campaign


def _actor(user_id: int | None) -> dict:
    """Who to name in the audit log: the request's user, the given user, or the scheduler."""
    user = db.session.get(User, user_id) if user_id is not None else None
    return {"actor": user.email, "user_id": user.id} if user else {}


def _target(campaign: Campaign) -> str:
    return f"campaign:{campaign.id}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
