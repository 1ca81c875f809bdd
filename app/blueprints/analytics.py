"""One campaign's analytics: funnel, rates, failure reasons and timing (its exports go through message_log)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app.services.analytics import campaign_report

bp = Blueprint("analytics", __name__, url_prefix="/campaigns")


@bp.get("/<int:campaign_id>/analytics")
def campaign(campaign_id: int):
    view = campaign_report.campaign_analytics(campaign_id)
    # HTMX polls while the campaign can still change; the sections are swapped out of band by id.
    if request.headers.get("HX-Request"):
        return render_template("analytics/_campaign_live_partial.html", view=view, oob=True)
    return render_template("analytics/campaign.html", view=view)
