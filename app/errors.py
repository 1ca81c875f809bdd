"""Friendly error pages in the site layout, for HTTP errors, an expired form, a service's NotFound and any crash."""

import logging

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.services.errors import NotFound

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("Something was wrong with that request", "Please go back and try again."),
    403: ("You don't have access to this page", "Ask an administrator if you need it."),
    404: ("Page not found", "The page you asked for does not exist or has moved."),
    405: ("That action isn't allowed here", "Please go back and try again."),
    413: ("That file is too large", "Upload a smaller file."),
    429: ("Too many requests", "Please wait a moment and try again."),
    500: ("Something went wrong on our side", "The problem has been logged. Please try again in a minute."),
}


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(NotFound, not_found)
    app.register_error_handler(Exception, unexpected_error)


def render_error(status: int, detail: str | None = None):
    title, hint = MESSAGES.get(status, MESSAGES[400] if status < 500 else MESSAGES[500])
    if request.headers.get("HX-Request") or request.accept_mimetypes.best == "application/json":
        return {"error": title, "detail": detail or hint}, status
    return render_template("errors/error.html", status=status, title=title, hint=detail or hint), status


def csrf_error(error: CSRFError):
    return render_error(400, "Your form expired or came from another site. Reload the page and try again.")


def not_found(error: NotFound):
    """A service found no such row: the same 404 as an unknown URL (a JSON body for HTMX and API callers)."""
    return render_error(404)


def http_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error
    if request.path.startswith("/api/"):
        # A URL no API route matches belongs to no blueprint, so the API's own handlers never see it.
        from app.blueprints.api import http_problem

        return http_problem(error)
    detail = None
    if error.code == 413:
        limit_mb = (request.max_content_length or 0) // (1024 * 1024)
        detail = f"The upload limit is {limit_mb} MB."
    return render_error(error.code, detail)


def unexpected_error(error: Exception):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render_error(500)
