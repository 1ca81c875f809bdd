"""Contact import jobs: one job runs one import, from its stored file or (an API bulk upsert) its stored contacts."""

from __future__ import annotations

import logging

from rq.job import Job

from app.queues import DEFAULT, HIGH, get_queue
from app.services.api import bulk
from app.services.contacts import imports

log = logging.getLogger(__name__)

JOB_TIMEOUT = 2 * 60 * 60  # a million-row file on a slow database, with room to spare


def import_contacts(import_id: int) -> None:
    """Run one contact import; on an unexpected error record it as failed, then re-raise for RQ."""
    _run(imports.run_import, import_id)


def upsert_contacts_in_bulk(import_id: int) -> None:
    """Run one API bulk upsert too large for its request; on an unexpected error record it as failed, re-raise."""
    _run(bulk.run_bulk, import_id)


def _run(work, import_id: int) -> None:
    try:
        work(import_id)
    except Exception as error:
        log.exception("contact import %s failed", import_id)
        message = (f"The import stopped because of an unexpected error ({type(error).__name__}). "
                   "Rows written before it have been kept.")
        imports.mark_failed(import_id, message)
        raise


def enqueue_import(import_id: int) -> Job:
    """Queue an import on the high-priority queue; one job id per import, so a double submit queues it once."""
    job = get_queue(HIGH).enqueue(
        import_contacts, import_id, job_id=f"contact-import-{import_id}", job_timeout=JOB_TIMEOUT,
        result_ttl=24 * 60 * 60, failure_ttl=7 * 24 * 60 * 60,
    )
    imports.record_job(import_id, job.id)
    return job


def enqueue_bulk_upsert(import_id: int) -> Job:
    """Queue an API bulk upsert: on the default queue, so a business's nightly sync waits behind staff's imports and
    replies rather than ahead of them; one job id per import."""
    job = get_queue(DEFAULT).enqueue(
        upsert_contacts_in_bulk, import_id, job_id=f"contact-import-{import_id}", job_timeout=JOB_TIMEOUT,
        result_ttl=24 * 60 * 60, failure_ttl=7 * 24 * 60 * 60,
    )
    imports.record_job(import_id, job.id)
    return job
