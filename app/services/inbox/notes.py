"""One line, as a person would say it, for a message the thread shows as a note instead of a bubble: an outgoing
message that was never sent (skipped or cancelled), with the reason the send path recorded."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo

from app.clock import utcnow
from app.models import CampaignStatus, Message, MessageStatus
from app.services.admin import settings

NOT_SENT = frozenset({MessageStatus.SKIPPED, MessageStatus.CANCELLED})
_OPTED_OUT = re.compile(r"Opted out of messages on (\d{4})-(\d{2})-(\d{2})")
# The reasons the send path writes (campaigns.prepare, campaigns.lifecycle, sending.direct), said shorter.
_REASONS = (
    (re.compile(r"(The contact|Contact) was deleted"), "the contact was deleted"),
    (re.compile(r"The customer opted back in"), "they opted back in before it went out"),
    (re.compile(r"No value for (.+)"), "no value for {0}"),
)


def not_sent(message: Message) -> str | None:
    """The note for an outgoing message that never went out (Not sent: opted out on 8 Dec); None for any other."""
    if message.direction != "out" or message.status not in NOT_SENT:
        return None
    return f"Not sent: {_reason(message)}"


def _reason(message: Message) -> str:
    reason = (message.skip_reason or "").strip()
    if found := _OPTED_OUT.match(reason):
        return f"opted out on {_day(_opt_out_day(message, date(*map(int, found.groups()))))}"
    for pattern, said in _REASONS:
        if found := pattern.match(reason):
            return said.format(*found.groups())
    if reason:
        return reason[:1].lower() + reason[1:].rstrip(".")
    if message.status == MessageStatus.CANCELLED:
        cancelled = message.campaign is not None and message.campaign.status == CampaignStatus.CANCELLED
        return "the campaign was cancelled" if cancelled else "cancelled before it went out"
    return "skipped"


def _opt_out_day(message: Message, utc_day: date) -> date:
    """The reason carries the UTC date; the shop's own date when the contact's opt-out is still that one."""
    opted_out_at = message.contact.opted_out_at if message.contact is not None else None
    if opted_out_at is None or opted_out_at.date() != utc_day:
        return utc_day
    return opted_out_at.astimezone(ZoneInfo(settings.get("timezone"))).date()


def _day(day: date) -> str:
    # A no-break space keeps "8 Dec" together when the note wraps on a phone.
    return f"{day.day}\u00a0{day:%b}" + ("" if day.year == utcnow().year else f"\u00a0{day.year}")
