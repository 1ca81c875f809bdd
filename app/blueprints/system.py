"""Administration: run-time settings and system health. Admins only."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.services.admin import account_status, health, settings, system, whatsapp_check
from app.services.errors import NotFound, ServiceError
from app.services.webhooks import intake
from jobs.webhooks import enqueue_process_webhook_event

bp = Blueprint("system", __name__, url_prefix="/admin")
bp.admin_only = True  # enforced by app.security.require_admin


@bp.route("/settings", methods=["GET", "POST"])
def settings_page():
    errors, submitted = {}, None
    if request.method == "POST":
        submitted = request.form.to_dict()
        errors = settings.update(submitted, current_user.id)
        if not errors:
            flash("Settings saved.", "success")
            return redirect(url_for("system.settings_page"))
    return render_template("admin/settings.html", specs=settings.SPECS, values=settings.all_values(),
                           submitted=submitted, errors=errors, as_text=settings.as_form_text,
                           secrets=settings.environment_status(), identifiers=settings.environment_identifiers()), \
        422 if errors else 200


@bp.post("/settings/test-connection")
def test_connection():
    return render_template("admin/_connection_result_partial.html", result=whatsapp_check.check_connection())


@bp.get("/system")
def system_page():
    context = {"health": health.check(), "workers": system.workers(), "queues": system.queue_depths(),
               "scheduled": system.scheduled_jobs(), "failed": system.failed_jobs()}
    if request.headers.get("HX-Target") == "system-live":
        return render_template("admin/_system_live_partial.html", **context)
    return render_template("admin/system.html", **context)


@bp.post("/system/jobs/<job_id>/<any(retry, discard):action>")
def failed_job(job_id: str, action: str):
    try:
        (system.retry_failed if action == "retry" else system.discard_failed)(job_id)
        flash("Job put back on its queue." if action == "retry" else "Job discarded.", "success")
    except (ServiceError, NotFound) as error:  # NotFound: the job was retried or discarded meanwhile
        flash(error.message, "error")
    return redirect(url_for("system.system_page"))


@bp.get("/webhook-events")
def webhook_event_list():
    problems_only = request.args.get("show") == "problems"
    return render_template("admin/webhook_events.html", events=intake.recent(problems_only),
                           problems_only=problems_only)


@bp.post("/webhook-events/<int:event_id>/reprocess")
def reprocess_webhook_event(event_id: int):
    try:
        intake.reopen(event_id)
    except (ServiceError, NotFound) as error:  # NotFound: retention removed the event meanwhile
        flash(error.message, "error")
        return redirect(url_for("system.webhook_event_list"))
    enqueue_process_webhook_event(event_id)
    flash(f"Event {event_id} queued for processing again.", "success")
    return redirect(url_for("system.webhook_event_list"))


@bp.post("/account-problems/<int:problem_id>/dismiss")
def dismiss_account_problem(problem_id: int):
    try:
        account_status.dismiss(problem_id, current_user.id)
        flash("Account warning dismissed.", "success")
    except NotFound as error:
        flash(error.message, "error")
    return redirect(url_for("dashboard.index"))
