"""Template sync job: copy the business account's message templates from Meta into our table."""

from __future__ import annotations

import logging

from rq.job import Job, JobStatus

from app.queues import HIGH, get_queue
from app.services.templates import library
from app.services.templates.library import TemplateSyncFailed

log = logging.getLogger(__name__)

JOB_ID = "sync-templates"  # one sync at a time: a second click while one waits joins it
JOB_TIMEOUT = 10 * 60
WAITING = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED)


def sync_templates(user_id: int | None = None) -> int:
    """Sync templates from Meta; the outcome (success or failure) is logged for the templates page."""
    try:
        return library.sync_from_meta(user_id).details.get("total", 0)
    except TemplateSyncFailed:
        raise  # already recorded with Meta's explanation
    except Exception as error:
        log.exception("template sync failed")
        library.record_sync_failure(f"An unexpected error stopped the sync ({type(error).__name__}).", user_id)
        raise


def enqueue_sync_templates(user_id: int | None = None) -> Job:
    """Queue a sync on the high-priority queue (staff are waiting for it), unless one is already waiting."""
    queue = get_queue(HIGH)
    existing = queue.fetch_job(JOB_ID)
    if existing is not None and existing.get_status(refresh=False) in WAITING:
        return existing
    return queue.enqueue(sync_templates, user_id, job_id=JOB_ID, job_timeout=JOB_TIMEOUT,
                         result_ttl=60 * 60, failure_ttl=7 * 24 * 60 * 60)
