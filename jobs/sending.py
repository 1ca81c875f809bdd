"""The direct lane: messages sent on their own (inbox replies, auto-replies, opt-out confirmations …), and its
sweep. This module owns their enqueue helpers; sources queue the lane after committing their messages.
"""

from __future__ import annotations

import logging
import time

from redis.exceptions import RedisError
from rq.job import Job

from app.queues import HIGH
from app.services.api.outbound import events as outbound_events
from app.services.sending import direct
from jobs.lanes import enqueue_lane
from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks

log = logging.getLogger(__name__)
LANE = "send-direct"
BUDGET_SECONDS = 30  # how long one job goes on sending before it hands the worker back
TIMEOUT = 5 * 60


def send_direct() -> dict:
    """Send every due message sent on its own, batch after batch, then queue the lane again for the next one due."""
    deadline, claimed, sent = time.monotonic() + BUDGET_SECONDS, 0, 0
    while time.monotonic() < deadline:
        report = direct.send_due(outbound_events.stopped_marketing)
        claimed, sent = claimed + report.claimed, sent + report.sent
        if not report.claimed:
            break
    enqueue_deliver_outbound_webhooks()  # contacts a send found opted out (131050), if anyone listens
    wait = direct.next_due_in()
    if wait is not None:
        enqueue_send_direct(delay=wait)
    return {"claimed": claimed, "sent": sent, "next_in": wait}


def sweep_direct() -> dict:
    """Periodic: queue the lane when messages are due but no job will send them (Redis lost it, a retry came due)."""
    wait = direct.next_due_in()
    if wait is not None:
        enqueue_send_direct(delay=wait)
    return {"next_in": wait}


def enqueue_send_direct(delay: float | None = None) -> Job | None:
    """Queue the direct lane now (or after `delay` seconds); if Redis is down the rows wait for the sweep."""
    try:
        return enqueue_lane(LANE, HIGH, send_direct, delay=delay, timeout=TIMEOUT,
                            description="send messages sent on their own (replies, confirmations)")
    except RedisError as error:
        log.warning("could not queue the direct lane (%s); the sweep will", error)
        return None
