"""Webhook jobs: process a stored event, sweep up events and confirmations left behind, send opt-out confirmations."""

from __future__ import annotations

import logging
import time

from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job

from app.queues import HIGH, get_queue, redis_connection
from app.services import opt_out, webhook_events, webhook_processing
from app.whatsapp.client import WhatsAppClient
from app.whatsapp.settings import WhatsAppSettings

log = logging.getLogger(__name__)

RESULT_TTL = 10 * 60
DRAIN_QUEUED = "webhooks:drain-queued"
DRAIN_FLAG_TTL = 60  # a drain job killed with its worker frees the flag well inside the send grace period
DRAIN_BUDGET_SECONDS = 120
FAILURE_TTL = 7 * 24 * 60 * 60


def process_webhook_event(event_id: int) -> str | None:
    """Apply one stored webhook event; on an unexpected error count the attempt on the event, then re-raise."""
    try:
        report = webhook_processing.process_event(event_id)
    except Exception as error:
        log.exception("webhook event %s failed", event_id)
        webhook_events.record_failure(event_id, error)
        raise
    if report is None:
        return None
    for contact_id in report.confirmations:
        enqueue_send_opt_out_confirmation(contact_id)
    return report.outcome


def sweep_webhook_events() -> dict[str, int]:
    """Periodic: retry unfinished events (unknown messages, lost jobs) and re-queue unsent opt-out confirmations."""
    failures = []
    events = webhook_events.due_for_retry()
    for event_id in events:
        try:
            process_webhook_event(event_id)
        except Exception:  # already logged and counted on the event; go on with the others
            failures.append(event_id)
    contacts = opt_out.awaiting_confirmation()
    for contact_id in contacts:
        enqueue_send_opt_out_confirmation(contact_id)
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(events)} webhook events failed again: {failures[:20]}")
    return {"events": len(events), "confirmations": len(contacts)}


def send_opt_out_confirmation(contact_id: int) -> int:
    """Send the contact's pending opt-out confirmation through the Cloud API; returns how many went out."""
    with WhatsAppClient(WhatsAppSettings.from_mapping(current_app.config)) as client:
        return opt_out.send_confirmations(contact_id, client)


def enqueue_process_webhook_event(event_id: int) -> Job | None:
    """Make sure a drain job will apply this stored event; if Redis is down, leave it to the sweeper.

    Jobs are coalesced: at a thousand statuses a second, one forked job per event would spend the machine on
    forking. The flag is cleared by the drain job before it reads the events, so nothing stored is skipped.
    """
    try:
        if not redis_connection().set(DRAIN_QUEUED, event_id, nx=True, ex=DRAIN_FLAG_TTL):
            return None
        return get_queue(HIGH).enqueue(process_new_webhook_events, job_timeout=10 * 60, result_ttl=RESULT_TTL,
                                       failure_ttl=FAILURE_TTL)
    except RedisError as error:
        log.warning("could not queue webhook event %s (%s); the sweeper will process it", event_id, error)
        return None


def process_new_webhook_events() -> dict[str, int]:
    """Apply every stored event not tried yet, oldest first, until none is left or the time budget is spent."""
    redis_connection().delete(DRAIN_QUEUED)
    deadline, applied, failed = time.monotonic() + DRAIN_BUDGET_SECONDS, 0, 0
    while time.monotonic() < deadline and (batch := webhook_events.never_tried()):
        for event_id in batch:
            try:
                process_webhook_event(event_id)
                applied += 1
            except Exception:  # logged and counted on the event; the sweeper retries it
                failed += 1
    if webhook_events.never_tried(limit=1):
        enqueue_process_webhook_event(0)  # budget spent: let another worker go on
    return {"applied": applied, "failed": failed}


def enqueue_send_opt_out_confirmation(contact_id: int) -> Job | None:
    """Queue the confirmation send; one job id per contact, and the pending row makes a double send impossible."""
    try:
        return get_queue(HIGH).enqueue(send_opt_out_confirmation, contact_id,
                                       job_id=f"opt-out-confirmation-{contact_id}", job_timeout=2 * 60,
                                       result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
    except RedisError as error:
        log.warning("could not queue the opt-out confirmation for contact %s (%s); the sweeper will", contact_id, error)
        return None
