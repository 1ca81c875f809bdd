"""Admin → API keys: create a key (its secret shown once) and revoke keys. Admins only."""

from __future__ import annotations

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from app.services.api import keys, scopes
from app.services.errors import ServiceError

bp = Blueprint("api_keys", __name__, url_prefix="/admin/api-keys")
bp.admin_only = True  # enforced by app.security.require_admin


@bp.get("")
def index():
    return _page()


@bp.post("")
def create():
    try:
        key, secret = keys.create_key(request.form.get("name", ""), request.form.getlist("scopes"), current_user.id)
    except ServiceError as error:
        return _page(error=error, form=request.form), 422
    # Shown once: neither the browser's cache nor a proxy may keep a copy.
    response = make_response(render_template("admin/api_key_created.html", key=key, secret=secret))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:key_id>/revoke")
def revoke(key_id: int):
    try:
        key = keys.revoke_key(key_id)
        flash(f"Revoked “{key.name}”: requests with it are refused from now on.", "success")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("api_keys.index"))


def _page(error: ServiceError | None = None, form=None):
    chosen = set(form.getlist("scopes")) if form else set()
    return render_template("admin/api_keys.html", keys=keys.list_keys(), areas=scopes.AREAS, levels=scopes.LEVELS,
                           chosen=chosen, error=error, form=form)
