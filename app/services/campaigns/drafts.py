"""Campaign drafts: validating the composer's `CampaignDraft`, saving, copying and deleting drafts, the options
the composer offers, and its live summary (counts, cost, previews).

The composer's form is read into a `CampaignDraft` by app/blueprints/campaign_forms.py; a saved campaign goes back
to the composer through `draft_for`. The schedule is checked in schedule.py, the audience in audience.py, cost and
sending time are estimated in estimates.py; launching, scheduling, pausing and cancelling live in lifecycle.py.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.models import Campaign, CampaignStatus, MessageTemplate, TemplateStatus
from app.services.admin import audit, settings
from app.services.campaigns import audience, review
from app.services.campaigns import schedule as schedule_rules
from app.services.campaigns.audience import AudienceChoice
from app.services.campaigns.estimates import Estimate, estimate
from app.services.campaigns.schedule import ScheduleChoice
from app.services.contacts import tags
from app.services.errors import NotFound, ServiceError
from app.services.sending import rate_limit
from app.services.sending.sender_number import SenderNumber, sender_number
from app.services.templates import library as templates_service
from app.services.templates import parts as template_parts
from app.services.templates import rendering
from app.services.templates.parts import MEDIA_KEY, Bubble, TemplateVariable
from app.services.templates.rendering import SOURCES, clean, template_variables

URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
MAX_VALUE = 1000  # characters in a fixed text or fallback; the whole message may have at most 1,024
MIN_SENDING_MINUTES = 60  # quiet hours must leave at least this much sending time a day
# What a copy takes over: the message, audience, schedule and limits; never the status, counters or history.
DUPLICATED = ("template_id", "phone_number_id", "audience", "variables", "accept_fallbacks", "schedule_kind",
              "scheduled_at", "cron", "ends_at", "timezone", "max_rate", "quiet_hours_start", "quiet_hours_end")
NAME_SOURCES = {"name", "first_name", "customer_name", "full_name", "customer"}


@dataclass(frozen=True)
class VariableChoice:
    """What fills one template variable, as chosen in the composer."""

    source: str = ""  # one of rendering.SOURCES; anything else (such as ""): not chosen yet
    value: str = ""  # the contact field for "attribute", the text for "literal"
    fallback: str = ""  # sent when the contact has no value


@dataclass(frozen=True)
class CampaignDraft:
    """The composer's fields, as typed. Problems are reported under these attribute names, except "template" (for
    template_id), "variables.<key>" (one variable), "quiet_hours" (both times) and the schedule's own names."""

    name: str = ""
    template_id: int | None = None
    audience: AudienceChoice = AudienceChoice()
    variables: Mapping[str, VariableChoice] = field(default_factory=dict)  # by variable key, e.g. "body.1"
    accept_fallbacks: bool = False  # launch even when some recipients would get a fallback-less empty value
    schedule: ScheduleChoice = ScheduleChoice()
    max_rate: str = ""  # messages per second, as typed; empty: as fast as the number may send
    quiet_hours_start: str = ""  # HH:MM; both empty: send around the clock
    quiet_hours_end: str = ""


