"""The home dashboard: headline numbers, rates for a period, the message chart, running campaigns, system status."""

from flask import Blueprint, render_template, request

from app.services.analytics import dashboard as analytics

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    view = analytics.dashboard(analytics.period(request.args.get("period")))
    # HTMX polls for the live sections alone (swapped out of band by id, so the chart's canvas stays put).
    if request.headers.get("HX-Request"):
        return render_template("dashboard/_live_partial.html", view=view, oob=True)
    return render_template("dashboard/index.html", view=view, periods=analytics.PERIODS.values())
