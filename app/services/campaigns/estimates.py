"""What sending a campaign will take: cost from the price table, time at its rate, and Meta's daily messaging limit.

Shown in the composer's live summary and in the review before launch; nothing here changes anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, exists, func, select

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, Contact, Message
from app.services.admin import settings
from app.services.campaigns import audience
from app.services.sending import rate_limit

LIMIT_WINDOW = timedelta(hours=24)
# Meta's limit counts messages *sent* in the last 24 hours, but sent_at has no index. A message is sent within days
# of being created (retries stop after an hour, deferred recipients wait a day), so bounding created_at too lets
# the index on it do the work and misses nothing that matters for an estimate.
CREATED_BOUND = timedelta(days=7)


@dataclass(frozen=True)
class Estimate:
    eligible: int
    category: str
    price: float  # per message, in rupees
    cost: float
    tier: str  # the messaging-limit tier, e.g. "1000" or "unlimited"
    used_today: int  # different customers we started a conversation with in the last 24 hours
    new_today: int  # eligible recipients not among them: each one uses up a place in the limit
    rate: float  # messages per second this campaign can reach
    seconds: int  # sending time at that rate, quiet hours left out

    @property
    def remaining(self) -> int | None:
        """Customers we may still start a conversation with in the next 24 hours; None without a limit."""
        return max(0, int(self.tier) - self.used_today) if self.tier.isdigit() else None

    @property
    def over_tier(self) -> bool:
        return self.remaining is not None and self.new_today > self.remaining

    @property
    def duration(self) -> str:
        return duration_text(self.seconds)

    @property
    def rate_text(self) -> str:
        return rate_text(self.rate)


def estimate(campaign: Campaign, eligible: int) -> Estimate:
    """Cost at the template category's price, sending time at the campaign's rate, and the messaging-limit check."""
    category = campaign.template.category if campaign.template else "MARKETING"
    price = float(settings.get("price_table").get(category, 0))
    tier = str(settings.get("messaging_limit_tier"))
    used, new = _limit_use(campaign, eligible) if tier.isdigit() and eligible else (0, eligible)
    rate = rate_limit.effective_rate(campaign.max_rate)
    return Estimate(eligible=eligible, category=category, price=price, cost=round(eligible * price, 2), tier=tier,
                    used_today=used, new_today=new, rate=rate, seconds=math.ceil(eligible / rate))


def _recent_business_message():
    """Template messages we sent in the last 24 hours: the ones that open a conversation and count to the limit."""
    now = utcnow()
    return and_(Message.direction == "out", Message.message_type == "template", Message.sent_at >= now - LIMIT_WINDOW,
                Message.created_at >= now - CREATED_BOUND)


def _limit_use(campaign: Campaign, eligible: int) -> tuple[int, int]:
    """(customers messaged in the last 24 hours, eligible recipients not among them)."""
    used = db.session.scalar(select(func.count(func.distinct(Message.contact_id))).where(_recent_business_message()))
    if not used:
        return 0, eligible
    already = exists().where(Message.contact_id == Contact.id, _recent_business_message())
    new = db.session.scalar(select(func.count()).select_from(Contact)
                            .where(audience.eligible_condition(campaign.audience), ~already))
    return used, new


def duration_text(seconds: int) -> str:
    """A sending time people read at a glance: "under a minute", "about 4 min", "about 2 h 10 min"."""
    if seconds < 60:
        return "under a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"about {hours} h {minutes} min" if minutes else f"about {hours} h"
    return f"about {math.ceil(hours / 24)} days"


def rate_text(rate: float) -> str:
    """How a rate reads: "1 message a second", "2.5 messages a second"."""
    return f"{rate:g} message{'' if rate == 1 else 's'} a second"
