"""The signed-in user's own account."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.services.accounts import users
from app.services.errors import ServiceError

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/password", methods=["GET", "POST"])
def password():
    if request.method == "POST":
        try:
            users.change_own_password(current_user.id, request.form.get("current", ""),
                                      request.form.get("new", ""), request.form.get("repeat", ""))
        except ServiceError as error:
            return render_template("account/password.html", error=error), 422
        flash("Your password has been changed.", "success")
        return redirect(url_for("dashboard.index"))
    return render_template("account/password.html", error=None)
