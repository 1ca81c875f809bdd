"""Request guards (sign-in for every route, admin role for admin-only blueprints), form tokens that change at sign-in
and sign-out, and response headers."""

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask_login import current_user, user_logged_in, user_logged_out

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def init_app(app: Flask) -> None:
    app.before_request(require_login)
    app.before_request(require_admin)
    app.after_request(add_security_headers)
    user_logged_in.connect(rotate_csrf_token, app)
    user_logged_out.connect(rotate_csrf_token, app)


def require_login():
    """Login is the default; a blueprint opts out with `login_exempt = True` (login, health, webhooks)."""
    if request.endpoint is None or request.endpoint == "static":
        return None
    # Exemption first: it costs a dict lookup, while current_user reads the session and may load the user, work
    # the webhook endpoint (thousands of requests a second from Meta) never needs.
    blueprint = current_app.blueprints.get(request.blueprint or "")
    if blueprint is not None and getattr(blueprint, "login_exempt", False):
        return None
    if current_user.is_authenticated:
        return None
    if request.headers.get("HX-Request"):
        # A redirect would swap the login page into a fragment; make HTMX load it as a whole page.
        return "", 401, {"HX-Redirect": url_for("auth.login")}
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def require_admin():
    """A blueprint marked `admin_only = True` (users, settings, auto-replies) answers 403 to staff."""
    blueprint = current_app.blueprints.get(request.blueprint or "")
    if blueprint is not None and getattr(blueprint, "admin_only", False):
        ensure_admin()


def ensure_admin() -> None:
    """403 unless the signed-in user is an admin; for views where only some requests are admin-only."""
    if not (current_user.is_authenticated and current_user.is_admin):
        abort(403)


def rotate_csrf_token(*_args, **_kwargs) -> None:
    """A new form token at sign-in and sign-out: one a visitor had before (or planted) must not outlive either."""
    session.pop("csrf_token", None)  # Flask-WTF keeps the token's secret here and makes a new one when it is gone
    g.pop("csrf_token", None)


def add_security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if not current_app.debug and current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response
