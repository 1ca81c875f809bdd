"""Message templates: the list with its sync panel, one template's preview, and creating a template (its form is
read into a TemplateDraft here)."""

from __future__ import annotations

from itertools import zip_longest

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from redis.exceptions import RedisError

from app.clock import utcnow
from app.services.errors import ServiceError
from app.services.templates import library
from app.services.templates import parts as template_parts
from app.services.templates import rules as template_rules
from app.services.templates.library import TemplateFormError
from app.services.templates.rules import BUTTON_TYPES, EXAMPLE_ERROR, ButtonDraft, TemplateDraft
from jobs.templates import enqueue_sync_templates

bp = Blueprint("templates", __name__, url_prefix="/templates")


@bp.get("/")
def index():
    templates = library.all_templates()
    # The table polls itself while a template is in review, so Meta's verdict shows without a reload.
    if request.headers.get("HX-Target") == "template-table":
        return render_template("templates/_table_partial.html", templates=templates)
    return render_template("templates/index.html", templates=templates,
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
    page = "templates/_detail_partial.html" if request.headers.get("HX-Request") else "templates/detail.html"
    return render_template(page, template=template, bubble=template_parts.bubble(parts),
                           variables=template_parts.variables(parts))


@bp.route("/new", methods=["GET", "POST"])
def new():
    draft = _draft(request.form) if request.method == "POST" else TemplateDraft()
    if request.method == "GET":
        return _form(draft, {}, None)
    if request.headers.get("HX-Request"):  # the form's live check as it is typed: nothing is saved
        return _checked(draft)
    try:
        created = library.create_template(draft)
    except TemplateFormError as error:
        return _form(draft, _field_errors(error.errors), error.message), 422
    except ServiceError as error:
        return _form(draft, {}, error.message), 502
    flash(f"Submitted “{created.name}” to WhatsApp for review.", "success")
    return redirect(url_for(".detail", template_id=created.id))


def _checked(draft: TemplateDraft):
    """The preview, and each field's message swapped in beside it (the same sentences as on submit)."""
    # The example inputs are only re-drawn when the variables changed, so typing in one never loses focus.
    variables_changed = request.form.getlist("example_keys") != draft.variable_keys()
    return render_template("templates/_draft_preview_partial.html", bubble=_bubble(draft), draft=draft,
                           errors=_field_errors(library.draft_problems(draft, as_typed=True)),
                           redraw_examples=variables_changed, live=True)


@bp.get("/new/button")
def button_row():
    html = render_template("templates/_button_row_partial.html", button=None, types=template_rules.BUTTON_TYPES)
    # A removed row is swapped out by HTMX (the HTML is ignored); the event refreshes the preview.
    return html, 200, {"HX-Trigger": "draft-changed"} if request.args.get("removed") else {}


def _draft(form) -> TemplateDraft:
    """The create form's fields (submitted, or posted by the live check) as a draft."""
    columns = [form.getlist(name) for name in ("button_type", "button_text", "button_value", "button_example")]
    buttons = [ButtonDraft(kind, text.strip(), value.strip(), example.strip())
               for kind, text, value, example in zip_longest(*columns, fillvalue="") if kind in BUTTON_TYPES]
    examples = {key.removeprefix("example-"): value.strip() for key, value in form.items()
                if key.startswith("example-")}
    return TemplateDraft(name=form.get("name", "").strip(), language=form.get("language", "en_US"),
                         category=form.get("category", "MARKETING"), header_text=form.get("header_text", "").strip(),
                         body=form.get("body", "").strip().replace("\r\n", "\n"),
                         footer=form.get("footer", "").strip(), buttons=buttons, examples=examples)


def _field_errors(errors: dict[str, str]) -> dict[str, str]:
    """The draft's problems keyed by the input they are shown next to (an example's is `example-<key>`)."""
    return {f"example-{key.removeprefix(EXAMPLE_ERROR)}" if key.startswith(EXAMPLE_ERROR) else key: message
            for key, message in errors.items()}


def _form(draft: TemplateDraft, errors: dict[str, str], message: str | None):
    return render_template("templates/form.html", draft=draft, errors=errors, message=message,
                           bubble=_bubble(draft), rules=template_rules)


def _bubble(draft: TemplateDraft) -> template_parts.Bubble:
    """The draft as a customer would see it, its example values in place of the variables typed so far."""
    parts = template_parts.parse(template_rules.components(draft), template_rules.parameter_format(draft))
    return template_parts.bubble(parts, parts.examples, mark_empty=False)
