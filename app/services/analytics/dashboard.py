"""The home dashboard: headline numbers, delivery rates and a time series, from maintained data only.

Polled every few seconds, so nothing here scans the message table: rates and the chart come from
HourlyMessageStats, campaign progress from the campaigns' counters, contact totals from indexed counts
(the full total is cached for a minute, since counting a million contacts every five seconds buys nothing).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry
from sqlalchemy import func, select

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, CampaignStatus, Contact, HourlyMessageStats
from app.queues import QUEUE_NAMES, redis_connection
from app.services.admin import health, settings
from app.services.admin.health import Health
from app.services.campaigns import campaign_state, page
from app.services.campaigns.page import Progress

C = CampaignStatus
SERIES = ("sent", "delivered", "read", "failed")
TOTALS = (*SERIES, "replied")
CONTACT_TOTAL_KEY = "broadcaster:analytics:contact-total"
CONTACT_TOTAL_SECONDS = 60
RUNNING_SHOWN = 10


@dataclass(frozen=True)
class Period:
    key: str
    label: str
    days: int  # calendar days in the business's timezone, today included
    step: str  # "hour" or "day": the chart's resolution


PERIODS = {period.key: period for period in (
    Period("today", "Today", 1, "hour"),
    Period("7d", "7 days", 7, "day"),
    Period("30d", "30 days", 30, "day"),
    Period("90d", "90 days", 90, "day"),
)}
DEFAULT_PERIOD = "7d"


def period(key: str | None) -> Period:
    """The period with this key ("today", "7d" …), or the default one for anything else."""
    return PERIODS.get((key or "").strip(), PERIODS[DEFAULT_PERIOD])


def rate(part: int, whole: int) -> float | None:
    """A share in percent (at most 100), or None when there is nothing to divide by."""
    return min(100.0, part * 100 / whole) if whole else None


@dataclass(frozen=True)
class Rates:
    """What happened in a period; rates are shares of the messages sent (failures: of those attempted)."""

    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    replied: int = 0

    @property
    def delivery(self) -> float | None:
        return rate(self.delivered, self.sent)

    @property
    def reading(self) -> float | None:
        return rate(self.read, self.sent)

    @property
    def failure(self) -> float | None:
        return rate(self.failed, self.sent + self.failed)

    @property
    def reply(self) -> float | None:
        return rate(self.replied, self.sent)


@dataclass
class Series:
    """The chart's points: one label per hour or day, one list of counts per status."""

    step: str
    labels: list[str]
    values: dict[str, list[int]]

    def rows(self) -> list[tuple[str, list[int]]]:
        return [(label, [self.values[name][index] for name in SERIES]) for index, label in enumerate(self.labels)]

    def as_chart(self) -> dict:
        return {"kind": "series", "labels": self.labels,
                "datasets": [{"key": name, "label": name.title(), "data": self.values[name]} for name in SERIES]}


@dataclass(frozen=True)
class ContactTotals:
    total: int
    opted_out_this_week: int


@dataclass(frozen=True)
class RunningCampaign:
    campaign: Campaign
    status_label: str
    progress: Progress


@dataclass
class QueueHealth:
    health: Health
    failed_jobs: int | None  # None when Redis cannot be reached


@dataclass
class Dashboard:
    period: Period
    contacts: ContactTotals
    campaigns_running: int
    campaigns_scheduled: int
    messages_today: int
    rates: Rates
    series: Series
    running: list[RunningCampaign] = field(default_factory=list)
    queue: QueueHealth | None = None


