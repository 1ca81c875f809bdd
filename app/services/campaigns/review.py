"""The review before launch: who gets the campaign and who is skipped (and why), what it costs, how long it takes,
whether it fits the messaging limit, and the message itself for the first recipient."""

from __future__ import annotations

from dataclasses import dataclass

from app.models import Campaign
from app.services.campaigns import audience
from app.services.campaigns.audience import AudienceSummary
from app.services.campaigns.estimates import Estimate, estimate
from app.services.templates import parts, rendering
from app.services.templates.parts import Bubble


@dataclass(frozen=True)
class SkipReason:
    reason: str
    count: int


@dataclass(frozen=True)
class Review:
    summary: AudienceSummary
    skipped: list[SkipReason]  # only reasons that apply, largest first
    estimate: Estimate
    bubble: Bubble | None  # the message for the first recipient, or the template when no one matches
    recipient: str | None  # whom the bubble shows it for
    share_link: str | None

    @property
    def skipped_total(self) -> int:
        return sum(reason.count for reason in self.skipped)


def review(campaign: Campaign, summary: AudienceSummary | None = None) -> Review:
    """Everything the review card shows for a draft; `summary` when the caller counted the audience already."""
    summary = summary or audience.summary(campaign.audience)
    samples = rendering.sample_previews(campaign, limit=1)
    first = samples[0] if samples else None
    return Review(summary=summary, skipped=skip_reasons(summary), estimate=estimate(campaign, summary.eligible),
                  bubble=first.bubble if first else _blank(campaign),
                  recipient=(first.contact.name or first.contact.phone) if first else None,
                  share_link=rendering.share_link(campaign, first.contact if first else None))


def skip_reasons(summary: AudienceSummary) -> list[SkipReason]:
    """Why matching contacts will not get it, as launch records them (deleted contacts never match at all)."""
    return [SkipReason("opted out of messages", summary.opted_out)] if summary.opted_out else []


def _blank(campaign: Campaign) -> Bubble | None:
    if campaign.template is None:
        return None
    return parts.bubble(rendering.template_parts(campaign.template))
