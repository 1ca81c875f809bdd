"""The composer's form: its fields read into a CampaignDraft, a draft written back into fields, and each of the
draft's problems named by the field it is shown next to. Only this module and the composer's templates know the
composer's field names; the services see CampaignDraft, AudienceChoice and ScheduleChoice.
"""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from app.blueprints import variable_fields
from app.numbers import whole_number
from app.services.campaigns.audience import AudienceChoice
from app.services.campaigns.drafts import CampaignDraft, Composer
from app.services.campaigns.schedule import ScheduleChoice

VARIABLE_ERROR = "variables."  # the draft's problems with one variable are keyed "variables.<key>"


def read_composer(form) -> CampaignDraft:
    """The composer's fields as typed (from a post, or the query string of its live fragments)."""
    return CampaignDraft(name=form.get("name", ""), template_id=whole_number(form.get("template_id")),
                         audience=read_audience(form), variables=variable_fields.choices(form),
                         accept_fallbacks=form.get("accept_fallbacks") == "y", schedule=read_schedule(form),
                         max_rate=form.get("max_rate", ""), quiet_hours_start=form.get("quiet_hours_start", ""),
                         quiet_hours_end=form.get("quiet_hours_end", ""))


def read_quiet_hours(form) -> tuple[str, str]:
    """The review's quiet-hours form: (start, end) as typed, or both empty for "send now anyway"."""
    if form.get("quiet_action") == "ignore":
        return "", ""
    return form.get("quiet_hours_start", ""), form.get("quiet_hours_end", "")


def read_audience(form) -> AudienceChoice:
    rules = zip(form.getlist("rule_key"), form.getlist("rule_op"), form.getlist("rule_value"), strict=False)
    return AudienceChoice(everyone=form.get("audience_mode", "all") != "filter",
                          match_all_tags=form.get("tags_match") == "all", tags=tuple(form.getlist("tags")),
                          exclude_tags=tuple(form.getlist("exclude_tags")), rules=tuple(rules))


def read_schedule(form) -> ScheduleChoice:
    return ScheduleChoice(kind=form.get("schedule_kind", "now"), timezone=form.get("timezone", ""),
                          scheduled_at=form.get("scheduled_at", ""), repeat=form.get("repeat", "cron"),
                          repeat_time=form.get("repeat_time", ""), repeat_weekday=form.get("repeat_weekday", "1"),
                          cron=form.get("cron", ""), ends_on=form.get("ends_on", ""))


def fields_for(draft: CampaignDraft) -> MultiDict:
    """The composer's fields showing a draft (a saved campaign's, or a new one's defaults)."""
    fields = [("name", draft.name), ("template_id", str(draft.template_id or "")), ("max_rate", draft.max_rate),
              ("quiet_hours_start", draft.quiet_hours_start), ("quiet_hours_end", draft.quiet_hours_end),
              ("accept_fallbacks", "y" if draft.accept_fallbacks else "")]
    fields += _schedule_fields(draft.schedule) + _audience_fields(draft.audience)
    for key, choice in draft.variables.items():
        fields += variable_fields.inputs(key, choice)
    return MultiDict(fields)


def _schedule_fields(schedule: ScheduleChoice) -> list[tuple[str, str]]:
    return [("schedule_kind", schedule.kind), ("timezone", schedule.timezone), ("scheduled_at", schedule.scheduled_at),
            ("cron", schedule.cron), ("repeat", schedule.repeat), ("repeat_time", schedule.repeat_time),
            ("repeat_weekday", schedule.repeat_weekday), ("ends_on", schedule.ends_on)]


def _audience_fields(chosen: AudienceChoice) -> list[tuple[str, str]]:
    fields = [("audience_mode", "all" if chosen.everyone else "filter"),
              ("tags_match", "all" if chosen.match_all_tags else "any")]
    fields += [("tags", key) for key in chosen.tags] + [("exclude_tags", key) for key in chosen.exclude_tags]
    for key, op, value in chosen.rules:
        fields += [("rule_key", key), ("rule_op", op), ("rule_value", value)]
    return fields


def fields_with_guesses(values, options: Composer) -> MultiDict:
    """The typed values plus the composer's guessed source for each variable not mapped yet."""
    values = MultiDict(values)
    for key, guess in options.guesses.items():
        values[variable_fields.name(key, "source")] = guess.source
        values[variable_fields.name(key, "field")] = guess.value
    return values


def field_errors(errors: dict[str, str]) -> dict[str, str]:
    """The draft's problems keyed by where the composer shows them; other keys already name their field."""
    return {variable_fields.error_field(key.removeprefix(VARIABLE_ERROR)) if key.startswith(VARIABLE_ERROR) else key:
            message for key, message in errors.items()}
