"""A campaign's schedule: now, once at a time, or repeating (daily, weekly or a cron expression).

`validate` turns the composer's `ScheduleChoice` into the campaign's schedule columns, and `choice_for` turns a
saved campaign's columns back into the choice the composer shows. Daily and weekly are shortcuts: they are stored
as the cron expression they stand for (schedule_kind "cron"), and a saved expression of that shape is shown as the
shortcut again. A repeating campaign may have an end date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from croniter import croniter

from app.clock import utcnow
from app.services.admin import settings

SCHEDULE_KINDS = ("now", "at", "cron")
REPEATS = ("daily", "weekly", "cron")
# Cron counts weekdays from Sunday = 0; the form lists them from Monday, as shops in India plan their week.
WEEKDAYS = [("1", "Monday"), ("2", "Tuesday"), ("3", "Wednesday"), ("4", "Thursday"), ("5", "Friday"),
            ("6", "Saturday"), ("0", "Sunday")]
SHORTCUT = re.compile(r"^(\d{1,2}) (\d{1,2}) \* \* (\*|[0-6])$")
MIN_CRON_GAP = timedelta(hours=1)
END_OF_DAY = time(23, 59)


@dataclass(frozen=True)
class ScheduleChoice:
    """When the composer says to send, as typed. `validate` reports problems under these attribute names."""

    kind: str = "now"  # one of SCHEDULE_KINDS
    timezone: str = ""  # empty: the shop's timezone
    scheduled_at: str = ""  # for "at": local date and time, YYYY-MM-DDTHH:MM
    repeat: str = "cron"  # for "cron": one of REPEATS
    repeat_time: str = ""  # for daily and weekly: HH:MM
    repeat_weekday: str = "1"  # for weekly: cron's weekday number, Sunday = 0
    cron: str = ""  # for a custom repeat
    ends_on: str = ""  # for a repeat: the last day, YYYY-MM-DD; empty: until stopped


def validate(choice: ScheduleChoice, errors: dict[str, str]) -> dict[str, Any]:
    """Campaign schedule columns for the choice; problems go into `errors` under the attribute they belong to."""
    kind = choice.kind if choice.kind in SCHEDULE_KINDS else "now"
    zone = settings.get("timezone")
    values: dict[str, Any] = {"schedule_kind": kind, "scheduled_at": None, "cron": None, "ends_at": None,
                              "timezone": zone}
    if kind == "now":
        return values
    values["timezone"] = _timezone(choice.timezone or zone, errors)
    if kind == "at":
        values["scheduled_at"] = _future_time(choice.scheduled_at, values["timezone"], errors)
        return values
    values["cron"] = _repeat_cron(choice, errors)
    if values["cron"] and "cron" not in errors and "repeat_time" not in errors:
        _check_gap(values["cron"], values["timezone"], errors)
        values["ends_at"] = _end(choice.ends_on, values["cron"], values["timezone"], errors)
    return values


def _timezone(raw: str, errors: dict[str, str]) -> str:
    if raw not in available_timezones():
        errors["timezone"] = "Choose a timezone from the list, such as Asia/Kolkata."
        return settings.get("timezone")
    return raw


def _future_time(raw: str, zone: str, errors: dict[str, str]) -> datetime | None:
    try:
        local = datetime.fromisoformat(raw.strip())
    except ValueError:
        errors["scheduled_at"] = "Choose the date and time to send."
        return None
    when = local.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    if when <= utcnow() + timedelta(minutes=1):
        errors["scheduled_at"] = "That time has already passed; choose a time in the future."
    return when


def _repeat_cron(choice: ScheduleChoice, errors: dict[str, str]) -> str | None:
    if choice.repeat not in ("daily", "weekly"):
        return _cron(choice.cron, errors)
    match = settings.TIME.match(choice.repeat_time.strip())
    if not match:
        errors["repeat_time"] = "Give the time to send as HH:MM, e.g. 10:00."
        return None
    weekday = choice.repeat_weekday if choice.repeat == "weekly" else "*"
    if weekday not in {number for number, _ in WEEKDAYS} | {"*"}:
        errors["repeat_time"] = "Choose the day of the week."
        return None
    return f"{int(match.group(2))} {int(match.group(1))} * * {weekday}"


def _cron(raw: str, errors: dict[str, str]) -> str | None:
    cron = " ".join(raw.split())
    if len(cron.split(" ")) != 5 or not croniter.is_valid(cron):
        errors["cron"] = "Enter five fields: minute hour day month weekday, e.g. “0 10 * * 1” for Mondays at 10:00."
    return cron or None


def _check_gap(cron: str, zone: str, errors: dict[str, str]) -> None:
    first, second = next_runs(cron, zone, 2)
    if second - first < MIN_CRON_GAP:
        errors["cron"] = "A recurring campaign can run at most once an hour."


def _end(raw: str, cron: str, zone: str, errors: dict[str, str]) -> datetime | None:
    """The end of the chosen day in the campaign's timezone: no run starts after it."""
    if not raw.strip():
        return None
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        errors["ends_on"] = "Choose the last day as a date, or leave it empty to repeat until you stop it."
        return None
    ends_at = datetime.combine(day, END_OF_DAY, ZoneInfo(zone)).astimezone(UTC)
    first = next_runs(cron, zone, 1)[0]
    if ends_at <= utcnow():
        errors["ends_on"] = "That end date has already passed; choose a later date or leave it empty."
    elif ends_at < first:
        errors["ends_on"] = (f"The first run is on {first:%d %b %Y at %H:%M}, after this end date; "
                             "choose a later end date.")
    return ends_at


def next_runs(cron: str, zone: str, count: int = 3) -> list[datetime]:
    """The next times a cron expression fires, in its timezone."""
    runs = croniter(cron, datetime.now(ZoneInfo(zone)))
    return [runs.get_next(datetime) for _ in range(count)]


def choice_for(campaign) -> ScheduleChoice:
    """A saved campaign's schedule as the composer shows it, a daily or weekly cron as that shortcut."""
    shortcut = _shortcut(campaign.cron)
    at, weekday = shortcut or ("10:00", "*")
    repeat = "cron" if campaign.cron and shortcut is None else ("daily" if weekday == "*" else "weekly")
    return ScheduleChoice(kind=campaign.schedule_kind, timezone=campaign.timezone,
                          scheduled_at=_local_input(campaign.scheduled_at, campaign.timezone),
                          cron=campaign.cron or "", repeat=repeat, repeat_time=at,
                          repeat_weekday=weekday if weekday != "*" else "1",
                          ends_on=_local_date(campaign.ends_at, campaign.timezone))


def _shortcut(cron: str | None) -> tuple[str, str] | None:
    """("HH:MM", weekday or "*") when the cron is one the daily or weekly shortcut makes; else None."""
    match = SHORTCUT.match(cron or "")
    if not match or int(match.group(1)) > 59 or int(match.group(2)) > 23:
        return None
    minute, hour, weekday = match.groups()
    return f"{int(hour):02d}:{int(minute):02d}", weekday


def _local_input(when: datetime | None, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M") if when else ""


def _local_date(when: datetime | None, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d") if when else ""


def describe(cron: str | None) -> str | None:
    """"Daily at 10:00" or "Weekly on Monday at 10:00" for a shortcut's cron; None for any other expression."""
    shortcut = _shortcut(cron)
    if shortcut is None:
        return None
    at, weekday = shortcut
    return f"Daily at {at}" if weekday == "*" else f"Weekly on {dict(WEEKDAYS)[weekday]} at {at}"
