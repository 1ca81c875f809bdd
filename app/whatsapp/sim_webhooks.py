"""Signed webhooks from the simulator, in Meta's envelope shape, delivered by background threads.

The send path only pushes timed jobs onto a heap; one scheduler thread pops due jobs, groups statuses into
batches, and hands each POST (with retries) to a small pool, so a slow receiver never slows sends.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from app.whatsapp.sim_config import SimulatorConfig
from app.whatsapp.sim_meta import SendRequest
from app.whatsapp.sim_rules import status_error
from app.whatsapp.webhook import OBJECT, SIGNATURE_HEADER, sign


def envelope(config: SimulatorConfig, field_name: str, value: dict[str, Any]) -> dict[str, Any]:
    """Meta's outer webhook shape around one change."""
    return {"object": OBJECT, "entry": [{"id": config.waba_id, "time": int(time.time()),
                                         "changes": [{"value": value, "field": field_name}]}]}


def messages_value(config: SimulatorConfig, **parts: Any) -> dict[str, Any]:
    """The value of a `messages` change: metadata plus statuses, messages and contacts."""
    metadata = {"display_phone_number": config.display_phone_number, "phone_number_id": config.phone_number_id}
    return {"messaging_product": "whatsapp", "metadata": metadata, **parts}


def status_item(request: SendRequest, wamid: str, status: str, error_code: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(time.time())),
                            "recipient_id": request.wa_id}
    if status in ("sent", "delivered"):
        category = request.pricing_category
        item["conversation"] = {"id": f"CONVERSATION_{request.wa_id}_{category}", "origin": {"type": category}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": category, "type": "regular"}
    if error_code is not None:
        item["errors"] = [status_error(error_code)]
    if request.biz_opaque_callback_data:
        item["biz_opaque_callback_data"] = request.biz_opaque_callback_data
    return item


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    kind: str = field(compare=False)  # "status" (batched), "change" (posted alone) or "call"
    data: Any = field(compare=False)


class WebhookDispatcher:
    def __init__(self, get_config: Callable[[], SimulatorConfig]):
        self._config = get_config
        self._heap: list[_Job] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sim-webhook")
        self._local = threading.local()
        self._stats_lock = threading.Lock()
        self._generation = 0  # bumped by clear(), so deliveries already under way do not count afterwards
        self.stats = {"posted": 0, "failed": 0, "retried": 0, "statuses": 0}

    def after_send(self, request: SendRequest, wamid: str, failure_code: int | None) -> None:
        """Schedule the status lifecycle of an accepted message."""
        behaviour = self._config().webhooks
        if failure_code is not None:
            self._status(behaviour.failed_delay_ms, status_item(request, wamid, "failed", failure_code))
            return
        self._status(behaviour.sent_delay_ms, status_item(request, wamid, "sent"))
        if random.random() < behaviour.delivered_probability:
            self._status(behaviour.delivered_delay_ms, status_item(request, wamid, "delivered"))
            if random.random() < behaviour.read_probability:
                self._status(behaviour.read_delay_ms, status_item(request, wamid, "read"))

    def schedule_change(self, delay_ms: float, body: dict[str, Any]) -> None:
        self._push(delay_ms / 1000, "change", body)

    def schedule_call(self, delay_ms: float, action: Callable[[], None]) -> None:
        self._push(delay_ms / 1000, "call", action)

    def post_now(self, body: dict[str, Any]) -> tuple[bool, str]:
        """Deliver one webhook synchronously (with retries); used for injected inbound messages."""
        return self._deliver(body, 0, self._generation)

    def pending(self) -> int:
        with self._wake:
            return len(self._heap)

    def snapshot(self) -> dict[str, int]:
        with self._stats_lock:
            return {**self.stats, "pending": self.pending()}

    def clear(self) -> None:
        with self._wake:
            self._heap.clear()
        with self._stats_lock:
            self.stats = dict.fromkeys(self.stats, 0)
            self._generation += 1

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _status(self, delay_ms: float, item: dict[str, Any]) -> None:
        behaviour = self._config().webhooks
        if behaviour.shuffle:  # independent random delays let later statuses overtake earlier ones
            delay_ms = random.uniform(0, max(delay_ms, behaviour.read_delay_ms))
        self._push(delay_ms / 1000, "status", item)
        if behaviour.duplicate_probability and random.random() < behaviour.duplicate_probability:
            self._push(delay_ms / 1000 + random.uniform(0, 0.05), "status", item)

    def _push(self, delay_s: float, kind: str, data: Any) -> None:
        with self._wake:
            if self._closed:
                return
            heapq.heappush(self._heap, _Job(time.monotonic() + delay_s, next(self._seq), kind, data))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sim-webhook-scheduler", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                jobs = self._due_jobs()
                if jobs is None:
                    return
            self._dispatch(jobs)

    def _due_jobs(self) -> list[_Job] | None:
        """Wait (holding the condition) until some jobs are due; None once closed."""
        while not self._closed:
            now = time.monotonic()
            if self._heap and self._heap[0].due <= now:
                behaviour = self._config().webhooks
                # With batches, the first due status lingers a moment so statuses happening together share a POST.
                ready_at = self._heap[0].due + (behaviour.batch_window_ms / 1000 if behaviour.batch_size > 1 else 0)
                if now < ready_at:
                    self._wake.wait(timeout=ready_at - now)
                    continue
                jobs = []
                while self._heap and self._heap[0].due <= now:
                    jobs.append(heapq.heappop(self._heap))
                return jobs
            self._wake.wait(timeout=self._heap[0].due - now if self._heap else None)
        return None

    def _dispatch(self, jobs: list[_Job]) -> None:
        config = self._config()
        statuses = [job.data for job in jobs if job.kind == "status"]
        if config.webhooks.shuffle:
            random.shuffle(statuses)
        size, generation = config.webhooks.batch_size, self._generation
        for start in range(0, len(statuses), size):
            body = envelope(config, "messages", messages_value(config, statuses=statuses[start:start + size]))
            self._pool.submit(self._deliver, body, len(statuses[start:start + size]), generation)
        for job in jobs:
            if job.kind == "change":
                self._pool.submit(self._deliver, job.data, 0, generation)
            elif job.kind == "call":
                self._pool.submit(job.data)

    def _deliver(self, body: dict[str, Any], statuses: int, generation: int) -> tuple[bool, str]:
        config = self._config()
        if not config.webhook_url:
            return False, "No webhook URL is configured."
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(raw, config.app_secret)}
        behaviour, outcome = config.webhooks, "not attempted"
        for attempt in range(behaviour.max_attempts):
            if attempt:
                self._count("retried", generation)
                time.sleep(behaviour.retry_delay_ms / 1000 * attempt)
            try:
                response = self._session().post(config.webhook_url, data=raw, headers=headers,
                                                timeout=behaviour.timeout_s)
                outcome = f"HTTP {response.status_code}"
                if 200 <= response.status_code < 300:
                    self._count("posted", generation, statuses)
                    return True, outcome
            except requests.RequestException as exc:
                outcome = f"{type(exc).__name__}: {exc}"
        self._count("failed", generation)
        return False, outcome

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False  # the receiver is always reached directly
        return session

    def _count(self, key: str, generation: int, statuses: int = 0) -> None:
        with self._stats_lock:
            if generation == self._generation:
                self.stats[key] += 1
                self.stats["statuses"] += statuses
