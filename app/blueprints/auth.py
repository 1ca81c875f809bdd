"""Sign in and sign out."""

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from app.services.accounts import sign_in
from app.services.errors import ServiceError

bp = Blueprint("auth", __name__)
bp.login_exempt = True


MISSING = "Enter your email and password."


class LoginForm(FlaskForm):
    # 254 characters: the longest address an email can be sent to (RFC 5321).
    email = EmailField("Email", validators=[DataRequired(MISSING),
                                            Length(max=254, message="That is too long for an email address.")])
    password = PasswordField("Password", validators=[DataRequired(MISSING)])
    remember = BooleanField("Keep me signed in on this device")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            signed_in = sign_in.sign_in(form.email.data, form.password.data, request.remote_addr or "unknown")
        except ServiceError as error:
            return render_template("auth/login.html", form=form, error=error.message), 200
        login_user(signed_in.user, remember=form.remember.data)
        session["first_sign_in"] = signed_in.first_time  # for the dashboard's greeting
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form, error=None)


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login is a phishing aid. Control characters (a CR/LF makes the
    # Location header invalid) and backslashes (which browsers read as "/") have no place in a path of ours.
    if (target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc
            and target.isprintable() and "\\" not in target):
        return target
    return url_for("dashboard.index")


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        sign_in.sign_out(current_user._get_current_object())
    logout_user()
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"))
