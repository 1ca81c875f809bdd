"""Periodic work declared as data in one place; scheduler.py registers it at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rq_scheduler import Scheduler

from app.queues import LOW


@dataclass(frozen=True)
class PeriodicJob:
    func: str  # dotted path, so the scheduler does not import job code it never runs
    cron: str  # crontab syntax, UTC
    queue: str = LOW
    timeout: int = 600


# Later features add their sweepers and syncs here.
PERIODIC_JOBS: list[PeriodicJob] = []


def register_periodic_jobs(scheduler: Scheduler, jobs: list[PeriodicJob] | None = None) -> list[Any]:
    """Replace the scheduled copies of our periodic jobs, so a restart never registers duplicates."""
    jobs = PERIODIC_JOBS if jobs is None else jobs
    wanted = {job.func for job in jobs}
    for existing in scheduler.get_jobs():
        if existing.meta.get("periodic") in wanted:
            scheduler.cancel(existing)
    return [_schedule(scheduler, job) for job in jobs]


def _schedule(scheduler: Scheduler, job: PeriodicJob):
    return scheduler.cron(job.cron, func=job.func, queue_name=job.queue, timeout=job.timeout,
                          meta={"periodic": job.func}, use_local_timezone=False)
