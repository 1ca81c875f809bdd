"""Exporting messages: a campaign's recipients or the filtered message log, as CSV or XLSX.

Rows are streamed from the database (yield_per) into app.services.spreadsheets, which neutralises formulas
and keeps phone numbers as text, so a million rows never sit in memory. Up to LARGE rows download straight
away; bigger exports run as a background job (jobs/exports.py) that writes the file under
INSTANCE_DIR/exports and reports its progress in its RQ job meta, read back here for the progress page.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select

from app.clock import utcnow
from app.config import private_folder
from app.extensions import db
from app.models import Campaign, Contact, Message
from app.queues import redis_connection
from app.services import spreadsheets
from app.services.admin import settings
from app.services.analytics import message_log
from app.services.analytics.campaign_report import explain
from app.services.analytics.message_log import STATUSES, MessageFilter
from app.services.errors import NotFound, ServiceError
from app.services.spreadsheets import local_time, time_heading

LARGE = 50_000  # more rows than this are written by a background job
BATCH = 2_000
PROGRESS_EVERY = 5_000
XLSX_MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row
KEEP_FILES_SECONDS = 24 * 60 * 60
FORMATS = ("csv", "xlsx")
KINDS = ("campaign", "messages")
JOB_PREFIX = "export-"
EXPORT_ID = re.compile(r"^[0-9a-f]{32}$")
GONE = "The export file is no longer available; start the export again."
CSV_MIMETYPE = "text/csv; charset=utf-8"
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TIMES = ("sent_at", "delivered_at", "read_at", "failed_at", "replied_at")
TIME_LABELS = ("Sent at", "Delivered at", "Read at", "Failed at", "Replied at")


@dataclass(frozen=True)
class ExportRequest:
    """What to export; plain values only, so it can travel to a job."""

    kind: str  # campaign | messages
    params: dict[str, str]  # {"campaign_id": "12"} or the message log's filters
    fmt: str  # csv | xlsx

    def __post_init__(self) -> None:
        if self.kind not in KINDS or self.fmt not in FORMATS:
            raise ServiceError("Choose CSV or Excel.")


@dataclass
class Export:
    header: list[str]
    rows: Iterator[list]
    sheet_title: str


@dataclass(frozen=True)
class ExportStatus:
    export_id: str
    state: str  # queued | running | done | failed
    written: int
    total: int | None
    filename: str
    fmt: str
    user_id: int | None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        return min(99, self.written * 100 // self.total) if self.total else 0


def _place() -> tuple[str, ZoneInfo]:
    return settings.get("default_region"), ZoneInfo(settings.get("timezone"))


def build(request: ExportRequest) -> Export:
    """Header, streamed rows and a file name for the request; NotFound for a campaign that does not exist."""
    if request.kind == "campaign":
        return _campaign_export(_campaign(request.params))
    return _log_export(MessageFilter.from_args(request.params))


def _campaign(params: dict[str, str]) -> Campaign:
    raw = str(params.get("campaign_id", ""))
    campaign = db.session.get(Campaign, int(raw)) if raw.isdigit() else None
    if campaign is None:
        raise NotFound("That campaign does not exist.")
    return campaign


def is_large(request: ExportRequest) -> bool:
    """Whether the export has more than LARGE rows (read from the counters, or counted no further than that)."""
    if request.kind == "campaign":
        return _campaign(request.params).targeted > LARGE
    region, zone = _place()
    return message_log.count_up_to(MessageFilter.from_args(request.params), region, zone, LARGE) > LARGE


def expected_rows(request: ExportRequest) -> int:
    if request.kind == "campaign":
        return _campaign(request.params).targeted
    region, zone = _place()
    return message_log.count_all(MessageFilter.from_args(request.params), region, zone)


def _campaign_export(campaign: Campaign) -> Export:
    _, zone = _place()
    header = ["Phone", "Name", "Status", *_time_headers(zone), "Error code", "Error", "Explanation", "Replied"]
    statement = (select(Contact.phone, Contact.name, Message.status, *[getattr(Message, name) for name in TIMES],
                        Message.error_code, Message.error_title, Message.error_detail)
                 .join(Contact, Contact.id == Message.contact_id).where(Message.campaign_id == campaign.id)
                 .order_by(Message.id).execution_options(yield_per=BATCH))
    explain_cached = _explainer()

    def rows():
        for phone, name, status, *rest in db.session.execute(statement):
            times, (code, title, detail) = rest[:len(TIMES)], rest[len(TIMES):]
            yield [phone, name, STATUSES.get(status, status), *[local_time(value, zone) for value in times],
                   code, *explain_cached(code, title, detail, status), "yes" if times[-1] else "no"]

    return Export(header, rows(), "Recipients")


def _log_export(criteria: MessageFilter) -> Export:
    region, zone = _place()
    header = [time_heading("Created at", zone), "Direction", "Phone", "Name", "Campaign", "Status",
              *_time_headers(zone), "Error code", "Error", "Explanation", "Message text"]
    statement = (select(Message.created_at, Message.direction, Contact.phone, Contact.name, Message.campaign_id,
                        Message.status, *[getattr(Message, name) for name in TIMES], Message.error_code,
                        Message.error_title, Message.error_detail, Message.body)
                 .join(Contact, Contact.id == Message.contact_id)
                 .where(*message_log.conditions(criteria, region, zone))
                 .order_by(Message.created_at.desc(), Message.id.desc()).execution_options(yield_per=BATCH))
    names, explain_cached = message_log.campaign_names(), _explainer()

    def rows():
        for created, direction, phone, name, campaign_id, status, *rest in db.session.execute(statement):
            times, (code, title, detail, body) = rest[:len(TIMES)], rest[len(TIMES):]
            yield [local_time(created, zone), "received" if direction == "in" else "sent", phone, name,
                   names.get(campaign_id, ""), STATUSES.get(status, status), *[local_time(v, zone) for v in times],
                   code, *explain_cached(code, title, detail, status), body]

    return Export(header, rows(), "Messages")


def _time_headers(zone: ZoneInfo) -> list[str]:
    return [time_heading(label, zone) for label in TIME_LABELS]


def _explainer() -> Callable[..., tuple[str, str]]:
    """explain() for each failed row, remembered per distinct error (a handful per export)."""
    seen: dict[tuple, tuple[str, str]] = {}

    def explained(code, title, detail, status) -> tuple[str, str]:
        if code is None and status != "failed":
            return "", ""
        key = (code, title, detail)
        if key not in seen:
            seen[key] = explain(code, title, detail)
        return seen[key]

    return explained


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "campaign"


def filename(request: ExportRequest) -> str:
    """The download's name, e.g. diwali-offer-recipients.csv or messages-2025-11-02.xlsx."""
    if request.kind == "campaign":
        return f"{_slug(_campaign(request.params).name)}-recipients.{request.fmt}"
    return f"messages-{utcnow().astimezone(_place()[1]):%Y-%m-%d}.{request.fmt}"


