"""Periodic work declared as data in one place; scheduler.py registers it at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rq_scheduler import Scheduler

from app.queues import DEFAULT, LOW


@dataclass(frozen=True)
class PeriodicJob:
    func: str  # dotted path, so the scheduler does not import job code it never runs
    cron: str  # crontab syntax, UTC
    queue: str = LOW
    timeout: int = 600


PERIODIC_JOBS: list[PeriodicJob] = [
    PeriodicJob("jobs.maintenance.apply_retention", cron="17 3 * * *"),  # daily, at a quiet hour
    # Every minute, on the sending queue: low-priority work would wait behind a campaign's batches.
    PeriodicJob("jobs.campaigns.sweep", cron="* * * * *", queue=DEFAULT, timeout=300),
    PeriodicJob("jobs.webhooks.sweep_webhook_events", cron="* * * * *"),  # every minute: retries, lost jobs
    PeriodicJob("jobs.templates.sync_templates", cron="23 * * * *"),  # hourly: Meta's verdicts, pauses, quality
    PeriodicJob("jobs.outbound_webhooks.sweep_outbound_webhooks", cron="* * * * *"),  # due retries, lost jobs
]


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
