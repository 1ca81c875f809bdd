"""Administration: users and the audit log. Admins only."""

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for

from app.models import Role
from app.numbers import page_number
from app.services.accounts import users
from app.services.admin import audit
from app.services.errors import ServiceError

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.admin_only = True  # enforced by app.security.require_admin


@bp.get("/users")
def user_list():
    return render_template("admin/users.html", users=users.list_users(), roles=[r.value for r in Role])


@bp.post("/users")
def invite():
    try:
        user, password = users.invite(request.form.get("email", ""), request.form.get("role", Role.STAFF))
    except ServiceError as error:
        return render_template("admin/users.html", users=users.list_users(), roles=[r.value for r in Role],
                               error=error, form=request.form), 422
    return _password_page(user, password, created=True)


@bp.post("/users/<int:user_id>/<any(role, activate, deactivate, 'reset-password'):action>")
def change_user(user_id: int, action: str):
    try:
        if action == "reset-password":
            user, password = users.reset_password(user_id)
            return _password_page(user, password, created=False)
        if action == "role":
            user = users.change_role(user_id, request.form.get("role", ""))
        else:
            user = users.set_active(user_id, action == "activate")
        flash(f"Saved changes to {user.email}.", "success")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("admin.user_list"))


def _password_page(user, password: str, created: bool):
    # Shown once: neither the browser's cache nor a proxy may keep a copy.
    response = make_response(render_template("admin/password_shown.html", user=user, password=password,
                                             created=created))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/audit")
def audit_log():
    page = audit.search(request.args.get("q", "").strip(), request.args.get("action", ""),
                        page_number(request.args.get("page")))
    template = "admin/_audit_rows_partial.html" if request.headers.get("HX-Target") == "audit-results" \
        else "admin/audit.html"
    return render_template(template, page=page, actions=audit.known_actions(), q=request.args.get("q", ""),
                           action=request.args.get("action", ""))
