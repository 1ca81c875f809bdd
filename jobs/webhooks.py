"""Webhook jobs: process stored events (in drains of many), and sweep up events left behind.

Messages that processing queues to send on their own (opt-out confirmations, auto-replies) go out through the direct
lane, queued here once their transaction has committed."""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from rq.job import Job

from app.queues import HIGH, get_queue, redis_connection
from app.services.webhooks import intake, processing
from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks
from jobs.sending import enqueue_send_direct

log = logging.getLogger(__name__)

RESULT_TTL = 10 * 60
DRAIN_QUEUED = "webhooks:drain-queued"
DRAIN_FLAG_TTL = 60  # a drain job killed with its worker frees the flag well inside the send grace period
DRAIN_BUDGET_SECONDS = 120  # then the worker is handed back, so a webhook flood never starves campaign sends
SWEEP_BUDGET_SECONDS = 45  # the sweeper runs every minute
# A drain keeps polling this long after the inbox empties. While webhooks stream in, one job then keeps going
# instead of ending at every lull and costing the next webhook an enqueue and the worker a fork (tens of ms of CPU).
DRAIN_IDLE_SECONDS = 1.0
DRAIN_POLL_SECONDS = 0.2
# How long a process trusts having seen the drain flag set. Under load this spares a Redis round trip per webhook
# (a fifth of what accepting one costs); it is also how long a drain waits before its last look.
FLAG_SEEN_SECONDS = 0.1
_flag_seen_until = 0.0  # per process: time.monotonic() until which the flag counts as set
FAILURE_TTL = 7 * 24 * 60 * 60


def process_webhook_event(event_id: int) -> str | None:
    """Apply one stored webhook event; on an unexpected error count the attempt on the event, then re-raise."""
    try:
        report = processing.process_event(event_id)
    except Exception as error:
        log.exception("webhook event %s failed", event_id)
        intake.record_failure(event_id, error)
        raise
    if report is None:
        return None
    if report.queued:
        enqueue_send_direct()
    return report.outcome


def sweep_webhook_events() -> dict[str, int]:
    """Periodic: retry unfinished events (unknown messages, lost jobs)."""
    deadline, swept, failures, after_id = time.monotonic() + SWEEP_BUDGET_SECONDS, 0, [], 0
    # The cursor visits each due event once per sweep: one still waiting for its message stays due.
    while time.monotonic() < deadline and (events := intake.claim_due(after_id)):
        after_id, swept = events[-1].id, swept + len(events)
        failures += _apply_batch(events)
    if failures:
        raise RuntimeError(f"{len(failures)} of {swept} webhook events failed again: {failures[:20]}")
    return {"events": swept}


def enqueue_process_webhook_event(event_id: int) -> Job | None:
    """Make sure a drain job will apply this stored event; if Redis is down, leave it to the sweeper.

    Jobs are coalesced: the flag stands for "a drain job is queued or running", so while one works through a burst
    each webhook costs at most a failed SET NX and nothing is enqueued; and a process that saw the flag less than
    FLAG_SEEN_SECONDS ago does not ask again. The job frees the flag only when it finds nothing left, and looks once
    more after FLAG_SEEN_SECONDS, so an event stored by a request that relied on an older sighting is not skipped.
    """
    global _flag_seen_until
    if time.monotonic() < _flag_seen_until:
        return None
    try:
        return _queue_drain(event_id)
    except RedisError as error:
        log.warning("could not queue webhook event %s (%s); the sweeper will process it", event_id, error)
        return None


def _queue_drain(event_id: int) -> Job | None:
    global _flag_seen_until
    queued = redis_connection().set(DRAIN_QUEUED, event_id, nx=True, ex=DRAIN_FLAG_TTL)
    _flag_seen_until = time.monotonic() + FLAG_SEEN_SECONDS  # set by us or by another: a drain is coming
    if not queued:
        return None
    return get_queue(HIGH).enqueue(process_new_webhook_events, job_timeout=10 * 60, result_ttl=RESULT_TTL,
                                   failure_ttl=FAILURE_TTL)


def process_new_webhook_events() -> dict[str, int]:
    """Apply every stored event not tried yet, a batch per transaction, until none is left or the budget is spent."""
    deadline, quiet_since, applied, failed = time.monotonic() + DRAIN_BUDGET_SECONDS, time.monotonic(), 0, 0
    while (now := time.monotonic()) < deadline:
        if events := intake.claim_new():
            failures = _apply_batch(events)
            applied, failed = applied + len(events) - len(failures), failed + len(failures)
            redis_connection().expire(DRAIN_QUEUED, DRAIN_FLAG_TTL)  # still working: no second drain needed
            quiet_since = time.monotonic()
            if len(events) < intake.BATCH_SIZE:
                # Caught up: let the next batch fill before claiming it. Per event, a batch of ten costs the
                # worker and the database about seven times what a batch of two hundred does.
                time.sleep(DRAIN_POLL_SECONDS)
        elif now - quiet_since < DRAIN_IDLE_SECONDS:
            time.sleep(DRAIN_POLL_SECONDS)
        elif _nothing_left():
            return {"applied": applied, "failed": failed}
    if not _nothing_left():  # budget spent: give the worker back, and queue the rest behind other jobs
        _queue_drain(0)
    return {"applied": applied, "failed": failed}


def _nothing_left() -> bool:
    """Free the flag, then look once more: a webhook stored before the flag went saw it set and queued nothing.

    The look waits FLAG_SEEN_SECONDS, for requests that skipped asking Redis because they saw the flag set a moment
    before it was freed: each of them committed its event before that sighting expired, so before this look.
    """
    redis_connection().delete(DRAIN_QUEUED)
    time.sleep(FLAG_SEEN_SECONDS)
    return not intake.any_new()


def _apply_batch(events: list[intake.ClaimedEvent]) -> list[int]:
    """One transaction for the batch; if it fails, each event on its own, so a bad event costs only itself.

    Returns the ids of the events that failed on their own too (logged and counted on the event for the sweeper).
    """
    try:
        reports = processing.process_claimed(events)
    except Exception:
        log.exception("a batch of %d webhook events failed; applying them one at a time", len(events))
        return _apply_one_by_one([event.id for event in events])
    if any(report.queued for report in reports):
        enqueue_send_direct()
    enqueue_deliver_outbound_webhooks()  # only if this batch emitted outbound events
    return []


def _apply_one_by_one(event_ids: list[int]) -> list[int]:
    failures = []
    for event_id in event_ids:
        try:
            process_webhook_event(event_id)
        except Exception:  # already logged and counted on the event; go on with the others
            failures.append(event_id)
    return failures