def csv_download(request: ExportRequest) -> Iterator[str]:
    """CSV text chunks for a download streamed straight to the browser."""
    export = build(request)
    return spreadsheets.csv_stream(export.header, export.rows)


def xlsx_download(request: ExportRequest):
    """An open temporary XLSX file for a download."""
    export = build(request)
    return spreadsheets.xlsx_file(export.header, islice(export.rows, XLSX_MAX_ROWS), sheet_title=export.sheet_title)


def write_file(export_id: str, request: ExportRequest, progress: Callable[[int, int], None]) -> Path:
    """Write the export under INSTANCE_DIR/exports (complete or not at all), reporting progress as it goes."""
    directory = exports_dir()
    remove_old_files(directory)
    total = expected_rows(request)
    if request.fmt == "xlsx":
        total = min(total, XLSX_MAX_ROWS)
    export = build(request)
    rows = _counted(export.rows, total, progress)
    partial = directory / f"{export_id}.{request.fmt}.part"
    partial.touch(mode=0o600)  # customers' phone numbers: for the app's user only, whatever the process umask
    if request.fmt == "csv":
        with partial.open("w", encoding="utf-8", newline="") as handle:
            handle.writelines(spreadsheets.csv_stream(export.header, rows))
    else:
        with spreadsheets.xlsx_file(export.header, islice(rows, XLSX_MAX_ROWS), export.sheet_title) as temporary, \
                partial.open("wb") as handle:
            shutil.copyfileobj(temporary, handle)
    final = export_path(export_id, request.fmt)
    partial.replace(final)
    return final


