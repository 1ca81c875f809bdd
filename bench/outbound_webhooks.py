"""Benchmark (issue 19, part c): 10,000 status events fanned out to one endpoint and delivered to a local receiver
by 2 real RQ workers; and what the outbox costs the status hot path.

1. Hot path: statuses are applied through webhooks.statuses.apply_statuses in batches of 200 (as webhook
   processing does), each batch its own transaction, with one enabled endpoint wanting message.delivered:
   `delivered` batches add an outbox row per status, `read` batches (on other messages, alternating with them)
   add none (the hook stops after its one cheap read). hook_ms_per_batch is the difference of their medians;
   the read alone (wanted_types) is timed on its own.
2. Delivery: `python worker.py` workers are started (start-up not timed), a delivery job is queued, and the clock
   runs until the receiver (a threaded http.server in this process that checks every HMAC, with --latency-ms per
   answer) has seen every event. deliveries_per_second = events / those seconds (fan-out included).

It fails loudly (exit 1, reasons on stderr) unless every event arrived with a valid signature and every delivery
row is `delivered`. Duplicates (an event received twice) are counted and reported, not failed: delivery is at
least once by design. Goal: at least 500 deliveries a second with 2 workers.

    python bench/outbound_webhooks.py [--events 10000] [--workers 2] [--latency-ms 2] [--db sqlite|postgresql]
        [--sqlite /tmp/bench-outbound.sqlite3] [--postgresql postgresql://postgres@127.0.0.1:5432/bench_outbound]
        [--redis URL (default: a Redis server of its own)] [--set NAME=VALUE ...]

It deletes the --sqlite file (or drops the public schema of --postgresql, whose name must contain "bench") and
empties the Redis index, which must hold nothing or only what an earlier run left.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as common  # noqa: E402

LOG_PATH = Path(tempfile.gettempdir()) / "bench-outbound-workers.log"
CLAIM_KEY = "broadcaster:bench-outbound-owns-this-db"
GOAL = 500
BATCH = 200  # statuses per transaction, as webhook processing's batches
MEASURE = "events delivered (unique, signature checked) / seconds from queuing the delivery job to the last arrival"


def main() -> int:
    args = _arguments()
    receiver = Receiver(args.latency_ms)
    with common.private_redis(args.redis) as redis_url:
        database = args.postgresql if args.db == "postgresql" else f"sqlite:///{args.sqlite}"
        env = {"REDIS_URL": redis_url, "DATABASE_URL": database, "OUTBOUND_WEBHOOK_ALLOW_PRIVATE": "1",
               "PYTHONPATH": str(common.ROOT), **dict(setting.split("=", 1) for setting in args.set)}
        os.environ.update(env)
        app = common.prepare(args.events * 2, CLAIM_KEY, args.sqlite if args.db == "sqlite" else None)
        with receiver.serving():
            result = _run(app, args, receiver, env)
    return common.report(result)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=2.0, help="how long the receiver takes to answer")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--sqlite", default=str(Path(tempfile.gettempdir()) / "bench-outbound.sqlite3"))
    parser.add_argument("--postgresql", default="postgresql://postgres@127.0.0.1:5432/bench_outbound")
    parser.add_argument("--redis", default="", help="a Redis index to use (default: start one of our own)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the app and workers, e.g. OUTBOUND_WEBHOOK_CONCURRENCY=32")
    return parser.parse_args()


def _run(app, args: argparse.Namespace, receiver: Receiver, env: dict[str, str]) -> dict[str, Any]:
    started_load = common.load_average()
    unwanted, wanted = _messages(app, args.events)
    _endpoint_id, receiver.secret = _make_endpoint(app, receiver.url, ["message.delivered"])
    quiet, loud = _apply_statuses(app, unwanted, wanted)
    read_ms = _wanted_types_ms(app)
    workers = common.start_workers(app, args.workers, env, LOG_PATH)
    try:
        started = time.perf_counter()
        _queue_delivery(app)
        arrived = receiver.wait_for(args.events, timeout=args.events / 50 + 60)
        seconds = time.perf_counter() - started
        worker_cpu = common.cpu_seconds(workers)
    finally:
        common.stop_workers(app, workers)
    delivered_rows = _delivered_rows(app)
    problems = []
    if arrived < args.events:
        problems.append(f"only {arrived} of {args.events} events arrived within the time allowed")
    if receiver.bad_signatures:
        problems.append(f"{receiver.bad_signatures} deliveries had a signature the receiver refused")
    if delivered_rows != args.events:
        problems.append(f"{delivered_rows} of {args.events} delivery rows are delivered")
    rate = round(arrived / seconds, 1)
    return {"events": args.events, "workers": args.workers, "db": args.db, "measure": MEASURE,
            "receiver_latency_ms": args.latency_ms, "seconds": round(seconds, 2), "deliveries_per_second": rate,
            "received": receiver.total, "unique_received": arrived, "duplicates": receiver.total - arrived,
            "delivered_rows": delivered_rows, "worker_cpu_seconds_per_1000": round(worker_cpu / (args.events / 1000),
                                                                                   2),
            "hot_path": {"batch": BATCH, "apply_ms_per_batch_no_endpoint_wants": quiet,
                         "apply_ms_per_batch_with_outbox": loud, "hook_ms_per_batch": round(loud - quiet, 2),
                         "wanted_types_read_ms": read_ms},
            "settings": args.set, "goals": {f"at_least_{GOAL}_per_second": rate >= GOAL}, "problems": problems,
            "load_average_at_start": started_load, "load_average_at_end": common.load_average(),
            "cpus": os.cpu_count()}


class Receiver:
    """A threaded HTTP receiver that checks each signature and counts events by their id header."""

    def __init__(self, latency_ms: float) -> None:
        self.latency, self.secret = latency_ms / 1000, ""
        self.seen: set[str] = set()
        self.total = self.bad_signatures = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.request_queue_size = 128
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver behind any web server

            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                code = receiver.receive(self.headers, body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def receive(self, headers, body: bytes) -> int:
        if self.latency:
            time.sleep(self.latency)
        ok = _verify(self.secret, headers.get("X-Broadcaster-Timestamp", ""), body,
                     headers.get("X-Broadcaster-Signature", ""))
        with self.lock:
            self.total += 1
            if not ok:
                self.bad_signatures += 1
                return 401
            self.seen.add(headers.get("X-Broadcaster-Event-Id", ""))
        return 200

    def serving(self):
        receiver = self

        class Serving:
            def __enter__(self):
                threading.Thread(target=receiver.server.serve_forever, daemon=True).start()

            def __exit__(self, *exc):
                receiver.server.shutdown()
                receiver.server.server_close()

        return Serving()

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.seen)


# --- the app's services and jobs this benchmark calls (kept here rather than in _common.py while issue 19's other
# half edits that file; move them there when both have landed) --------------------------------------------------------

def _verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    from app.services.api.outbound import signing

    return signing.verify(secret, timestamp, body, header)


def _messages(app, count: int) -> tuple[list[str], list[str]]:
    """`count` sent messages twice over (one contact each): wamids for the quiet run and for the measured one."""
    from sqlalchemy import insert, select

    from app.clock import utcnow
    from app.extensions import db
    from app.models import Contact, Message

    with app.app_context():
        now, contact_ids = utcnow(), db.session.scalars(select(Contact.id).order_by(Contact.id)).all()
        rows = [{"contact_id": contact_id, "direction": "out", "source": "api", "status": "sent", "parameters": {},
                 "attempts": 1, "wamid": f"wamid.BENCH{number:08d}", "sent_at": now, "created_at": now,
                 "updated_at": now} for number, contact_id in enumerate(contact_ids[:count * 2])]
        db.session.execute(insert(Message), rows)
        db.session.commit()
    wamids = [row["wamid"] for row in rows]
    return wamids[:count], wamids[count:]


def _make_endpoint(app, url: str, wanted: list[str]) -> tuple[int, str]:
    from app.services.api.outbound import endpoints

    with app.app_context():
        endpoint = endpoints.create(endpoints.EndpointForm(url, "bench receiver", wanted), None)
        return endpoint.id, endpoint.secret


def _apply_statuses(app, unwanted: list[str], wanted: list[str]) -> tuple[float, float]:
    """Median milliseconds to apply (and commit) a batch of statuses: `read` ones, which no endpoint wants, and
    `delivered` ones, which one does; batches of the two alternate, so the shared machine's load weighs on both."""
    quiet, loud = [], []
    with app.app_context():
        _analyze()
        for start in range(0, len(wanted), BATCH):
            quiet.append(_apply_batch(unwanted[start:start + BATCH], "read"))
            loud.append(_apply_batch(wanted[start:start + BATCH], "delivered"))
    return round(statistics.median(quiet), 2), round(statistics.median(loud), 2)


