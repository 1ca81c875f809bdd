"""Outbound webhook jobs: deliver the outbox in batches after the commits that filled it, wake up for retries, and
sweep every minute so nothing is lost if Redis drops a job.

Up to OUTBOUND_WEBHOOK_PARALLEL_JOBS delivery jobs run at once, each holding a slot flag in Redis: queuing one when
every slot is taken costs a failed SET NX and nothing else. A job that finds a full batch asks for a helper in a
free slot, so a burst is spread over the workers, and frees its slot only when nothing is left.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job

from app.clock import utcnow
from app.queues import HIGH, LOW, get_queue, redis_connection
from app.services.api.outbound import delivery, events

log = logging.getLogger(__name__)

SLOT_KEY = "outbound-webhooks:slot:{}"
SLOT_TTL = 120  # a job killed with its worker frees its slot within two minutes (the sweep then takes over)
BUDGET_SECONDS = 120  # then the worker is handed back to other work
SWEEP_BUDGET_SECONDS = 45  # the sweep runs every minute
RETRY_JOB_ID = "outbound-webhooks-retry-{}"
RESULT_TTL = 10 * 60
FAILURE_TTL = 7 * 24 * 60 * 60


def deliver_outbound_webhooks(slot: int = 0) -> dict[str, int]:
    """Fan out new events and post due deliveries, batch after batch, until none is left or the budget is spent."""
    try:
        return _deliver_until(time.monotonic() + BUDGET_SECONDS, slot)
    finally:
        _free(slot)
        # Events committed by someone who saw the slot still taken: their enqueue did nothing, so look once more.
        if delivery.work_left():
            _queue()
        _wake_for_retries()


def sweep_outbound_webhooks() -> dict[str, int]:
    """Periodic: what no job was queued for (a lost job, a campaign that finished, retries that came due); and
    the log kept to OUTBOUND_WEBHOOK_KEEP_DAYS, a slice at a time."""
    report = _deliver_until(time.monotonic() + SWEEP_BUDGET_SECONDS, None)
    _wake_for_retries()
    report["purged"] = delivery.purge_older_than(current_app.config["OUTBOUND_WEBHOOK_KEEP_DAYS"])
    return report


def _deliver_until(deadline: float, slot: int | None) -> dict[str, int]:
    totals = {"events": 0, "delivered": 0, "failed": 0}
    while time.monotonic() < deadline:
        fanned = delivery.fan_out()
        report = delivery.deliver_due()
        totals["events"] += fanned
        totals["delivered"] += report.delivered
        totals["failed"] += report.failed
        if slot is not None:
            _keep(slot)
        if report.attempted >= current_app.config["OUTBOUND_WEBHOOK_BATCH_SIZE"]:
            _queue(helper=True)  # more where that came from: let another worker help
        elif not fanned and not report.attempted:
            break
    return totals


def enqueue_deliver_outbound_webhooks(force: bool = False) -> Job | None:
    """After a commit that may have emitted events: make sure a delivery job will run. Cheap when none was emitted
    (a flag in this process) or a job already runs (a failed SET NX). If Redis is down, the sweep delivers them."""
    if not (events.take_emitted() or force):
        return None
    try:
        return _queue()
    except RedisError as error:
        log.warning("could not queue outbound webhook deliveries (%s); the sweep will send them", error)
        return None


def _queue(helper: bool = False) -> Job | None:
    """Take the first slot (or, for a helper, another free one) and queue a job for it; None when taken."""
    parallel = current_app.config["OUTBOUND_WEBHOOK_PARALLEL_JOBS"]
    for slot in range(1, parallel) if helper else (0,):
        if redis_connection().set(SLOT_KEY.format(slot), 1, nx=True, ex=SLOT_TTL):
            return get_queue(HIGH).enqueue(deliver_outbound_webhooks, slot, job_timeout=10 * 60,
                                           result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
    return None


def _keep(slot: int) -> None:
    redis_connection().expire(SLOT_KEY.format(slot), SLOT_TTL)


def _free(slot: int) -> None:
    try:
        redis_connection().delete(SLOT_KEY.format(slot))
    except RedisError:
        pass  # the flag expires by itself


def _wake_for_retries() -> None:
    """Queue one job for when the earliest retry is due (rounded to 10 s, so many failures share one job)."""
    due = delivery.next_retry_at()
    if due is None or due <= utcnow():
        return
    _schedule_at(datetime.fromtimestamp((int(due.timestamp()) // 10 + 1) * 10, tz=due.tzinfo))


def _schedule_at(when: datetime) -> None:
    try:
        get_queue(LOW).enqueue_at(when, sweep_outbound_webhooks, job_id=RETRY_JOB_ID.format(int(when.timestamp())),
                                  job_timeout=5 * 60, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
    except RedisError as error:
        log.warning("could not schedule the outbound webhook retry job (%s); the sweep will retry", error)
