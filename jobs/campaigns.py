"""Campaign jobs: send batches, start scheduled campaigns, sweep. This module owns their enqueue helpers.

A campaign sends in a few parallel lanes (SEND_PARALLEL_BATCHES), so several workers can share one campaign; each
lane is queued through jobs.lanes, so it has at most one live job and is never queued twice.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime

from rq.job import Job
from rq_scheduler import Scheduler

from app.queues import DEFAULT, redis_connection
from app.services.campaigns import batches as campaign_batches
from app.services.campaigns import lanes as campaign_lanes
from app.services.campaigns import lifecycle
from app.services.campaigns import sweep as campaign_sweep
from jobs.lanes import enqueue_lane
from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks
from jobs.sending import sweep_direct

log = logging.getLogger(__name__)

BATCH_TIMEOUT = 10 * 60  # a batch holds seconds of sends; this only catches a hung one
LAUNCH_TIMEOUT = 60 * 60  # materialising a million recipients on a slow database
LANE_BUDGET_SECONDS = 30  # how long one job goes on sending a lane's batches before queueing the next
START_JOB_PREFIX = "campaign-start-"


def send_batch(campaign_id: int, lane: int = 0) -> dict:
    """Send this lane's due batches back to back (for up to LANE_BUDGET_SECONDS), then queue its next batch; on an
    unexpected error pause the campaign with the reason (claimed messages wait for the sweeper) and re-raise."""
    try:
        # Going on in this job spares each batch a round of queueing, a worker's pickup and a fork; the budget
        # hands the worker back to other campaigns' lanes. Each batch re-checks the campaign, so pause and cancel
        # still take effect within one batch.
        lane_report = campaign_lanes.send_lane(campaign_id, LANE_BUDGET_SECONDS)
    except Exception as error:
        log.exception("send batch for campaign %s failed", campaign_id)
        _pause_after(campaign_id, error)
        raise
    # The batch that finished the campaign committed its campaign.finished event: deliver it now, not at the sweep.
    enqueue_deliver_outbound_webhooks()
    report = lane_report.next
    if report.next_step == campaign_batches.NOW:
        enqueue_send_batch(campaign_id, lane=lane)
    elif report.next_step == campaign_batches.LATER:
        enqueue_send_batch(campaign_id, delay=report.delay, lane=lane)
    return {"campaign_id": campaign_id, "batches": lane_report.batches, "claimed": lane_report.claimed,
            "sent": lane_report.sent, "next_step": report.next_step, "delay": report.delay}


def _pause_after(campaign_id: int, error: Exception) -> None:
    try:
        campaign_batches.pause_running(campaign_id, f"Sending stopped after an unexpected error "
                                                    f"({type(error).__name__}). Resume the campaign to try again.")
    except Exception:
        log.exception("could not pause campaign %s", campaign_id)


def enqueue_send_batch(campaign_id: int, delay: float | None = None, lane: int | None = None) -> list[Job]:
    """Queue the next batch of every lane (or of one), now or after `delay` seconds; lanes already queued or
    running are left alone. Returns the jobs queued."""
    lanes = range(campaign_batches.parallel_batches()) if lane is None else (lane,)
    jobs = [_enqueue_lane(campaign_id, number, delay) for number in lanes]
    return [job for job in jobs if job is not None]


def _enqueue_lane(campaign_id: int, lane: int, delay: float | None) -> Job | None:
    return enqueue_lane(f"send-batch-{campaign_id}-{lane}", DEFAULT, send_batch, campaign_id, lane, delay=delay,
                        timeout=BATCH_TIMEOUT, description=f"campaign {campaign_id}: send batch (lane {lane})")


def launch_scheduled(campaign_id: int) -> dict:
    """A scheduled start came due: launch the campaign (or a new run of a recurring one) and queue the next start."""
    run = lifecycle.start_scheduled(campaign_id)
    enqueue_deliver_outbound_webhooks()  # a run that could not start, or a recurring one past its end, finished
    if run.run_id is not None:
        enqueue_send_batch(run.run_id)
    if run.next_at is not None:
        schedule_start(campaign_id, run.next_at)
    return {"run_id": run.run_id, "next_at": run.next_at.isoformat() if run.next_at else None}


def schedule_start(campaign_id: int, at: datetime) -> Job:
    """Have rq-scheduler run launch_scheduled for this campaign at `at` (one job id per start time)."""
    job_id = f"{START_JOB_PREFIX}{campaign_id}-{int(at.timestamp())}"
    return _scheduler().enqueue_at(at, launch_scheduled, campaign_id, job_id=job_id, queue_name=DEFAULT,
                                   timeout=LAUNCH_TIMEOUT, job_result_ttl=24 * 60 * 60,
                                   job_description=f"campaign {campaign_id}: scheduled start")


def unschedule_start(campaign_id: int) -> int:
    """Forget every scheduled start of this campaign; returns how many there were."""
    scheduler = _scheduler()
    jobs = _scheduled_starts(scheduler, campaign_id)
    for job in jobs:
        scheduler.cancel(job)
    return len(jobs)


def _scheduled_starts(scheduler: Scheduler, campaign_id: int) -> list[Job]:
    prefix = f"{START_JOB_PREFIX}{campaign_id}-"
    return [job for job in scheduler.get_jobs() if job.id.startswith(prefix)]


def _scheduler() -> Scheduler:
    return Scheduler(queue_name=DEFAULT, connection=redis_connection())


def sweep() -> dict:
    """Settle stuck messages of every source, complete finished campaigns, and rebuild lost work from the database:
    batches of running campaigns with due messages, the scheduled starts of scheduled campaigns, and the direct lane
    when messages sent on their own are due."""
    report = campaign_sweep.sweep()
    enqueue_deliver_outbound_webhooks()  # campaigns the sweep completed
    queued = sum(len(enqueue_send_batch(campaign_id)) for campaign_id in report.due)
    rescheduled = _restore_scheduled_starts(report.scheduled)
    direct = sweep_direct()
    log.info("sweep: %s, %s batches queued, %s starts rescheduled", report, queued, rescheduled)
    return {**asdict(report), "batches_queued": queued, "starts_rescheduled": rescheduled, **direct}


def _restore_scheduled_starts(campaign_ids: list[int]) -> int:
    scheduler, restored = _scheduler(), 0
    for campaign_id in campaign_ids:
        if _scheduled_starts(scheduler, campaign_id):
            continue
        at = lifecycle.overdue_or_next_start(campaign_id)
        if at is not None:
            schedule_start(campaign_id, at)
            restored += 1
    return restored
