"""The review before launch: who gets the campaign and who is skipped (and why), what it costs, how long it takes,
who is inside quiet hours at the start and when they begin (quiet_start), whether it fits the messaging limit, the
message itself for a few recipients, how many would get an empty value, and what still blocks launching."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, not_, or_, select, true

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign, Contact, TemplateStatus
from app.services.admin import account_status, settings
from app.services.campaigns import audience, quiet_start
from app.services.campaigns.audience import AudienceSummary
from app.services.campaigns.estimates import Estimate, estimate
from app.services.campaigns.quiet_start import QuietStart
from app.services.templates import parts, rendering
from app.services.templates.parts import Bubble
from app.services.templates.rendering import clean, is_mapped, template_variables

STATUS_WORDS = {TemplateStatus.PENDING: "still waiting for Meta's approval", TemplateStatus.REJECTED: "rejected",
                TemplateStatus.PAUSED: "paused by Meta", TemplateStatus.DISABLED: "disabled by Meta"}


@dataclass(frozen=True)
class EmptyCounts:
    total: int  # eligible recipients with at least one empty parameter
    by_key: dict[str, int]


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
    quiet: QuietStart | None = None  # recipients inside quiet hours at the start; None when no one is
    quiet_lines: tuple[str, ...] = ()  # what to say about them, on the shop's clock
    starts_text: str | None = None  # "09:00 tomorrow" when no one can get it at the start


    @property
    def skipped_total(self) -> int:
        return sum(reason.count for reason in self.skipped)


def review(campaign: Campaign, summary: AudienceSummary | None = None, start_at: datetime | None = None) -> Review:
    """Everything the review card shows for a draft; `summary` when the caller counted the audience already,
    `start_at` for a scheduled campaign's first start (quiet hours are checked then instead of now)."""
    summary = summary or audience.summary(campaign.audience)
    samples = sample_previews(campaign, limit=1)
    first = samples[0] if samples else None
    skipped, empty = skip_reasons(summary), _skipped_for_empty_values(campaign)
    if empty:
        skipped = sorted([*skipped, SkipReason("would get an empty value, which WhatsApp refuses", empty)],
                         key=lambda reason: -reason.count)
    figures = estimate(campaign, summary.eligible - empty)
    now, quiet = utcnow(), None
    if figures.eligible:
        quiet = quiet_start.outlook(campaign, _recipients(campaign, bool(empty)), start_at or now, figures.rate,
                                    scheduled=start_at is not None)
    return Review(summary=summary, skipped=skipped, estimate=figures,
                  bubble=first.bubble if first else _blank(campaign),
                  recipient=(first.contact.name or first.contact.phone) if first else None,
                  share_link=rendering.share_link(campaign, first.contact if first else None),
                  **_quiet_texts(quiet, now))


def _quiet_texts(quiet: QuietStart | None, now: datetime) -> dict[str, Any]:
    if quiet is None:
        return {}
    zone = settings.get("timezone")
    starts = None if quiet.ready else quiet_start.moment_text(quiet.first_send, now, zone)
    return {"quiet": quiet, "quiet_lines": tuple(quiet_start.sentences(quiet, now, zone)), "starts_text": starts}


def _recipients(campaign: Campaign, skips_empty: bool):
    """The contacts launch would queue a message for: eligible, less those skipped for an empty value."""
    eligible = audience.eligible_condition(campaign.audience)
    conditions = _empty_conditions(campaign) if skips_empty else {}
    return and_(eligible, not_(or_(*conditions.values()))) if conditions else eligible


def _skipped_for_empty_values(campaign: Campaign) -> int:
    """Recipients a campaign launched anyway will skip at send time (prepare.no_value_reason)."""
    if not campaign.accept_fallbacks or campaign.template is None:
        return 0
    return empty_counts(campaign).total


def skip_reasons(summary: AudienceSummary) -> list[SkipReason]:
    """Why matching contacts will not get it, as launch records them (deleted contacts never match at all)."""
    return [SkipReason("opted out of messages", summary.opted_out)] if summary.opted_out else []


def _blank(campaign: Campaign) -> Bubble | None:
    if campaign.template is None:
        return None
    return parts.bubble(rendering.template_parts(campaign.template))