class ComposerErrors(ServiceError):
    """The draft broke rules; `errors` maps each CampaignDraft attribute at fault to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("The campaign was not saved: please correct the fields marked below.")
        self.errors = errors


def list_campaigns() -> list[Campaign]:
    """Campaigns staff created (runs of recurring campaigns are shown on their campaign's page)."""
    statement = select(Campaign).where(Campaign.parent_id.is_(None)).order_by(Campaign.id.desc())
    return list(db.session.scalars(statement))


def get_campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("That campaign does not exist.")
    return campaign


def _locked(campaign_id: int) -> Campaign:
    """The row locked until commit (PostgreSQL), so a launch cannot slip in between the check and the save."""
    # of=Campaign: PostgreSQL cannot lock the outer-joined template row that comes with a campaign.
    campaign = db.session.scalars(select(Campaign).where(Campaign.id == campaign_id).with_for_update(of=Campaign)
                                  .execution_options(populate_existing=True)).first()
    if campaign is None:
        raise NotFound("That campaign does not exist.")
    return campaign


def ensure_editable(campaign: Campaign) -> None:
    if campaign.status != CampaignStatus.DRAFT:
        raise ServiceError(f"Only drafts can be edited; this campaign is {campaign.status}.")


def save_draft(campaign_id: int | None, draft: CampaignDraft, user_id: int | None) -> Campaign:
    """Create or update a draft from the composer; ComposerErrors names every field at fault. Commits."""
    campaign = _locked(campaign_id) if campaign_id else Campaign(status=CampaignStatus.DRAFT)
    ensure_editable(campaign)
    values, errors = validate(draft, current_template_id=campaign.template_id)
    if errors:
        raise ComposerErrors(errors)
    for name, value in values.items():
        setattr(campaign, name, value)
    campaign.phone_number_id = current_app.config["WHATSAPP_PHONE_NUMBER_ID"] or ""
    if campaign_id is None:
        campaign.created_by_id = user_id
        db.session.add(campaign)
        db.session.flush()
        audit.record("campaign.create", f"Created campaign draft “{campaign.name}”", target=f"campaign:{campaign.id}")
    db.session.commit()
    return campaign


def duplicate(campaign_id: int, user_id: int | None) -> Campaign:
    """A new draft with the campaign's content and settings, named “Copy of …”. Commits."""
    source = get_campaign(campaign_id)
    draft = Campaign(status=CampaignStatus.DRAFT, name=f"Copy of {source.name}"[:255], created_by_id=user_id,
                     **{name: copy.deepcopy(getattr(source, name)) for name in DUPLICATED})
    db.session.add(draft)
    db.session.flush()
    audit.record("campaign.duplicate", f"Copied campaign “{source.name}” into the draft “{draft.name}”",
                 target=f"campaign:{draft.id}", details={"copied_from": source.id})
    db.session.commit()
    return draft


def delete_draft(campaign_id: int) -> str:
    """Delete a draft for good; returns its name. Sent campaigns are history and cannot be deleted. Commits."""
    campaign = _locked(campaign_id)
    if campaign.status != CampaignStatus.DRAFT:
        raise ServiceError(f"Only drafts can be deleted; a {campaign.status} campaign is kept as history.")
    # A repeating campaign taken back to draft may have runs: they stay, as campaigns of their own.
    db.session.execute(update(Campaign).where(Campaign.parent_id == campaign.id).values(parent_id=None))
    audit.record("campaign.delete", f"Deleted campaign draft “{campaign.name}”", target=f"campaign:{campaign.id}")
    db.session.delete(campaign)
    db.session.commit()
    return campaign.name


def draft_campaign(draft: CampaignDraft) -> tuple[Campaign, dict[str, str]]:
    """An unsaved campaign built from whatever the composer holds, for live counts and previews; and the errors."""
    values, errors = validate(draft)
    campaign = Campaign(status=CampaignStatus.DRAFT, **values)
    campaign.phone_number_id = current_app.config["WHATSAPP_PHONE_NUMBER_ID"] or ""
    return campaign, errors


def validate(draft: CampaignDraft, current_template_id: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Campaign column values for the draft, and {attribute: problem} for everything wrong with it."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"name": draft.name.strip()[:255]}
    if not values["name"]:
        errors["name"] = "Give the campaign a name, e.g. “Diwali offer to VIPs”."
    template = _template(draft.template_id, current_template_id, errors)
    values["template"], values["template_id"] = template, template.id if template else None
    try:
        values["audience"] = audience.build(draft.audience)
    except ServiceError as error:
        values["audience"], errors["audience"] = {}, error.message
    values["variables"] = _variables(template, draft.variables, errors)
    values["accept_fallbacks"] = draft.accept_fallbacks
    values.update(schedule_rules.validate(draft.schedule, errors))
    values.update(_limits(draft, errors))
    return values, errors


def _template(template_id: int | None, current_id: int | None, errors: dict[str, str]) -> MessageTemplate | None:
    template = db.session.get(MessageTemplate, template_id) if template_id else None
    if template_id and template is None:
        errors["template"] = "That template no longer exists; choose another."
    elif template and template.status != TemplateStatus.APPROVED and template.id != current_id:
        errors["template"] = f"“{template.name}” is not approved by Meta; choose an approved template."
    return template


def _variables(template: MessageTemplate | None, choices: Mapping[str, VariableChoice],
               errors: dict[str, str]) -> dict[str, dict[str, str]]:
    mapping: dict[str, dict[str, str]] = {}
    known: list[str] | None = None
    for variable in template_variables(template) if template else []:
        choice = choices.get(variable.key, VariableChoice())
        source = choice.source
        if source not in SOURCES:
            continue
        value = clean(choice.value)
        if source == "attribute" and value:
            known = audience.known_attribute_keys() if known is None else known
            value = audience.as_spelled_on_contacts(value, known)
        fallback = clean(choice.fallback)
        problem = _variable_problem(variable, source, value, fallback)
        if problem:
            errors[f"variables.{variable.key}"] = problem
        mapping[variable.key] = {"source": source, "value": value if source in ("attribute", "literal") else "",
                                 "fallback": fallback}
    return mapping


def _variable_problem(variable: TemplateVariable, source: str, value: str, fallback: str) -> str | None:
    if source == "attribute" and not value:
        return f"Choose the contact field that fills {variable.label}."
    if len(value) > MAX_VALUE or len(fallback) > MAX_VALUE:
        return f"Keep texts under {MAX_VALUE:,} characters."
    if variable.key == MEDIA_KEY and (source != "literal" or (value and not URL.match(value))):
        return "Give a public https:// link to the header file."
    return None


def _limits(draft: CampaignDraft, errors: dict[str, str]) -> dict[str, Any]:
    start, end = draft.quiet_hours_start.strip(), draft.quiet_hours_end.strip()
    problem = _quiet_hours_problem(start, end)
    if problem:
        errors["quiet_hours"] = problem
        start = end = ""
    return {"max_rate": _rate(draft.max_rate.strip(), errors),
            "quiet_hours_start": start or None, "quiet_hours_end": end or None}


def _rate(raw: str, errors: dict[str, str]) -> float | None:
    """The campaign's own speed limit; never above the sender's, which WhatsApp would refuse anyway."""
    if not raw:
        return None
    ceiling = rate_limit.sender_rate()
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.1 <= rate <= ceiling:
        errors["max_rate"] = (f"Enter messages per second between 0.1 and {ceiling:g} (your number's sending rate), "
                              "or leave it empty.")
        return None
    return rate


def _quiet_hours_problem(start: str, end: str) -> str | None:
    if not start and not end:
        return None
    if not (settings.TIME.match(start) and settings.TIME.match(end)):
        return "Give both quiet-hours times as HH:MM, or leave both empty to send around the clock."
    if start == end:
        return "Quiet hours cannot start and end at the same time; leave both empty to send around the clock."
    quiet = (_minutes(end) - _minutes(start)) % (24 * 60)
    if 24 * 60 - quiet < MIN_SENDING_MINUTES:
        return "These quiet hours leave less than an hour a day for sending; make them shorter."
    return None


def set_quiet_hours(campaign_id: int, start: str, end: str) -> Campaign:
    """Change a draft's quiet hours from its review (both empty: send around the clock). Commits."""
    campaign = _locked(campaign_id)
    ensure_editable(campaign)
    start, end = start.strip(), end.strip()
    problem = _quiet_hours_problem(start, end)
    if problem:
        raise ServiceError(problem, field="quiet_hours")
    campaign.quiet_hours_start, campaign.quiet_hours_end = start or None, end or None
    change = f"to {start}–{end}" if start else "off: it sends around the clock"
    audit.record("campaign.quiet_hours", f"Changed the quiet hours of “{campaign.name}” {change}",
                 target=f"campaign:{campaign.id}")
    db.session.commit()
    return campaign


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def draft_for(campaign: Campaign | None) -> CampaignDraft:
    """A saved campaign as the composer shows it, or a new campaign's defaults."""
    if campaign is None:
        return CampaignDraft(quiet_hours_start=settings.get("quiet_hours_start") or "",
                             quiet_hours_end=settings.get("quiet_hours_end") or "",
                             schedule=ScheduleChoice(timezone=settings.get("timezone"), repeat="daily",
                                                     repeat_time="10:00"))
    variables = {key: VariableChoice(mapping.get("source", ""), mapping.get("value", ""), mapping.get("fallback", ""))
                 for key, mapping in (campaign.variables or {}).items()}
    return CampaignDraft(name=campaign.name, template_id=campaign.template_id,
                         audience=audience.choice_for(campaign.audience), variables=variables,
                         accept_fallbacks=campaign.accept_fallbacks, schedule=schedule_rules.choice_for(campaign),
                         max_rate=_number_text(campaign.max_rate), quiet_hours_start=campaign.quiet_hours_start or "",
                         quiet_hours_end=campaign.quiet_hours_end or "")


def _number_text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def suggested_source(variable: TemplateVariable, attribute_keys: list[str]) -> VariableChoice:
    """A first guess for an unmapped variable from its name: the contact's name, phone or a field; or no source."""
    name = variable.name.casefold()
    if name in NAME_SOURCES:
        return VariableChoice("name")
    if name in ("phone", "mobile", "phone_number"):
        return VariableChoice("phone")
    matches = [key for key in attribute_keys if key.casefold() == name]
    return VariableChoice("attribute", matches[0]) if matches else VariableChoice()


@dataclass(frozen=True)
class Composer:
    """Everything the composer form offers: templates, tags, fields, and the chosen template's variables."""

    templates: list[MessageTemplate]
    tags: list[Any]
    attribute_keys: list[str]
    template: MessageTemplate | None
    variables: list[TemplateVariable]
    rules: list[tuple[str, str, str]]  # the audience's field conditions as typed: (key, op, value)
    guesses: dict[str, VariableChoice]  # a guessed source for each of the template's variables not mapped yet

    @property
    def sender(self) -> SenderNumber | None:
        """Looked up when the page shows it, not for every fragment the composer refreshes."""
        return sender_number()


def composer(draft: CampaignDraft) -> Composer:
    """The options the composer needs for this draft."""
    template = db.session.get(MessageTemplate, draft.template_id) if draft.template_id else None
    choices = templates_service.approved_templates()
    if template is not None and template not in choices:
        choices.insert(0, template)  # a draft keeps showing its template even after Meta paused it
    used = [choice.value for choice in draft.variables.values() if choice.source == "attribute"]
    rules = [rule for rule in draft.audience.rules if rule[0].strip()]
    keys = audience.known_attribute_keys([key for key in used + [rule[0] for rule in rules] if key])
    found = template_variables(template) if template else []
    return Composer(templates=choices, tags=tags.all_tags(), attribute_keys=keys, template=template, variables=found,
                    rules=rules,
                    guesses={variable.key: suggested_source(variable, keys) for variable in found
                             if variable.key not in draft.variables})


def with_guesses(draft: CampaignDraft, options: Composer) -> CampaignDraft:
    """The draft with the composer's guess filled in for each variable not mapped yet."""
    return replace(draft, variables={**options.guesses, **draft.variables})


@dataclass(frozen=True)
class Live:
    """The composer's live side: counts, cost, previews and what still blocks launching."""

    campaign: Campaign
    errors: dict[str, str]
    summary: audience.AudienceSummary
    estimate: Estimate
    samples: list[review.SamplePreview]
    empty: review.EmptyCounts
    problems: list[str]
    next_runs: list[datetime]
    labels: dict[str, str]  # variable key -> label, to name the empty ones
    blank: Bubble | None  # the template with its placeholders, when no one matches yet
    share_link: str | None  # wa.me link carrying the first recipient's message as text


def live(draft: CampaignDraft) -> Live:
    """Counts, cost estimate and previews for the composer's current (unsaved) draft."""
    campaign, errors = draft_campaign(draft)
    errors.pop("template", None)  # the launch problems explain an unusable template already
    counts = audience.summary(campaign.audience)
    runs = _next_runs(campaign, errors)
    parts = rendering.template_parts(campaign.template) if campaign.template else None
    empty = review.empty_counts(campaign)
    samples = review.sample_previews(campaign)
    return Live(campaign=campaign, errors=errors, summary=counts, estimate=estimate(campaign, counts.eligible),
                samples=samples, empty=empty, problems=review.launch_problems(campaign, counts, empty),
                next_runs=runs,
                labels={variable.key: variable.label for variable in template_parts.variables(parts)} if parts else {},
                blank=template_parts.bubble(parts) if parts else None,
                share_link=rendering.share_link(campaign, samples[0].contact if samples else None))


def _next_runs(campaign: Campaign, errors: dict[str, str]) -> list[datetime]:
    """The next few runs of a repeating schedule, the end date respected."""
    if not campaign.cron or errors.keys() & {"cron", "repeat_time", "timezone"}:
        return []
    runs = schedule_rules.next_runs(campaign.cron, campaign.timezone)
    return [run for run in runs if campaign.ends_at is None or run <= campaign.ends_at]