def _counted(rows: Iterable[list], total: int, progress: Callable[[int, int], None]) -> Iterator[list]:
    written = 0
    for written, row in enumerate(rows, start=1):  # noqa: B007 - `written` is read after the loop
        yield row
        if written % PROGRESS_EVERY == 0:
            progress(written, total)
    progress(written, max(total, written))


def exports_dir() -> Path:
    return private_folder(Path(current_app.config["INSTANCE_DIR"]) / "exports")


def export_path(export_id: str, fmt: str) -> Path:
    return exports_dir() / f"{export_id}.{fmt}"


def remove_old_files(directory: Path) -> None:
    """Exports are kept for a day, as long as their job's record in Redis."""
    cutoff = time.time() - KEEP_FILES_SECONDS
    for path in directory.iterdir():
        if path.is_file() and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)


def job_meta(request: ExportRequest, user_id: int | None) -> dict:
    """The job meta an export starts with; the job adds progress (`written`, `total`) and `error`."""
    return {"fmt": request.fmt, "filename": filename(request), "user_id": user_id, "written": 0, "total": None}


def progress_meta(written: int, total: int | None) -> dict:
    return {"written": written, "total": total}


def failure_meta(error: Exception) -> dict:
    return {"error": f"The export stopped because of an unexpected error ({type(error).__name__}). "
                     "Try again; if it keeps failing, tell your administrator."}


def export_status(export_id: str, user_id: int, is_admin: bool) -> ExportStatus:
    """An export's progress from its job; NotFound if unknown, expired, or someone else's."""
    job = _job(export_id)
    meta = job.meta or {}
    if meta.get("user_id") != user_id and not is_admin:
        raise NotFound("That export does not exist or has expired.")
    state = _state(job.get_status(refresh=False), export_id, meta.get("fmt", "csv"))
    error = (meta.get("error") or GONE) if state == "failed" else None
    return ExportStatus(export_id, state, int(meta.get("written") or 0), meta.get("total"),
                        meta.get("filename", "export"), meta.get("fmt", "csv"), meta.get("user_id"), error)


def _job(export_id: str) -> Job:
    if not EXPORT_ID.match(export_id or ""):
        raise NotFound("That export does not exist or has expired.")
    try:
        return Job.fetch(JOB_PREFIX + export_id, connection=redis_connection())
    except (NoSuchJobError, RedisError) as error:
        raise NotFound("That export does not exist or has expired.") from error


def _state(status: JobStatus | None, export_id: str, fmt: str) -> str:
    if status == JobStatus.FINISHED:
        return "done" if export_path(export_id, fmt).exists() else "failed"
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return "failed"
    return "running" if status == JobStatus.STARTED else "queued"


def finished_file(export_id: str, user_id: int, is_admin: bool) -> tuple[Path, str, str]:
    """(path, download name, mimetype) of a finished export; NotFound otherwise."""
    status = export_status(export_id, user_id, is_admin)
    if status.state != "done":
        raise NotFound("That export is not ready.")
    mimetype = CSV_MIMETYPE if status.fmt == "csv" else XLSX_MIMETYPE
    return export_path(export_id, status.fmt), status.filename, mimetype
