"""Keyword auto-reply rules. Admins only."""

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app.services.errors import ServiceError
from app.services.inbox import auto_replies
from app.services.templates import library, rendering

bp = Blueprint("auto_replies", __name__, url_prefix="/admin/auto-replies")
bp.admin_only = True  # enforced by app.security.require_admin


@bp.get("/")
def index():
    return _page(None, {})


@bp.get("/<int:rule_id>")
def edit(rule_id: int):
    return _page(auto_replies.get_rule(rule_id), {})


@bp.post("/")
@bp.post("/<int:rule_id>")
def save(rule_id: int | None = None):
    try:
        rule = auto_replies.save_rule(request.form, rule_id)
    except ServiceError as error:
        return _page(auto_replies.get_rule(rule_id) if rule_id else None, request.form, error), 422
    flash(f"Saved the rule “{rule.name}”.", "success")
    return redirect(url_for("auto_replies.index"))


@bp.post("/<int:rule_id>/delete")
def delete(rule_id: int):
    auto_replies.delete_rule(rule_id)
    flash("Deleted the rule.", "success")
    return redirect(url_for("auto_replies.index"))


@bp.get("/template-fields")
def template_fields():
    template_id = request.args.get("template_id", "")
    template = library.get_template(int(template_id)) if template_id.isdigit() else None
    variables = rendering.template_variables(template) if template else []
    return render_template("auto_replies/_template_fields_partial.html", variables=variables, values={})


def _page(rule, form, error: ServiceError | None = None):
    rules = auto_replies.all_rules()
    template_id = form.get("template_id") or (rule.template_id if rule else None)
    template = library.get_template(int(template_id)) if str(template_id or "").isdigit() else None
    values = {key[4:]: value for key, value in form.items() if key.startswith("var.")} if form else {
        key: auto_replies.variable_text(mapping) for key, mapping in (rule.template_variables if rule else {}).items()}
    return render_template("auto_replies/index.html", rules=rules, rule=rule, form=form, error=error,
                           fired=auto_replies.firings_for(r.id for r in rules), values=values,
                           max_per_hour=auto_replies.MAX_PER_HOUR,
                           templates=library.approved_templates(),
                           variables=rendering.template_variables(template) if template else [])
