"""Queueing a lane: a job that may queue its own successor while it runs, and is never queued twice.

A lane has at most one live job; its id alternates between two fixed names ("<name>-a", "<name>-b"), so a running
job can queue the next one under the other name, and a lane is never queued twice however often a view, a job or
the sweeper asks. Shared by campaign lanes (jobs.campaigns) and the direct lane (jobs.sending).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus, get_current_job

from app.queues import get_queue, redis_connection

STALE_HEARTBEAT_SECONDS = 120  # a started job silent this long lost its worker


def enqueue_lane(name: str, queue: str, func: Callable, *args, delay: float | None = None, timeout: int,
                 description: str) -> Job | None:
    """Queue `func(*args)` as lane `name`, now or after `delay` seconds, unless the lane's job is already queued or
    running (a job wanted now replaces one scheduled for later). Returns the job queued, if any."""
    current = get_current_job()
    names = [f"{name}-{parity}" for parity in "ab"]
    others = [job_id for job_id in names if current is None or job_id != current.id]
    for job in Job.fetch_many(others, connection=redis_connection()):
        if job is not None and _alive(job, later_is_enough=bool(delay)):
            return None
        if job is not None:
            _forget(job)  # done, failed, lost with its worker, or not due soon enough: make room under the name
    options = {"job_id": others[0], "job_timeout": timeout, "result_ttl": 0, "failure_ttl": 24 * 60 * 60,
               "unique": True, "description": description}
    try:
        if delay and delay > 0:
            return get_queue(queue).enqueue_in(timedelta(seconds=delay), func, *args, **options)
        return get_queue(queue).enqueue(func, *args, **options)
    except DuplicateJobError:
        return None  # queued by someone else a moment ago


def _forget(job: Job) -> None:
    """Delete a lane's old job; one whose worker was killed mid-run has no execution record left."""
    try:
        job.delete()
    except ValueError:
        # RQ 3 raises "Execution … not found" for a job a SIGKILLed worker was running: drop its keys directly.
        for registry in (job.failed_job_registry, job.finished_job_registry):
            registry.remove(job.id)
        redis_connection().delete(job.key, job.dependents_key, job.dependencies_key)


def _alive(job: Job, later_is_enough: bool) -> bool:
    """Whether the lane's job will run (or runs): a job wanted now replaces one scheduled for later."""
    status = job.get_status(refresh=False)
    if status == JobStatus.SCHEDULED:
        return later_is_enough
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED):
        return True
    if status != JobStatus.STARTED:
        return False
    beat = job.last_heartbeat or job.started_at
    return beat is not None and _utc(beat) > datetime.now(UTC) - timedelta(seconds=STALE_HEARTBEAT_SECONDS)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
