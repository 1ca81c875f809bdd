"""The network half of dispatch: paced, concurrent sends over one keep-alive client per worker process.

Nothing here touches the database: the batch was claimed and rendered before, and results are written after,
so no connection is held while we wait on the rate limiter or on WhatsApp.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask import current_app

from app.queues import redis_connection
from app.services.rate_limit import Limit, RateLimiter
from app.whatsapp.client import SendResult, WhatsAppClient
from app.whatsapp.errors import ErrorAction
from app.whatsapp.settings import WhatsAppSettings

log = logging.getLogger(__name__)

# A send that would wait longer than this for the rate limiter is left for the next batch, so a batch never
# outlives its job even when many campaigns share one sender.
MAX_RATE_WAIT_SECONDS = 30.0
_HALTING = (ErrorAction.PAUSE, ErrorAction.STOP)


@dataclass(frozen=True)
class SendItem:
    message_id: int
    to: str
    components: list[dict[str, Any]]
    callback: str  # biz_opaque_callback_data: "c{campaign_id}:{message_id}", the message id after the last ':'


@dataclass(frozen=True)
class SendPlan:
    """What every send of one batch shares."""

    template_name: str
    language: str
    phone_number_id: str
    limits: list[Limit]


@dataclass(frozen=True)
class Outcome:
    message_id: int
    result: SendResult | None  # None: not sent (the batch halted or ran out of time), so safe to send later


class _Worker:
    """This process's client and thread pool; forked RQ work horses get their own on first use."""

    def __init__(self, settings: WhatsAppSettings):
        self.pid, self.settings = os.getpid(), settings
        self.client = WhatsAppClient(settings)
        self.pool = ThreadPoolExecutor(settings.concurrency, thread_name_prefix="send")

    def close(self) -> None:
        self.pool.shutdown(wait=False)
        self.client.close()


_current: _Worker | None = None
_lock = threading.Lock()


def whatsapp_settings(phone_number_id: str) -> WhatsAppSettings:
    """The app's WhatsApp settings for this sender; SEND_READ_TIMEOUT_SECONDS shortens the read timeout."""
    settings = WhatsAppSettings.from_mapping(current_app.config)
    changes: dict[str, Any] = {"phone_number_id": phone_number_id or settings.phone_number_id}
    if current_app.config.get("SEND_READ_TIMEOUT_SECONDS"):
        changes["read_timeout"] = float(current_app.config["SEND_READ_TIMEOUT_SECONDS"])
    return dataclasses.replace(settings, **changes)


def _worker_for(settings: WhatsAppSettings) -> _Worker:
    global _current
    with _lock:
        if _current is None or _current.pid != os.getpid() or _current.settings != settings:
            if _current is not None and _current.pid == os.getpid():
                _current.close()
            _current = _Worker(settings)
        return _current


def send_all(plan: SendPlan, items: Sequence[SendItem], settings: WhatsAppSettings) -> list[Outcome]:
    """Send every item at the shared rate, `settings.concurrency` at a time; a pause- or stop-class error halts
    the sends not yet made."""
    worker = _worker_for(settings)
    limiter = RateLimiter(redis_connection())
    halt = threading.Event()
    futures = [worker.pool.submit(_send_one, worker.client, limiter, plan, item, halt) for item in items]
    return [future.result() for future in futures]


def _send_one(client: WhatsAppClient, limiter: RateLimiter, plan: SendPlan, item: SendItem,
              halt: threading.Event) -> Outcome:
    if halt.is_set() or not _wait_for_turn(limiter, plan.limits, halt):
        return Outcome(item.message_id, None)
    result = client.send_template(item.to, plan.template_name, plan.language, item.components,
                                  biz_opaque_callback_data=item.callback)
    info = result.error_info()
    if info is not None and info.action in _HALTING:
        halt.set()
    return Outcome(item.message_id, result)


def _wait_for_turn(limiter: RateLimiter, limits: list[Limit], halt: threading.Event) -> bool:
    """Reserve a slot and sleep until it; False when there is none soon (or Redis failed): leave it for later."""
    try:
        wait = limiter.reserve(limits, MAX_RATE_WAIT_SECONDS)
    except Exception:  # any Redis trouble means: do not send unpaced
        log.exception("rate limiter unavailable; leaving the message for a later batch")
        wait = None
    if wait is None:
        halt.set()
        return False
    if wait > 0:
        time.sleep(wait)
    return not halt.is_set()
