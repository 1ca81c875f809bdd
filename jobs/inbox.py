"""Inbox jobs: send a contact's pending replies (staff and auto-replies), and sweep up replies left behind.

This module owns their enqueue helpers. Auto-replies are queued from inside webhook processing, which may not
import jobs, so it names `send_replies` by its dotted path (app.services.inbox.auto_replies.SEND_JOB).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis.exceptions import RedisError
from rq.job import Job

from app.queues import HIGH, get_queue, redis_connection
from app.services.inbox import replies as inbox_replies
from app.services.sending.rate_limit import RateLimiter
from app.services.sending.sender import whatsapp_settings
from app.whatsapp.client import WhatsAppClient

log = logging.getLogger(__name__)
RESULT_TTL = 10 * 60
FAILURE_TTL = 7 * 24 * 60 * 60


def send_replies(contact_id: int) -> dict:
    """Send the contact's due replies at the shared rate; a reply put back for a retry is queued again later."""
    settings = whatsapp_settings("")
    with WhatsAppClient(settings) as client:
        report = inbox_replies.send_pending(contact_id, client, RateLimiter(redis_connection()),
                                            settings.phone_number_id)
    if report.retry_in is not None:
        enqueue_send_replies(contact_id, delay=report.retry_in)
    return {"sent": report.sent, "retry_in": report.retry_in}


def sweep_replies() -> dict:
    """Periodic: queue contacts whose replies are still pending and due (Redis was down, a retry came due)."""
    contacts = inbox_replies.pending_contacts()
    for contact_id in contacts:
        enqueue_send_replies(contact_id)
    return {"contacts": len(contacts)}


def enqueue_send_replies(contact_id: int, delay: float | None = None) -> Job | None:
    """Queue the send of a contact's pending replies; if Redis is down the rows wait for the sweeper."""
    options = {"job_timeout": 5 * 60, "result_ttl": RESULT_TTL, "failure_ttl": FAILURE_TTL}
    queue = get_queue(HIGH)
    try:
        if delay and delay > 0:
            return queue.enqueue_in(timedelta(seconds=delay), send_replies, contact_id,
                                    job_id=f"inbox-replies-{contact_id}-retry", **options)
        return queue.enqueue(send_replies, contact_id, job_id=f"inbox-replies-{contact_id}", **options)
    except RedisError as error:
        log.warning("could not queue replies to contact %s (%s); the sweeper will", contact_id, error)
        return None