def empty_counts(campaign: Campaign) -> EmptyCounts:
    """How many eligible recipients would get each variable empty (after fallbacks), in one query."""
    conditions = _empty_conditions(campaign)
    if not conditions:
        return EmptyCounts(0, {})
    counts = db.session.execute(
        select(func.count().filter(or_(*conditions.values())),
               *[func.count().filter(condition) for condition in conditions.values()])
        .select_from(Contact).where(audience.eligible_condition(campaign.audience))).one()
    return EmptyCounts(total=counts[0], by_key={key: count for key, count in zip(conditions, counts[1:], strict=True)
                                                if count})


def _empty_conditions(campaign: Campaign) -> dict[str, Any]:
    if campaign.template is None:
        return {}
    mapping = campaign.variables or {}
    conditions = {variable.key: _empty_condition(mapping.get(variable.key))
                  for variable in template_variables(campaign.template) if is_mapped(mapping.get(variable.key))}
    return {key: condition for key, condition in conditions.items() if condition is not None}


def _empty_condition(mapping: Mapping[str, Any]):
    """SQL for "this contact's value would be empty", or None when it never can be."""
    if clean(mapping.get("fallback")):
        return None
    source = mapping["source"]
    if source == "name":
        return audience.name_is_empty()
    if source == "attribute":
        return audience.attribute_is_empty(clean(mapping.get("value")))
    if source == "literal" and not clean(mapping.get("value")):
        return true()
    return None


@dataclass(frozen=True)
class SamplePreview:
    contact: Contact
    bubble: Bubble
    empty: list[str]


def sample_previews(campaign: Campaign, limit: int = 3) -> list[SamplePreview]:
    """The message as a few real recipients would get it; one of them lacks a value, if anyone does."""
    if campaign.template is None:
        return []
    contacts = audience.sample(campaign.audience, limit)
    conditions = _empty_conditions(campaign)
    if conditions and len(contacts) == limit:
        lacking = audience.sample(campaign.audience, 1, extra=or_(*conditions.values()))
        if lacking and lacking[0] not in contacts:
            contacts[-1] = lacking[0]
    return [SamplePreview(contact, *rendering.bubble_for(campaign, contact)) for contact in contacts]


def launch_problems(campaign: Campaign, counts: AudienceSummary | None = None,
                    empty: EmptyCounts | None = None) -> list[str]:
    """Sentences saying what blocks launching this campaign; empty when it may go.

    The composer passes the counts it already has, so a live preview does not count the audience twice.
    """
    problems = _template_problems(campaign)
    blocked = account_status.launch_problem()
    if blocked:
        problems.insert(0, blocked)
    if not campaign.phone_number_id:
        problems.append("WhatsApp is not set up: no sender phone number id is configured.")
    counts = counts or audience.summary(campaign.audience)
    if counts.matching == 0:
        problems.append("No contacts match this audience.")
    elif counts.eligible == 0:
        problems.append("Everyone in this audience has opted out, so no one would receive it.")
    if campaign.template is not None:
        problems.extend(_mapping_problems(campaign, empty))
    return problems


def _template_problems(campaign: Campaign) -> list[str]:
    template = campaign.template
    if template is None:
        return ["Choose a message template."]
    if template.status != TemplateStatus.APPROVED:
        state = STATUS_WORDS.get(template.status, template.status.lower())
        return [f"The template “{template.name}” is {state}; choose an approved template."]
    return []


def _mapping_problems(campaign: Campaign, empty: EmptyCounts | None) -> list[str]:
    found = template_variables(campaign.template)
    mapping = campaign.variables or {}
    unmapped = [variable.label for variable in found if not is_mapped(mapping.get(variable.key))]
    if unmapped:
        return [f"Choose what fills {', '.join(unmapped)}."]
    if campaign.accept_fallbacks:
        return []
    total = (empty or empty_counts(campaign)).total
    if total:
        people = "recipient" if total == 1 else "recipients"
        return [f"{total:,} {people} would get an empty value, which WhatsApp refuses; add a fallback, or choose to "
                "launch anyway and skip them."]
    return []
