"""One campaign's analytics: the funnel from its counters, failure reasons, and timing.

The counters are maintained with every status change, so the funnel costs one row. Only the failure
breakdown groups message rows, and only that campaign's failed ones (the campaign_id, status index).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus
from app.services.analytics.dashboard import rate
from app.services.campaigns import campaign_state
from app.services.errors import NotFound
from app.services.sending import message_state
from app.whatsapp.errors import ERROR_TABLE, classify

C = CampaignStatus
LIVE = (C.RUNNING, C.PAUSED, C.SCHEDULED)  # the page keeps refreshing while the campaign can still change
FAILURE_GROUPS = 25
FUNNEL = (("targeted", "Targeted"), ("sent", "Sent"), ("delivered", "Delivered"), ("read", "Read"),
          ("replied", "Replied"))
ASIDE = (("failed", "Failed"), ("skipped", "Skipped"))


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    count: int
    of_targeted: float | None
    of_previous: float | None  # None for the first step and for failed / skipped


@dataclass(frozen=True)
class FailureReason:
    code: int | None
    title: str
    explanation: str
    recipients: int


@dataclass(frozen=True)
class Timing:
    started_at: datetime | None
    finished_at: datetime | None
    seconds: float | None  # until finished, or until now while it runs
    per_minute: float | None  # messages handled (sent or failed) per minute

    @property
    def duration_text(self) -> str:
        return duration_text(self.seconds)

    @property
    def speed_text(self) -> str:
        if self.per_minute is None:
            return "—"
        if self.per_minute < 1:
            return "under 1 message a minute" if self.per_minute else "none sent yet"
        count = round(self.per_minute)
        return f"{count:,} message{'' if count == 1 else 's'} a minute"


@dataclass
class CampaignAnalytics:
    campaign: Campaign
    status_label: str
    counters: dict[str, int]
    steps: list[Step]
    timing: Timing
    failures: list[FailureReason] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.campaign.status in LIVE

    @property
    def delivery_rate(self) -> float | None:
        return rate(self.counters["delivered"], self.counters["sent"])

    @property
    def read_rate(self) -> float | None:
        return rate(self.counters["read"], self.counters["sent"])

    @property
    def reply_rate(self) -> float | None:
        return rate(self.counters["replied"], self.counters["sent"])

    @property
    def failure_rate(self) -> float | None:
        return rate(self.counters["failed"], self.attempted)

    @property
    def attempted(self) -> int:
        """Messages that were tried: sent or failed (as on the dashboard)."""
        return self.counters["sent"] + self.counters["failed"]

    def as_chart(self) -> dict:
        return {"kind": "funnel", "labels": [step.label for step in self.steps],
                "datasets": [{"key": "funnel", "label": "Recipients", "data": [step.count for step in self.steps],
                              "keys": [step.key for step in self.steps]}]}


def campaign_analytics(campaign_id: int) -> CampaignAnalytics:
    """The funnel, rates, timing and failure reasons of one campaign; NotFound if there is no such campaign."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("That campaign does not exist.")
    counters = message_state.maintained(campaign)
    return CampaignAnalytics(campaign, campaign_state.LABELS.get(campaign.status, campaign.status), counters,
                             funnel(counters), timing(campaign, counters),
                             failure_reasons(campaign.id) if counters["failed"] else [])


def funnel(counters: dict[str, int]) -> list[Step]:
    targeted, steps, previous = counters["targeted"], [], None
    for key, label in FUNNEL:
        count = counters[key]
        of_previous = None if previous is None else rate(count, previous)
        steps.append(Step(key, label, count, rate(count, targeted), of_previous))
        previous = count
    steps += [Step(key, label, counters[key], rate(counters[key], targeted), None) for key, label in ASIDE]
    return steps


def timing(campaign: Campaign, counters: dict[str, int]) -> Timing:
    if campaign.started_at is None:
        return Timing(None, None, None, None)
    end = campaign.finished_at or utcnow()
    seconds = max(0.0, (end - campaign.started_at).total_seconds())
    handled = counters["sent"] + counters["failed"]
    return Timing(campaign.started_at, campaign.finished_at, seconds, handled * 60 / seconds if seconds else None)


def failure_reasons(campaign_id: int) -> list[FailureReason]:
    """Failed recipients grouped by error code, most common first, each with our plain-language explanation."""
    recipients = func.count().label("recipients")
    rows = db.session.execute(
        select(Message.error_code, func.max(Message.error_title), func.max(Message.error_detail), recipients)
        .where(Message.campaign_id == campaign_id, Message.status == MessageStatus.FAILED)
        .group_by(Message.error_code).order_by(recipients.desc(), Message.error_code).limit(FAILURE_GROUPS))
    return [FailureReason(code, *explain(code, title, detail), count) for code, title, detail, count in rows]


def explain(code: int | None, title: str | None, detail: str | None) -> tuple[str, str]:
    """(title, explanation) for a failure: ours for codes we know, else what WhatsApp said."""
    if code in ERROR_TABLE:
        info = ERROR_TABLE[code]
        return info.title, info.explanation
    if code is not None:
        return title or f"Error {code}", detail or classify(code).explanation
    return title or "Not sent", detail or "The message could not be sent."


def duration_text(seconds: float | None) -> str:
    """"2 s", "9 min 0 s", "1 h 5 min"; rounded to the nearest second (int() made 0.9 s "0 s" and 1.9 s "1 s")."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return "under a second"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"
