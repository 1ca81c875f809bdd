"""Campaigns and templates through the API: the API's shapes turned into the composer's CampaignDraft and handed to
the campaigns services (drafts, audience, schedule, lifecycle), so every rule the dashboard checks applies."""

from __future__ import annotations

from app.extensions import db
from app.models import Campaign, MessageTemplate
from app.services.api import problems
from app.services.api.problems import field_error
from app.services.api.schemas import CampaignIn
from app.services.campaigns import drafts, lifecycle
from app.services.campaigns.audience import AudienceChoice
from app.services.campaigns.drafts import CampaignDraft, ComposerErrors, VariableChoice
from app.services.campaigns.schedule import ScheduleChoice
from app.services.errors import ServiceError
from app.services.templates import library, rendering

# The composer's names for fields the API spells differently.
FIELD_NAMES = {"template": "template_id", "quiet_hours": "quiet_hours_start", "timezone": "schedule.timezone",
               "scheduled_at": "schedule.scheduled_at", "cron": "schedule.cron", "repeat_time": "schedule.cron",
               "ends_on": "schedule.ends_on", "kind": "schedule.kind"}
CONTROLS = {"pause": lifecycle.pause, "resume": lifecycle.resume, "cancel": lifecycle.cancel}


def list_campaigns() -> list[Campaign]:
    return drafts.list_campaigns()


def get_campaign(campaign_id: int) -> Campaign:
    return drafts.get_campaign(campaign_id)


def create(data: CampaignIn, user_id: int | None) -> Campaign:
    """A draft from the API's fields; every problem is reported under the API's field name. As in the composer, a
    draft may leave variables unfilled: launching it is refused (409) until they are. Commits."""
    _check_variable_keys(data)
    try:
        return drafts.save_draft(None, draft_from(data), user_id)
    except ComposerErrors as error:
        raise problems.invalid([field_error(FIELD_NAMES.get(name, name), message)
                                for name, message in error.errors.items()]) from error


def _check_variable_keys(data: CampaignIn) -> None:
    """The composer only offers the template's variables; the API refuses keys the template does not have."""
    template = db.session.get(MessageTemplate, data.template_id)
    if template is None:
        return  # the composer's own check names template_id
    keys = {variable.key for variable in rendering.template_variables(template)}
    known = ", ".join(sorted(keys)) or "none"
    unknown = [field_error(f"variables.{key}", f"This template has no such variable; it has: {known}.")
               for key in data.variables if key not in keys]
    if unknown:
        raise problems.invalid(unknown)


def draft_from(data: CampaignIn) -> CampaignDraft:
    audience = data.audience
    rules = tuple((rule.key, rule.op, rule.value) for rule in audience.attributes)
    tags = tuple(audience.tags_all or audience.tags_any)
    choice = AudienceChoice(everyone=not (tags or audience.exclude_tags or rules), match_all_tags=bool(
        audience.tags_all), tags=tags, exclude_tags=tuple(audience.exclude_tags), rules=rules)
    schedule = data.schedule
    return CampaignDraft(
        name=data.name, template_id=data.template_id, audience=choice,
        variables={key: VariableChoice(v.source, v.value, v.fallback) for key, v in data.variables.items()},
        accept_fallbacks=data.accept_fallbacks,
        schedule=ScheduleChoice(kind=schedule.kind, timezone=schedule.timezone, scheduled_at=schedule.scheduled_at,
                                repeat="cron", cron=schedule.cron, ends_on=schedule.ends_on),
        max_rate="" if data.max_rate is None else str(data.max_rate),
        quiet_hours_start=data.quiet_hours_start, quiet_hours_end=data.quiet_hours_end)


def launch(campaign_id: int, user_id: int | None) -> lifecycle.ScheduledRun:
    """Send now, or schedule when the campaign has a schedule; 409 when the campaign cannot start. Commits."""
    try:
        return lifecycle.start(campaign_id, user_id)
    except ServiceError as error:
        raise problems.from_service(error, status=409) from error


def control(campaign_id: int, action: str, user_id: int | None) -> Campaign:
    """Pause, resume or cancel; 409 when the campaign's state does not allow it. Commits."""
    try:
        return CONTROLS[action](campaign_id, user_id=user_id)
    except ServiceError as error:
        raise problems.from_service(error, status=409) from error


def list_templates() -> list[MessageTemplate]:
    return library.all_templates()
