"""Campaign drafts: reading the composer form, validating it, saving, copying and deleting drafts, and the
composer's live summary.

The schedule fields are read in schedule_form.py, cost and sending time are estimated in campaign_estimates.py;
launching, scheduling, pausing and cancelling live in campaign_lifecycle.py. The composer works on raw form values
(a MultiDict) both ways, so a page re-shown after an error keeps exactly what was typed.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from werkzeug.datastructures import MultiDict

from app.extensions import db
from app.models import Campaign, CampaignStatus, MessageTemplate, TemplateStatus
from app.services.admin import audit, settings
from app.services.campaigns import audience, review
from app.services.campaigns import schedule as schedule_form
from app.services.campaigns.estimates import Estimate, estimate
from app.services.contacts import tags
from app.services.errors import NotFound, ServiceError
from app.services.sending import rate_limit
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


class ComposerErrors(ServiceError):
    """The composer form broke rules; `errors` maps each field to its problem."""

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


def save_draft(campaign_id: int | None, form, user_id: int | None) -> Campaign:
    """Create or update a draft from the composer form; ComposerErrors names every field at fault."""
    campaign = _locked(campaign_id) if campaign_id else Campaign(status=CampaignStatus.DRAFT)
    ensure_editable(campaign)
    values, errors = read_form(form, current_template_id=campaign.template_id)
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


def draft_from_form(form) -> tuple[Campaign, dict[str, str]]:
    """An unsaved campaign built from whatever the form holds, for live counts and previews; and the errors."""
    values, errors = read_form(form)
    campaign = Campaign(status=CampaignStatus.DRAFT, **values)
    campaign.phone_number_id = current_app.config["WHATSAPP_PHONE_NUMBER_ID"] or ""
    return campaign, errors


def read_form(form, current_template_id: int | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Campaign column values from the form, and {field: problem} for everything wrong with it."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"name": form.get("name", "").strip()[:255]}
    if not values["name"]:
        errors["name"] = "Give the campaign a name, e.g. “Diwali offer to VIPs”."
    template = _template(form.get("template_id", ""), current_template_id, errors)
    values["template"], values["template_id"] = template, template.id if template else None
    try:
        values["audience"] = audience.from_form(form)
    except ServiceError as error:
        values["audience"], errors["audience"] = {}, error.message
    values["variables"] = _variables(template, form, errors)
    values["accept_fallbacks"] = form.get("accept_fallbacks") == "y"
    values.update(schedule_form.read(form, errors))
    values.update(_limits(form, errors))
    return values, errors


def _template(raw: str, current_id: int | None, errors: dict[str, str]) -> MessageTemplate | None:
    template = db.session.get(MessageTemplate, int(raw)) if raw.isdigit() else None
    if raw and template is None:
        errors["template"] = "That template no longer exists; choose another."
    elif template and template.status != TemplateStatus.APPROVED and template.id != current_id:
        errors["template"] = f"“{template.name}” is not approved by Meta; choose an approved template."
    return template


def _variables(template: MessageTemplate | None, form, errors: dict[str, str]) -> dict[str, dict[str, str]]:
    mapping: dict[str, dict[str, str]] = {}
    known: list[str] | None = None
    for variable in template_variables(template) if template else []:
        field = f"var-{variable.key}"
        source = form.get(f"{field}-source", "")
        if source not in SOURCES:
            continue
        value = clean(form.get(f"{field}-field" if source == "attribute" else f"{field}-text", ""))
        if source == "attribute" and value:
            known = audience.known_attribute_keys() if known is None else known
            value = audience.as_spelled_on_contacts(value, known)
        fallback = clean(form.get(f"{field}-fallback", ""))
        problem = _variable_problem(variable, source, value, fallback)
        if problem:
            errors[field] = problem
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


def _limits(form, errors: dict[str, str]) -> dict[str, Any]:
    start, end = form.get("quiet_hours_start", "").strip(), form.get("quiet_hours_end", "").strip()
    problem = _quiet_hours_problem(start, end)
    if problem:
        errors["quiet_hours"] = problem
        start = end = ""
    return {"max_rate": _rate(form.get("max_rate", "").strip(), errors),
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


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def form_values(campaign: Campaign | None) -> MultiDict:
    """The composer's fields for a saved campaign, or a new campaign's defaults."""
    if campaign is None:
        return MultiDict({"schedule_kind": "now", "quiet_hours_start": settings.get("quiet_hours_start"),
                          "quiet_hours_end": settings.get("quiet_hours_end"), "audience_mode": "all",
                          "timezone": settings.get("timezone"), "repeat": "daily", "repeat_time": "10:00",
                          "repeat_weekday": "1"})
    fields: list[tuple[str, str]] = [
        ("name", campaign.name), ("template_id", str(campaign.template_id or "")),
        ("max_rate", _number_text(campaign.max_rate)),
        ("quiet_hours_start", campaign.quiet_hours_start or ""), ("quiet_hours_end", campaign.quiet_hours_end or ""),
        ("accept_fallbacks", "y" if campaign.accept_fallbacks else ""),
    ]
    fields.extend(schedule_form.fields(campaign))
    fields.extend(_audience_fields(campaign.audience or {}))
    for key, mapping in (campaign.variables or {}).items():
        value_field = "field" if mapping.get("source") == "attribute" else "text"
        fields += [(f"var-{key}-source", mapping.get("source", "")), (f"var-{key}-{value_field}",
                   mapping.get("value", "")), (f"var-{key}-fallback", mapping.get("fallback", ""))]
    return MultiDict(fields)


def _audience_fields(saved: dict[str, Any]) -> list[tuple[str, str]]:
    fields = [("audience_mode", "filter" if saved else "all"),
              ("tags_match", "all" if saved.get("tags_all") else "any")]
    fields += [("tags", key) for key in saved.get("tags_all") or saved.get("tags_any") or []]
    fields += [("exclude_tags", key) for key in saved.get("exclude_tags") or []]
    for rule in saved.get("attributes") or []:
        fields += [("rule_key", rule["key"]), ("rule_op", rule["op"]), ("rule_value", rule.get("value", ""))]
    return fields


def _number_text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _with_suggestions(form, found: list[TemplateVariable], attribute_keys: list[str]) -> MultiDict:
    values = MultiDict(form)
    for variable in found:
        if f"var-{variable.key}-source" not in values:
            source, field = suggested_source(variable, attribute_keys)
            values[f"var-{variable.key}-source"], values[f"var-{variable.key}-field"] = source, field
    return values


def suggested_source(variable: TemplateVariable, attribute_keys: list[str]) -> tuple[str, str]:
    """A first guess for an unmapped variable: (source, field) from its name, or ("", "")."""
    name = variable.name.casefold()
    if name in NAME_SOURCES:
        return "name", ""
    if name in ("phone", "mobile", "phone_number"):
        return "phone", ""
    matches = [key for key in attribute_keys if key.casefold() == name]
    return ("attribute", matches[0]) if matches else ("", "")


@dataclass(frozen=True)
class Composer:
    """Everything the composer form offers: templates, tags, fields, and the chosen template's variables."""

    templates: list[MessageTemplate]
    tags: list[Any]
    attribute_keys: list[str]
    template: MessageTemplate | None
    variables: list[TemplateVariable]
    rules: list[tuple[str, str, str]]  # the audience's field conditions as typed: (key, op, value)
    sender: str
    values: MultiDict  # the form values, with a guessed source for each variable not mapped yet


