"""What the background machinery is doing: workers, queues, scheduled and failed jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import FailedJobRegistry, ScheduledJobRegistry
from rq_scheduler import Scheduler

from app.extensions import db
from app.queues import QUEUE_NAMES, get_queue, redis_connection
from app.services.admin import audit
from app.services.errors import NotFound, ServiceError

FAILED_SHOWN = 50


@dataclass
class WorkerInfo:
    name: str
    hostname: str
    pid: int | None
    state: str
    current_job: str | None
    last_heartbeat: datetime | None


@dataclass
class JobInfo:
    id: str
    queue: str
    description: str
    when: datetime | None
    error: str = ""


def workers() -> list[WorkerInfo]:
    result = []
    for worker in Worker.all(connection=redis_connection()):
        job = worker.get_current_job()
        result.append(WorkerInfo(worker.name, worker.hostname or "", worker.pid, worker.get_state(),
                                 job.description if job else None, worker.last_heartbeat))
    return sorted(result, key=lambda info: info.name)


def queue_depths() -> dict[str, int]:
    return {name: get_queue(name).count for name in QUEUE_NAMES}


def scheduled_jobs() -> list[JobInfo]:
    """Periodic and future jobs: rq-scheduler's (recurring work) and RQ's own delayed retries."""
    connection = redis_connection()
    jobs = [JobInfo(job.id, job.origin, _describe(job), _aware(when))
            for job, when in Scheduler(connection=connection).get_jobs(with_times=True)]
    for name in QUEUE_NAMES:
        registry = ScheduledJobRegistry(name, connection=connection)
        for job_id in registry.get_job_ids():
            job = _fetch(job_id)
            if job:
                jobs.append(JobInfo(job.id, name, _describe(job), registry.get_scheduled_time(job_id)))
    return sorted(jobs, key=lambda info: info.when or datetime.max.replace(tzinfo=UTC))


def failed_jobs() -> list[JobInfo]:
    jobs = []
    for name in QUEUE_NAMES:
        registry = FailedJobRegistry(name, connection=redis_connection())
        for job_id in registry.get_job_ids(0, FAILED_SHOWN - 1):
            job = _fetch(job_id)
            if job:
                jobs.append(JobInfo(job.id, name, _describe(job), _aware(job.ended_at), _last_error_line(job)))
    return sorted(jobs, key=lambda info: info.when or datetime.min.replace(tzinfo=UTC), reverse=True)


def retry_failed(job_id: str) -> None:
    """Put a failed job back on its queue."""
    job = _failed_job(job_id)
    FailedJobRegistry(job.origin, connection=redis_connection()).requeue(job)
    audit.record("job.retry", f"Retried failed job {_describe(job)}", target=job_id)
    db.session.commit()


def discard_failed(job_id: str) -> None:
    """Forget a failed job for good."""
    job = _failed_job(job_id)
    FailedJobRegistry(job.origin, connection=redis_connection()).remove(job, delete_job=True)
    audit.record("job.discard", f"Discarded failed job {_describe(job)}", target=job_id)
    db.session.commit()


def _failed_job(job_id: str) -> Job:
    job = _fetch(job_id)
    if job is None or job.id not in FailedJobRegistry(job.origin, connection=redis_connection()):
        raise NotFound("That failed job no longer exists; it may have been retried or discarded already.")
    return job


def _fetch(job_id: str) -> Job | None:
    try:
        return Job.fetch(job_id, connection=redis_connection())
    except (NoSuchJobError, RedisError):
        return None
    except Exception as error:  # a job whose function can no longer be imported still deserves a row
        raise ServiceError(f"Job {job_id} cannot be read: {error}") from error


def _describe(job: Job) -> str:
    return job.description or job.func_name


def _last_error_line(job: Job) -> str:
    result = job.latest_result()
    text = (result.exc_string if result and result.exc_string else job.exc_info) or ""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "failed without an error message"


def _aware(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
