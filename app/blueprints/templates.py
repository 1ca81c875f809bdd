"""Message templates: the list with its sync panel, one template's preview, and creating a template."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from redis.exceptions import RedisError

from app.clock import utcnow
from app.services.errors import ServiceError
from app.services.templates import library
from app.services.templates import parts as template_parts
from app.services.templates import rules as template_rules
from app.services.templates.library import TemplateFormError
from app.services.templates.rules import TemplateDraft
from jobs.templates import enqueue_sync_templates

bp = Blueprint("templates", __name__, url_prefix="/templates")


@bp.get("/")
def index():
    return render_template("templates/index.html", templates=library.all_templates(),
                           state=library.sync_state(request.args.get("since", "")))


@bp.post("/sync")
def sync():
    since = utcnow().isoformat()
    try:
        enqueue_sync_templates(current_user.id)
    except RedisError:
        flash("The job queue (Redis) could not be reached, so the sync did not start. Try again shortly.", "error")
        return redirect(url_for(".index"))
    # HTMX swaps in the panel, which polls until the sync is logged; without JavaScript the page does the same.
    if request.headers.get("HX-Request"):
        return render_template("templates/_sync_partial.html", state=library.sync_state(since))
    return redirect(url_for(".index", since=since))


@bp.get("/sync-status")
def sync_status():
    state = library.sync_state(request.args.get("since", ""))
    return render_template("templates/_sync_partial.html", state=state, finished=not state.waiting,
                           templates=library.all_templates())


@bp.get("/<int:template_id>")
def detail(template_id: int):
    template = library.get_template(template_id)
    parts = template_parts.parse(template.components, template.parameter_format)
    return render_template("templates/detail.html", template=template, bubble=template_parts.bubble(parts),
                           variables=template_parts.variables(parts))


@bp.route("/new", methods=["GET", "POST"])
def new():
    draft = TemplateDraft.from_form(request.form) if request.method == "POST" else TemplateDraft()
    if request.method == "GET":
        return _form(draft, {}, None)
    try:
        created = library.create_template(draft)
    except TemplateFormError as error:
        return _form(draft, error.errors, error.message), 422
    except ServiceError as error:
        return _form(draft, {}, error.message), 502
    flash(f"Submitted “{created.name}” to WhatsApp for review. Meta usually decides within minutes to a day; "
          "sync to see the verdict.", "success")
    return redirect(url_for(".detail", template_id=created.id))


@bp.get("/new/preview")
def preview():
    draft = TemplateDraft.from_form(request.args)
    parts = template_parts.parse(template_rules.components(draft), template_rules.parameter_format(draft))
    # The example inputs are only re-drawn when the variables changed, so typing in one never loses focus.
    variables_changed = request.args.getlist("example_keys") != draft.variable_keys()
    return render_template("templates/_draft_preview_partial.html", bubble=template_parts.bubble(parts),
                           draft=draft, errors={}, redraw_examples=variables_changed)


@bp.get("/new/button")
def button_row():
    html = render_template("templates/_button_row_partial.html", button=None, types=template_rules.BUTTON_TYPES)
    # A removed row is swapped out by HTMX (the HTML is ignored); the event refreshes the preview.
    return html, 200, {"HX-Trigger": "draft-changed"} if request.args.get("removed") else {}


def _form(draft: TemplateDraft, errors: dict[str, str], message: str | None):
    parts = template_parts.parse(template_rules.components(draft), template_rules.parameter_format(draft))
    return render_template("templates/form.html", draft=draft, errors=errors, message=message,
                           bubble=template_parts.bubble(parts), rules=template_rules)
