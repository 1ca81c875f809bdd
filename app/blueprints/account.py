"""The signed-in user's own account: their password, and signing out on every device."""

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user

from app.services.accounts import sign_in, users
from app.services.errors import ServiceError

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/password", methods=["GET", "POST"])
def password():
    if request.method == "POST":
        try:
            user = users.change_own_password(current_user.id, request.form.get("current", ""),
                                             request.form.get("new", ""), request.form.get("repeat", ""),
                                             request.remote_addr or "unknown")
        except ServiceError as error:
            return render_template("account/password.html", error=error), 422
        # The change ended every session of this user; this one goes on, with a renewed remember cookie if it had one.
        login_user(user, remember=current_app.config["REMEMBER_COOKIE_NAME"] in request.cookies)
        flash("Your password has been changed. You have been signed out on your other devices.", "success")
        return redirect(url_for("dashboard.index"))
    return render_template("account/password.html", error=None)


@bp.post("/sign-out-everywhere")
def sign_out_everywhere():
    sign_in.sign_out_everywhere(current_user._get_current_object())
    logout_user()
    flash("You have been signed out on every device.", "info")
    return redirect(url_for("auth.login"))
