"""The message log with its filters, and exports (the log's, and a campaign's recipients) with their progress."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from redis.exceptions import RedisError

from app.numbers import whole_number
from app.services.admin import settings
from app.services.analytics import message_export, message_log
from app.services.analytics.message_export import ExportRequest
from app.services.analytics.message_log import MessageFilter
from app.services.errors import ServiceError
from jobs.exports import enqueue_export

bp = Blueprint("message_log", __name__, url_prefix="/messages")
QUEUE_DOWN = "The job queue (Redis) could not be reached, so a large export cannot start now. Try again shortly."


def _place() -> tuple[str, ZoneInfo]:
    return settings.get("default_region"), ZoneInfo(settings.get("timezone"))


@bp.get("/")
def index():
    criteria = MessageFilter.from_args(request.args)
    page = message_log.search(criteria, *_place())
    # The filter form swaps only the results; a reload or shared link renders the whole page in the same state.
    if request.headers.get("HX-Target") == "message-results":
        return render_template("messages/_results_partial.html", page=page)
    return render_template("messages/index.html", page=page, campaigns=message_log.campaign_choices(),
                           errors=message_log.error_choices(criteria.error), statuses=message_log.STATUSES)


@bp.post("/export")
def export():
    kind = request.form.get("kind", "messages")
    params = ({"campaign_id": request.form.get("campaign_id", "")} if kind == "campaign"
              else MessageFilter.from_args(request.form).filters())
    try:
        wanted = ExportRequest(kind, params, request.form.get("fmt", ""))
        if message_export.is_large(wanted):
            return redirect(url_for(".export_status", export_id=enqueue_export(wanted, current_user.id)))
        return _download(wanted)
    except ServiceError as error:
        flash(error.message, "error")
    except RedisError:
        flash(QUEUE_DOWN, "error")
    return redirect(_back(kind, params))


def _download(wanted: ExportRequest):
    name = message_export.filename(wanted)
    if wanted.fmt == "csv":
        response = Response(stream_with_context(message_export.csv_download(wanted)),
                            mimetype=message_export.CSV_MIMETYPE)
        response.headers["Content-Disposition"] = f"attachment; filename={name}"
        return response
    return send_file(message_export.xlsx_download(wanted), as_attachment=True, download_name=name,
                     mimetype=message_export.XLSX_MIMETYPE)


def _back(kind: str, params: dict[str, str]) -> str:
    if kind == "campaign" and (campaign_id := whole_number(params.get("campaign_id"))) is not None:
        return url_for("analytics.campaign", campaign_id=campaign_id)
    return url_for(".index", **params)


@bp.get("/exports/<export_id>")
def export_status(export_id: str):
    status = message_export.export_status(export_id, current_user.id, current_user.is_admin)
    # The progress fragment polls itself until the file is ready (or the export failed).
    if request.headers.get("HX-Request"):
        return render_template("messages/_export_progress_partial.html", status=status)
    return render_template("messages/export.html", status=status)


@bp.get("/exports/<export_id>/download")
def export_download(export_id: str):
    path, name, mimetype = message_export.finished_file(export_id, current_user.id, current_user.is_admin)
    return send_file(path, as_attachment=True, download_name=name, mimetype=mimetype)