def _apply_batch(wamids: list[str], status: str) -> float:
    from app.clock import utcnow
    from app.extensions import db
    from app.services.sending import message_state
    from app.services.webhooks import statuses
    from app.whatsapp.events import StatusEvent

    now = utcnow()
    events = [StatusEvent(wamid, status, now, None) for wamid in wamids]
    began = time.perf_counter()
    totals = message_state.new_totals()
    statuses.apply_statuses(events, totals, now)
    message_state.add_to_counters(totals)
    db.session.commit()
    return (time.perf_counter() - began) * 1000


def _analyze() -> None:
    """Fresh planner statistics for the rows just inserted, as autovacuum keeps them on a live PostgreSQL."""
    from sqlalchemy import text

    from app.extensions import db

    if db.engine.dialect.name == "postgresql":
        db.session.execute(text("ANALYZE messages, contacts"))
        db.session.commit()


def _wanted_types_ms(app) -> float:
    from app.extensions import db
    from app.services.api.outbound import events

    timings = []
    with app.app_context():
        for _ in range(200):
            began = time.perf_counter()
            events.wanted_types()
            timings.append((time.perf_counter() - began) * 1000)
        db.session.rollback()
    return round(statistics.median(timings), 3)


def _queue_delivery(app) -> None:
    from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks

    with app.app_context():
        enqueue_deliver_outbound_webhooks(force=True)


def _delivered_rows(app) -> int:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import OutboundDelivery

    with app.app_context():
        return db.session.scalar(select(func.count()).where(OutboundDelivery.status == "delivered"))


if __name__ == "__main__":
    sys.exit(main())
