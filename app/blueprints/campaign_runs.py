"""One campaign's page: launch or schedule it, pause, resume or cancel it, and watch it send."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from redis.exceptions import RedisError
from werkzeug.routing import BuildError

from app.services.campaigns import lifecycle
from app.services.campaigns import page as campaign_page
from app.services.campaigns import test_send as campaign_test_send
from app.services.errors import ServiceError
from jobs.campaigns import enqueue_send_batch, schedule_start, unschedule_start
from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks

bp = Blueprint("campaign_runs", __name__, url_prefix="/campaigns")

CONTROLS = {"pause": lifecycle.pause, "resume": lifecycle.resume,
            "cancel": lifecycle.cancel, "unschedule": lifecycle.unschedule}
DONE = {"pause": "Paused: no new batch will start.", "resume": "Resumed: sending again.",
        "cancel": "Cancelled: messages not yet sent will not be sent.", "unschedule": "Unscheduled: back to draft."}
QUEUE_DOWN = "The job queue (Redis) could not be reached; sending starts within a minute of it coming back."


@bp.get("/<int:campaign_id>")
def detail(campaign_id: int):
    # HTMX polls for the live fragment alone; a normal visit gets the whole page.
    if request.headers.get("HX-Request"):
        return render_template("campaign_runs/_progress_partial.html", view=campaign_page.live_view(campaign_id))
    view = campaign_page.page_view(campaign_id)
    return render_template("campaign_runs/detail.html", view=view, links=_composer_links(campaign_id))


@bp.post("/<int:campaign_id>/launch")
def launch(campaign_id: int):
    try:
        run = lifecycle.start(campaign_id, current_user.id)
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for(".detail", campaign_id=campaign_id))
    _queue(lambda: enqueue_send_batch(run.run_id) if run.run_id else schedule_start(campaign_id, run.next_at))
    flash("Launched: sending has started." if run.run_id else "Scheduled.", "success")
    return redirect(url_for(".detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/<any(pause, resume, cancel, unschedule):action>")
def control(campaign_id: int, action: str):
    error = None
    try:
        CONTROLS[action](campaign_id, user_id=current_user.id)
    except ServiceError as problem:
        error = problem.message
    if error is None:
        _queue(lambda: enqueue_send_batch(campaign_id) if action == "resume" else unschedule_start(campaign_id))
        enqueue_deliver_outbound_webhooks()  # a cancel's campaign.finished event, at once
    if request.headers.get("HX-Request"):
        return render_template("campaign_runs/_progress_partial.html", view=campaign_page.live_view(campaign_id),
                               error=error, notice=None if error else DONE[action])
    flash(error or DONE[action], "error" if error else "success")
    return redirect(url_for(".detail", campaign_id=campaign_id))


@bp.post("/<int:campaign_id>/test-send")
def test_send(campaign_id: int):
    phone = request.form.get("test_phone", "").strip()
    outcome, error = None, None
    try:
        outcome = campaign_test_send.send_test(campaign_id, phone)
    except ServiceError as problem:
        error = problem
    if request.headers.get("HX-Request"):
        # 200 even for a bad number: HTMX swaps only successful answers, and the fragment carries the message.
        return render_template("campaigns/_test_send_partial.html", campaign_id=campaign_id, phone=phone,
                               outcome=outcome, error=error)
    if error is not None or not outcome.ok:
        flash(error.message if error else outcome.message, "error")
    else:
        flash(outcome.message, "success")
    return redirect(url_for(".detail", campaign_id=campaign_id))


def _queue(work) -> None:
    """Queue the follow-up work; if Redis is down the sweeper rebuilds it from the database."""
    try:
        work()
    except RedisError:
        flash(QUEUE_DOWN, "warning")


def _composer_links(campaign_id: int) -> dict[str, str | None]:
    """The campaign list and edit pages, when the composer's blueprint is installed."""
    links: dict[str, str | None] = {}
    for name, endpoint, values in (("list", "campaigns.index", {}),
                                   ("edit", "campaigns.edit", {"campaign_id": campaign_id})):
        try:
            links[name] = url_for(endpoint, **values)
        except BuildError:
            links[name] = None
    return links
