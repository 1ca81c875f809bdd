"""The campaign list and the composer (drafts), with its live HTMX fragments: audience count, variables, preview.

The composer's fields are read and written by campaign_forms.py; the services get a CampaignDraft. Launching,
pausing and each campaign's progress page belong to the campaign_runs blueprint; this one links there by endpoint
name only, and only once that blueprint is registered (`has_endpoint`).
"""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.blueprints import campaign_forms
from app.models import CampaignStatus
from app.services.campaigns import audience, schedule
from app.services.campaigns import drafts as campaigns
from app.services.campaigns import page as campaign_page
from app.services.campaigns.drafts import ComposerErrors
from app.services.contacts import tags
from app.services.errors import ServiceError
from app.services.sending import rate_limit
from app.services.templates import rendering
from app.template_helpers import has_endpoint

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")
RUN_PAGE = "campaign_runs.detail"


@bp.get("/")
def index():
    rows = campaigns.list_campaigns()
    return render_template("campaigns/index.html", campaigns=rows, describe=audience.describe,
                           tag_names={tag.key: tag.name for tag in tags.all_tags()})


@bp.route("/new", methods=["GET", "POST"])
def new():
    if request.method == "POST":
        return _save(None)
    values = campaign_forms.fields_for(campaigns.draft_for(None))
    values["template_id"] = request.args.get("template_id", "")
    return _composer_page(None, values, {}, None)


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
def edit(campaign_id: int):
    campaign = campaigns.get_campaign(campaign_id)
    try:
        campaigns.ensure_editable(campaign)
    except ServiceError as error:
        flash(error.message, "warning")
        return redirect(_run_page_or_list(campaign.id))
    if request.method == "POST":
        return _save(campaign)
    return _composer_page(campaign, campaign_forms.fields_for(campaigns.draft_for(campaign)), {}, None)


@bp.post("/<int:campaign_id>/duplicate")
def duplicate(campaign_id: int):
    copy = campaigns.duplicate(campaign_id, current_user.id)
    flash(f"Copied into the new draft “{copy.name}”. Check it, then review and launch it.", "success")
    return _go(url_for(".edit", campaign_id=copy.id))


@bp.post("/<int:campaign_id>/delete")
def delete(campaign_id: int):
    try:
        name = campaigns.delete_draft(campaign_id)
    except ServiceError as error:
        flash(error.message, "error")
        return _go(_run_page_or_list(campaign_id))
    flash(f"Deleted the draft “{name}”.", "success")
    return _go(url_for(".index"))


@bp.post("/<int:campaign_id>/quiet-hours")
def quiet_hours(campaign_id: int):
    """The review's one-click change of a draft's quiet hours; HTMX gets the review again with new figures."""
    typed, error = campaign_forms.read_quiet_hours(request.form), None
    try:
        campaign = campaigns.set_quiet_hours(campaign_id, *typed)
    except ServiceError as problem:
        error, campaign = problem.message, campaigns.get_campaign(campaign_id)
    notice = None if error else _quiet_notice(campaign)
    if not request.headers.get("HX-Request") or campaign.status != CampaignStatus.DRAFT:
        flash(error or notice, "error" if error else "success")
        return _go(_run_page_or_list(campaign_id))
    return render_template("campaigns/_review_partial.html", view=campaign_page.page_view(campaign_id),
                           quiet_error=error, quiet_typed=typed if error else None, quiet_notice=notice,
                           oob_summary=True)


def _quiet_notice(campaign) -> str:
    if not campaign.quiet_hours_start:
        return "Quiet hours are off for this campaign: it sends around the clock."
    return (f"Quiet hours for this campaign are now {campaign.quiet_hours_start}–{campaign.quiet_hours_end} "
            "in each recipient's own time.")


def _go(url: str):
    """Redirect a form post, or an HTMX one (whose confirm dialog came first) through HX-Redirect."""
    if request.headers.get("HX-Request"):
        return "", 204, {"HX-Redirect": url}
    return redirect(url)


def _save(campaign):
    draft = campaign_forms.read_composer(request.form)
    try:
        saved = campaigns.save_draft(campaign.id if campaign else None, draft, current_user.id)
    except ComposerErrors as error:
        return _composer_page(campaign, request.form, campaign_forms.field_errors(error.errors), error.message), 422
    except ServiceError as error:
        return _composer_page(campaign, request.form, {}, error.message), 409
    flash(f"Draft “{saved.name}” saved.", "success")
    return redirect(url_for(".edit", campaign_id=saved.id))


@bp.get("/audience-count")
def audience_count():
    summary, error = audience.summary_for(campaign_forms.read_audience(request.args))
    return render_template("campaigns/_audience_count_partial.html", summary=summary, error=error)


@bp.get("/preview")
def preview():
    live = campaigns.live(campaign_forms.read_composer(request.args))
    return render_template("campaigns/_preview_partial.html", live=live, oob=True)


@bp.get("/variables")
def variables():
    # Swapped in when the template changes; the event makes the preview follow with the new variables.
    options = campaigns.composer(campaign_forms.read_composer(request.args))
    html = render_template("campaigns/_variables_partial.html", options=options, errors={}, sources=rendering.SOURCES,
                           values=campaign_forms.fields_with_guesses(request.args, options))
    return html, 200, {"HX-Trigger-After-Settle": "composer-changed"}


@bp.get("/rule")
def rule_row():
    html = render_template("campaigns/_rule_row_partial.html", rule=None, operators=audience.OPERATORS)
    # A removed row is swapped out by HTMX (the HTML is ignored); the event refreshes the counts.
    return html, 200, {"HX-Trigger": "composer-changed"} if request.args.get("removed") else {}


def _composer_page(campaign, values, errors: dict[str, str], message: str | None):
    """The composer showing `values` (its fields as typed, or as fields_for wrote them) and the field errors."""
    draft = campaign_forms.read_composer(values)
    options = campaigns.composer(draft)
    values = campaign_forms.fields_with_guesses(values, options)
    return render_template("campaigns/form.html", campaign=campaign, values=values, errors=errors, message=message,
                           options=options, live=campaigns.live(campaigns.with_guesses(draft, options)),
                           sources=rendering.SOURCES, operators=audience.OPERATORS,
                           timezones=sorted(available_timezones()), weekdays=schedule.WEEKDAYS,
                           rate_ceiling=rate_limit.sender_rate(), run_page=RUN_PAGE)


def _run_page_or_list(campaign_id: int) -> str:
    if has_endpoint(RUN_PAGE):
        return url_for(RUN_PAGE, campaign_id=campaign_id)
    return url_for(".index")
