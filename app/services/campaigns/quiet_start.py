"""Quiet hours in the review before launch: how many recipients are inside their quiet hours when the campaign would
start (now, or its scheduled start), when the rest begin, and when sending should be done.

It reads quiet hours exactly as the batches apply them (batches.quiet_window, batches.window_end, each recipient in
the timezone of their number, the campaign's when unknown) and follows the engine's way of sending: at the campaign's
rate to whoever is outside quiet hours, the others joining as their windows open. Nothing here changes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select

from app.extensions import db
from app.models import Campaign, Contact
from app.services.campaigns import batches
from app.services.campaigns.estimates import duration_text

MAX_STEPS = 1000  # each step sends until a window opens or closes somewhere: a few a day per timezone


@dataclass(frozen=True)
class Wave:
    """Recipients whose quiet hours end at the same moment."""

    opens_at: datetime
    count: int


@dataclass(frozen=True)
class QuietStart:
    """Who is inside quiet hours when the campaign would start, and when sending starts and ends."""

    start_at: datetime  # when the campaign would start: now, or its scheduled start
    scheduled: bool  # start_at is the scheduled start, not now
    window: tuple[time, time]
    ready: int  # recipients outside their quiet hours at start_at
    waves: list[Wave]  # the others, by when their window opens, earliest first
    first_send: datetime
    finish: datetime
    sending_seconds: int  # time spent sending at the rate, gaps for quiet hours left out

    @property
    def held(self) -> int:
        return sum(wave.count for wave in self.waves)

    @property
    def total(self) -> int:
        return self.ready + self.held

    @property
    def window_text(self) -> str:
        return f"{self.window[0]:%H:%M}–{self.window[1]:%H:%M}"

    @property
    def without_gaps(self) -> bool:
        """Sending runs in one go once it starts: no window closes on recipients still waiting."""
        return (self.finish - self.first_send).total_seconds() <= self.sending_seconds + 1


def outlook(campaign: Campaign, recipients: ColumnElement[bool], start_at: datetime, rate: float,
            scheduled: bool = False) -> QuietStart | None:
    """Quiet hours at the start for the contacts `recipients` selects; None when the campaign has no quiet hours or
    no recipient is inside them at the start (then the plain estimate holds)."""
    window = batches.quiet_window(campaign)
    if window is None:
        return None
    counts = _by_zone(campaign, recipients)
    ready = sum(count for zone, count in counts.items() if batches.window_end(window, zone, start_at) is None)
    if ready == sum(counts.values()):
        return None
    first_send, finish = _simulate(window, dict(counts), start_at, rate)
    return QuietStart(start_at, scheduled, window, ready, _waves(window, counts, start_at), first_send, finish,
                      math.ceil(sum(counts.values()) / rate))


def _by_zone(campaign: Campaign, recipients: ColumnElement[bool]) -> dict[str, int]:
    """Recipients per timezone, as launch copies it onto their messages (the campaign's when the number has none)."""
    rows = db.session.execute(select(Contact.timezone, func.count()).where(recipients).group_by(Contact.timezone))
    counts: dict[str, int] = {}
    for zone, count in rows:
        name = zone or batches.campaign_zone(campaign)
        counts[name] = counts.get(name, 0) + count
    return counts


def _waves(window: tuple[time, time], counts: dict[str, int], start_at: datetime) -> list[Wave]:
    opening: dict[datetime, int] = {}
    for zone, count in counts.items():
        opens_at = batches.window_end(window, zone, start_at)
        if opens_at is not None:
            moment = opens_at.astimezone(ZoneInfo("UTC"))
            opening[moment] = opening.get(moment, 0) + count
    return [Wave(moment, count) for moment, count in sorted(opening.items())]


def _simulate(window: tuple[time, time], left: dict[str, float], at: datetime,
              rate: float) -> tuple[datetime, datetime]:
    """(first send, last send) sending at `rate` to recipients outside quiet hours, spread over their timezones
    as a claim in contact order spreads them; a window closing mid-way holds the rest of its zone until morning."""
    first: datetime | None = None
    for _ in range(MAX_STEPS):
        left = {zone: count for zone, count in left.items() if count > 1e-9}
        if not left:
            break
        open_now = {zone: count for zone, count in left.items() if batches.window_end(window, zone, at) is None}
        if not open_now:
            at = min(batches.window_end(window, zone, at) for zone in left)
            continue
        first = first or at
        change = min(_next_change(window, zone, at) for zone in left)
        waiting, room = sum(open_now.values()), (change - at).total_seconds() * rate
        if waiting <= room:
            at = at + timedelta(seconds=waiting / rate)
            left = {zone: count for zone, count in left.items() if zone not in open_now}
        else:
            at, left = change, {zone: count * (1 - room / waiting) if zone in open_now else count
                                for zone, count in left.items()}
    return first or at, at


def _next_change(window: tuple[time, time], zone: str, at: datetime) -> datetime:
    """When this timezone next goes in or out of quiet hours after `at`."""
    ends = batches.window_end(window, zone, at)
    if ends is not None:
        return ends
    local = at.astimezone(ZoneInfo(zone))
    begins = datetime.combine(local.date(), window[0], tzinfo=local.tzinfo)
    return begins if begins > local else begins + timedelta(days=1)


def sentences(quiet: QuietStart, now: datetime, shop_zone: str) -> list[str]:
    """What the review says about quiet hours, with times on the shop's clock: "today", "tomorrow" or a date."""
    def moment(when: datetime) -> str:
        return moment_text(when, now, shop_zone)

    when = f"At the scheduled start ({moment(quiet.start_at)})," if quiet.scheduled else "Right now,"
    inside = f"inside quiet hours ({quiet.window_text} in their own time)"
    if not quiet.ready:
        who = "the only recipient is" if quiet.total == 1 else f"all {quiet.total:,} recipients are"
        lines = [f"{when} {who} {inside}, so sending starts at {moment(quiet.first_send)}"]
    else:
        people = "recipients is" if quiet.held == 1 else "recipients are"  # "1 of the 40 recipients is"
        others = "the other one starts" if quiet.held == 1 else f"the other {quiet.held:,} start"
        lines = [f"{when} {quiet.held:,} of the {quiet.total:,} {people} {inside}. {quiet.ready:,} can go "
                 f"{'then' if quiet.scheduled else 'now'}; {others} {_waves_text(quiet.waves, moment)}"]
    if quiet.without_gaps and not quiet.ready:
        lines[0] += f" and takes {duration_text(quiet.sending_seconds)}."
    else:
        lines[0] += "."
        lines.append(f"Sending should be done around {moment(quiet.finish)}.")
    return lines


def _waves_text(waves: list[Wave], moment) -> str:
    if len(waves) == 1:
        return f"at {moment(waves[0].opens_at)}"
    each = ", ".join(f"{wave.count:,} at {moment(wave.opens_at)}" for wave in waves)
    return f"as their quiet hours end ({each})"


def moment_text(when: datetime, now: datetime, zone: str) -> str:
    """"09:00 tomorrow", "23:30 today" or "09:00 on 12 Dec", on the clock of `zone`."""
    local, today = when.astimezone(ZoneInfo(zone)), now.astimezone(ZoneInfo(zone)).date()
    days = (local.date() - today).days
    day = {0: "today", 1: "tomorrow"}.get(days, f"on {local:%d %b}")
    return f"{local:%H:%M} {day}"
