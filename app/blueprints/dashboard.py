"""The home dashboard."""

from flask import Blueprint, render_template, request

from app.services import health

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    report = health.check()
    # HTMX polls for the status fragment alone; a normal visit gets the whole page.
    if request.headers.get("HX-Request"):
        return render_template("dashboard/_system_status_partial.html", health=report)
    return render_template("dashboard/index.html", health=report)
