"""Webhook jobs: process a stored event, sweep up events and confirmations left behind, send opt-out confirmations."""

from __future__ import annotations

import logging

from flask import current_app
from redis.exceptions import RedisError
from rq.job import Job

from app.queues import HIGH, get_queue
from app.services import opt_out, webhook_events, webhook_processing
from app.whatsapp.client import WhatsAppClient
from app.whatsapp.settings import WhatsAppSettings

log = logging.getLogger(__name__)

RESULT_TTL = 10 * 60
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
    """Queue processing of a stored event; if Redis is down, log it and leave the stored event to the sweeper."""
    try:
        return get_queue(HIGH).enqueue(process_webhook_event, event_id, job_id=f"webhook-event-{event_id}",
                                       job_timeout=5 * 60, result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
    except RedisError as error:
        log.warning("could not queue webhook event %s (%s); the sweeper will process it", event_id, error)
        return None


def enqueue_send_opt_out_confirmation(contact_id: int) -> Job | None:
    """Queue the confirmation send; one job id per contact, and the pending row makes a double send impossible."""
    try:
        return get_queue(HIGH).enqueue(send_opt_out_confirmation, contact_id,
                                       job_id=f"opt-out-confirmation-{contact_id}", job_timeout=2 * 60,
                                       result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL)
    except RedisError as error:
        log.warning("could not queue the opt-out confirmation for contact %s (%s); the sweeper will", contact_id, error)
        return None
