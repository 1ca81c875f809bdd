"""Export jobs: one job writes one large export file and reports its progress in its job meta."""

from __future__ import annotations

import logging
import uuid

from rq.job import get_current_job

from app.queues import HIGH, get_queue
from app.services.analytics import message_export
from app.services.analytics.message_export import JOB_PREFIX, ExportRequest

log = logging.getLogger(__name__)

JOB_TIMEOUT = 2 * 60 * 60  # a million rows to XLSX on a slow database, with room to spare
KEEP_SECONDS = message_export.KEEP_FILES_SECONDS


def export_messages(export_id: str, kind: str, params: dict[str, str], fmt: str) -> dict:
    """Write one export file; on an unexpected error record why in the job meta, then re-raise for RQ."""
    job = get_current_job()
    request = ExportRequest(kind, params, fmt)

    def report(written: int, total: int) -> None:
        if job is not None:
            job.meta.update(message_export.progress_meta(written, total))
            job.save_meta()

    try:
        path = message_export.write_file(export_id, request, report)
    except Exception as error:
        log.exception("export %s failed", export_id)
        if job is not None:
            job.meta.update(message_export.failure_meta(error))
            job.save_meta()
        raise
    return {"path": str(path)}


def enqueue_export(request: ExportRequest, user_id: int | None) -> str:
    """Queue a large export on the user-facing queue; returns the export id its progress page uses."""
    export_id = uuid.uuid4().hex
    get_queue(HIGH).enqueue(
        export_messages, export_id, request.kind, dict(request.params), request.fmt,
        job_id=JOB_PREFIX + export_id, job_timeout=JOB_TIMEOUT, result_ttl=KEEP_SECONDS, failure_ttl=KEEP_SECONDS,
        meta=message_export.job_meta(request, user_id), description=f"export {request.kind} as {request.fmt}",
    )
    return export_id