def dashboard(period: Period, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard shows for a period ending now."""
    now = now or utcnow()
    zone = ZoneInfo(settings.get("timezone"))
    start, midnight = period_start(period, now, zone), period_start(PERIODS["today"], now, zone)
    hours = _hourly(start)
    today = sum(counts["sent"] for hour, counts in hours.items() if hour >= midnight)
    by_status = _campaign_counts()
    return Dashboard(
        period=period, contacts=contact_totals(now), campaigns_running=by_status[C.RUNNING],
        campaigns_scheduled=by_status[C.SCHEDULED], messages_today=today,
        rates=Rates(**{name: sum(counts[name] for counts in hours.values()) for name in TOTALS}),
        series=series(period, hours, start, now, zone), running=running_campaigns(), queue=queue_health())


def period_start(period: Period, now: datetime, zone: ZoneInfo) -> datetime:
    """The first hour bucket of the period: local midnight `days - 1` days ago, floored to a UTC hour
    (in half-hour timezones the first bucket starts 30 minutes before midnight)."""
    first_day = now.astimezone(zone).date() - timedelta(days=period.days - 1)
    midnight = datetime.combine(first_day, time.min, zone).astimezone(UTC)
    return midnight.replace(minute=0, second=0, microsecond=0)


def _hourly(start: datetime) -> dict[datetime, Counter]:
    """The stats rows of the period (at most 24 × 90 of them), read by primary key range."""
    columns = [getattr(HourlyMessageStats, name) for name in TOTALS]
    rows = db.session.execute(select(HourlyMessageStats.hour, *columns).where(HourlyMessageStats.hour >= start))
    return {hour: Counter(dict(zip(TOTALS, counts, strict=True))) for hour, *counts in rows}


def series(period: Period, hours: dict[datetime, Counter], start: datetime, now: datetime, zone: ZoneInfo) -> Series:
    """Counts per hour (short periods) or per local day (long ones), with empty buckets as zeros."""
    if period.step == "hour":
        buckets = _hour_buckets(start, now)
        labels = [bucket.astimezone(zone).strftime("%H:%M") for bucket in buckets]
        values = {name: [hours.get(bucket, Counter())[name] for bucket in buckets] for name in SERIES}
        return Series("hour", labels, values)
    days = _day_buckets(start, now, zone)
    per_day: dict[date, Counter] = {day: Counter() for day in days}
    for hour, counts in hours.items():
        # The first bucket may start before local midnight (half-hour timezones): it counts for the first day.
        per_day[max(hour.astimezone(zone).date(), days[0])].update(counts)
    return Series("day", [day.strftime("%a %d %b" if period.days <= 7 else "%d %b") for day in days],
                  {name: [per_day[day][name] for day in days] for name in SERIES})


def _hour_buckets(start: datetime, now: datetime) -> list[datetime]:
    count = int((now - start).total_seconds() // 3600) + 1
    return [start + timedelta(hours=number) for number in range(count)]


def _day_buckets(start: datetime, now: datetime, zone: ZoneInfo) -> list[date]:
    first, last = (start + timedelta(hours=1)).astimezone(zone).date(), now.astimezone(zone).date()
    return [first + timedelta(days=number) for number in range((last - first).days + 1)]


def contact_totals(now: datetime) -> ContactTotals:
    """Contacts not deleted (cached briefly) and opt-outs in the last seven days (an index range)."""
    week = select(func.count()).select_from(Contact).where(
        Contact.opted_out_at >= now - timedelta(days=7), Contact.deleted_at.is_(None))
    return ContactTotals(_cached_contact_total(), db.session.scalar(week))


def _cached_contact_total() -> int:
    try:
        cached = redis_connection().get(CONTACT_TOTAL_KEY)
    except RedisError:
        return _count_contacts()
    if cached is not None:
        return int(cached)
    total = _count_contacts()
    try:
        redis_connection().set(CONTACT_TOTAL_KEY, total, ex=CONTACT_TOTAL_SECONDS)
    except RedisError:
        pass
    return total


def _count_contacts() -> int:
    return db.session.scalar(select(func.count()).select_from(Contact).where(Contact.deleted_at.is_(None)))


def _campaign_counts() -> Counter:
    rows = db.session.execute(select(Campaign.status, func.count()).where(
        Campaign.status.in_([C.RUNNING, C.SCHEDULED])).group_by(Campaign.status))
    return Counter(dict(rows.all()))


def running_campaigns() -> list[RunningCampaign]:
    """Campaigns sending or paused mid-send, oldest start first, with progress from their counters."""
    campaigns = db.session.scalars(select(Campaign).where(Campaign.status.in_([C.RUNNING, C.PAUSED]))
                                   .order_by(Campaign.started_at, Campaign.id).limit(RUNNING_SHOWN))
    return [RunningCampaign(campaign, campaign_state.LABELS.get(campaign.status, campaign.status),
                            page.progress(campaign, _counters(campaign))) for campaign in campaigns]


def _counters(campaign: Campaign) -> dict[str, int]:
    return {name: getattr(campaign, name) or 0 for name in ("targeted", "sent", "failed", "skipped")}


def queue_health() -> QueueHealth:
    """Database and Redis reachability, workers and queue depths, plus jobs that failed and wait for staff."""
    report = health.check()
    if report.redis != "ok":
        return QueueHealth(report, None)
    try:
        failed = sum(FailedJobRegistry(name, connection=redis_connection()).count for name in QUEUE_NAMES)
    except RedisError:
        failed = None
    return QueueHealth(report, failed)
