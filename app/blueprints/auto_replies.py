"""Keyword auto-reply rules, and reading the rules page's fields into a RuleInput. Admins only."""

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app.blueprints import variable_fields
from app.numbers import whole_number
from app.services.errors import ServiceError
from app.services.inbox import auto_replies
from app.services.inbox.auto_replies import RuleInput
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
        rule = auto_replies.save_rule(_rule_input(request.form), rule_id)
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
    template_id = whole_number(request.args.get("template_id"))
    template = library.get_template(template_id) if template_id else None
    variables = rendering.template_variables(template) if template else []
    return render_template("auto_replies/_template_fields_partial.html", variables=variables, values={})


def _rule_input(form) -> RuleInput:
    """The rule as typed; the field names are RuleInput's, so a ServiceError's field names the input at fault."""
    template_id = form.get("template_id", "")
    return RuleInput(name=form.get("name", ""), match_kind=form.get("match_kind", ""),
                     keywords=form.get("keywords", ""), pattern=form.get("pattern", ""),
                     reply_kind=form.get("reply_kind", "text"), reply_text=form.get("reply_text", ""),
                     template_id=whole_number(template_id),
                     variables=variable_fields.texts(form), cooldown_minutes=form.get("cooldown_minutes", "60"),
                     position=form.get("position", "0"), active=form.get("active") in ("on", "1", "y", "true"))


def _page(rule, form, error: ServiceError | None = None):
    rules = auto_replies.all_rules()
    template_id = form.get("template_id") or (rule.template_id if rule else None)
    template = library.get_template(number) if (number := whole_number(template_id)) is not None else None
    values = variable_fields.texts(form) if form else {
        key: auto_replies.variable_text(mapping) for key, mapping in (rule.template_variables if rule else {}).items()}
    return render_template("auto_replies/index.html", rules=rules, rule=rule, form=form, error=error,
                           fired=auto_replies.firings_for(r.id for r in rules), values=values,
                           unusable=auto_replies.unusable_patterns(rules),
                           max_per_hour=auto_replies.MAX_PER_HOUR,
                           templates=library.approved_templates(),
                           variables=rendering.template_variables(template) if template else [])
