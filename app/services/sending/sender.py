"""The network half of the send path: paced, concurrent sends over one keep-alive client per worker process.

Nothing here touches the database: the batch was claimed and rendered before, and results are written after,
so no connection is held while we wait on the rate limiter or on WhatsApp.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flask import current_app

from app.queues import redis_connection
from app.services.sending.rate_limit import Limit, RateLimiter
from app.whatsapp.client import SendResult, WhatsAppClient
from app.whatsapp.errors import ErrorAction
from app.whatsapp.settings import WhatsAppSettings

log = logging.getLogger(__name__)

# A send that would wait longer than this for the rate limiter is left for the next batch, so a batch never
# outlives its job even when many campaigns share one sender.
MAX_RATE_WAIT_SECONDS = 30.0
BLOCK_SECONDS = 0.02  # at high rates, slots are reserved this many seconds' worth at a time
LATE_SECONDS, MAX_FORFEITS = 0.02, 5  # a send this late for its slot waits for a new one (at most 5 times)
_HALTING = (ErrorAction.PAUSE, ErrorAction.STOP)


@dataclass(frozen=True)
class TemplateRef:
    name: str
    language: str


@dataclass(frozen=True)
class SendItem:
    """One message to send: an approved template with its filled-in components, or free text."""

    message_id: int
    to: str
    callback: str  # biz_opaque_callback_data, from app.whatsapp.callback.encode
    template: TemplateRef | None = None
    components: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    text: str | None = None


@dataclass(frozen=True)
class SendPlan:
    """What every send of one batch shares."""

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


def whatsapp_settings(phone_number_id: str | None = None) -> WhatsAppSettings:
    """The app's WhatsApp settings, for this sender number (default: the configured one). The one recipe: every
    client the app makes is built from these, so SEND_READ_TIMEOUT_SECONDS applies to all."""
    settings = WhatsAppSettings.from_mapping(current_app.config)
    changes: dict[str, Any] = {"phone_number_id": phone_number_id or settings.phone_number_id}
    if current_app.config["SEND_READ_TIMEOUT_SECONDS"] is not None:
        changes["read_timeout"] = float(current_app.config["SEND_READ_TIMEOUT_SECONDS"])
    return dataclasses.replace(settings, **changes)


def new_client(phone_number_id: str | None = None) -> WhatsAppClient:
    """A client of its own (close it, or use it in a `with`), for calls outside the send path's pool."""
    return WhatsAppClient(whatsapp_settings(phone_number_id))


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
    return start_all(plan, items, settings).result()


class Sending:
    """A batch's sends in flight on the process's pool; `result()` waits for them and gives every item's outcome."""

    def __init__(self, runners: list[Future], items: Sequence[SendItem], outcomes: dict[int, Outcome]):
        self._runners, self._items, self._outcomes = runners, items, outcomes

    def result(self) -> list[Outcome]:
        for runner in self._runners:
            runner.result()
        return [self._outcomes[item.message_id] for item in self._items]


def start_all(plan: SendPlan, items: Sequence[SendItem], settings: WhatsAppSettings) -> Sending:
    """Start sending every item as send_all does, without waiting: the caller can do other work meanwhile."""
    worker = _worker_for(settings)
    pacer = _Pacer(RateLimiter(redis_connection()), plan.limits, len(items), settings.concurrency)
    halt = threading.Event()
    pending = deque(items)
    outcomes: dict[int, Outcome] = {}

    def run() -> None:  # one of `concurrency` loops sharing the batch, each on its own keep-alive connection
        while True:
            try:
                item = pending.popleft()
            except IndexError:
                return
            outcomes[item.message_id] = _send_one(worker.client, pacer, plan, item, halt)

    return Sending([worker.pool.submit(run) for _ in range(min(settings.concurrency, len(items)))], items, outcomes)


def _send_one(client: WhatsAppClient, pacer: _Pacer, plan: SendPlan, item: SendItem,
              halt: threading.Event) -> Outcome:
    if halt.is_set() or not _wait_for_turn(pacer, halt):
        return Outcome(item.message_id, None)
    if item.template is not None:
        result = client.send_template(item.to, item.template.name, item.template.language, item.components,
                                      biz_opaque_callback_data=item.callback)
    else:
        result = client.send_text(item.to, item.text or "", biz_opaque_callback_data=item.callback)
    info = result.error_info()
    if info is not None and info.action in _HALTING:
        halt.set()
    return Outcome(item.message_id, result)


def _wait_for_turn(pacer: _Pacer, halt: threading.Event) -> bool:
    """Take a slot and sleep until it; False when there is none soon (or Redis failed): leave it for later.

    A thread that wakes well after its slot (a busy machine can stall a process for a while) gives the slot up and
    takes a new one: sending late, right before the next slot's send, would put two sends where the rate allows
    one, and a stall would end in a burst. After MAX_FORFEITS it sends anyway, so it never starves.
    """
    for forfeits in range(MAX_FORFEITS + 1):
        try:
            send_at = pacer.next_slot()
        except Exception:  # any Redis trouble means: do not send unpaced
            log.exception("rate limiter unavailable; leaving the message for a later batch")
            send_at = None
        if send_at is None:
            halt.set()
            return False
        wait = send_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if time.monotonic() - send_at <= LATE_SECONDS or forfeits == MAX_FORFEITS:
            break
    return not halt.is_set()


class _Pacer:
    """Hands the batch's send slots to its threads, reserving them from the shared limiter a block at a time.

    A block is about BLOCK_SECONDS of the rate (one slot at ordinary rates, so the pace stays exact), never more
    than the threads can use at once nor than the batch has left: a halted batch wastes at most one block.
    """

    def __init__(self, limiter: RateLimiter, limits: list[Limit], sends: int, concurrency: int):
        self._limiter, self._limits, self._left = limiter, limits, sends
        rate = min((limit.per_second for limit in limits), default=0.0)
        self._block = max(1, min(concurrency, int(rate * BLOCK_SECONDS))) if rate else max(1, sends)
        self._slots: deque[float] = deque()
        self._lock = threading.Lock()

    def next_slot(self) -> float | None:
        """When (time.monotonic) to send the next message, or None when no slot is free within the longest wait."""
        with self._lock:
            if not self._slots:
                reservation = self._limiter.reserve_many(self._limits, min(self._block, max(1, self._left)),
                                                         MAX_RATE_WAIT_SECONDS)
                if reservation is None:
                    return None
                first = time.monotonic() + reservation.wait
                self._slots.extend(first + n * reservation.spacing for n in range(reservation.count))
            self._left -= 1
            return self._slots.popleft()