def composer(form) -> Composer:
    """The options the composer needs for these form values."""
    raw = form.get("template_id", "")
    template = db.session.get(MessageTemplate, int(raw)) if raw.isdigit() else None
    choices = templates_service.approved_templates()
    if template is not None and template not in choices:
        choices.insert(0, template)  # a draft keeps showing its template even after Meta paused it
    used = [value for key, value in form.items(multi=True) if key.startswith("var-") and key.endswith("-field")]
    keys = audience.known_attribute_keys([key for key in used + form.getlist("rule_key") if key])
    found = template_variables(template) if template else []
    return Composer(templates=choices, tags=tags.all_tags(), attribute_keys=keys, template=template, variables=found,
                    values=_with_suggestions(form, found, keys),
                    rules=[rule for rule in zip(form.getlist("rule_key"), form.getlist("rule_op"),
                                                form.getlist("rule_value"), strict=False) if rule[0].strip()],
                    sender=current_app.config["WHATSAPP_PHONE_NUMBER_ID"] or "")


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


def live(form) -> Live:
    """Counts, cost estimate and previews for the composer's current (unsaved) values."""
    campaign, errors = draft_from_form(form)
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
    runs = schedule_form.next_runs(campaign.cron, campaign.timezone)
    return [run for run in runs if campaign.ends_at is None or run <= campaign.ends_at]
