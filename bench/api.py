"""Benchmark: the REST API through the production web server (gunicorn, as in the Procfile).

(a) POST /api/v1/messages from 16 concurrent keep-alive clients: accepted (201) requests per second and p50/p99
    latency, beside GET /api/v1/me (a bare authenticated endpoint: key lookup and rate limit, nothing else) measured
    by the same server in the same run. Each send carries its own Idempotency-Key and goes to one of --contacts
    numbers, so it exercises the whole path: key, rate limit, contact, template, rendering, the message and
    idempotency rows (written by the process's group commit), the commit and queueing the direct lane (no worker
    runs, so its job must still be queued at the end). Goals: ours/bare >= 0.5, p99 < 100 ms.
(b) POST /api/v1/contacts/bulk with 10,000 new contacts, then the same 10,000 again with other names (all updates):
    seconds per call. Goal: < 2 s.

The API key's rate limit is raised (API_RATE_PER_SECOND) so it does not cap what is measured; it still runs.
Every run must do what it claims, or the script says why on stderr and exits 1: every accepted send is exactly one
message row (source "api"), a sample of accepted sends retried with the same Idempotency-Key is replayed (200) and
adds no row, and every bulk call wrote exactly the contacts it reports. The final JSON line holds the figures, the
goals, whether each was met, and the load average (the machine is shared: read figures beside it).

    python bench/api.py [--seconds 20] [--warm-up 3] [--clients 16] [--threads 4] [--contacts 2000]
        [--bulk 10000] [--database-url URL] [--redis-url URL]

It uses a fresh SQLite file by default (or drops and recreates the public schema of --database-url, whose name
must say bench) and a Redis server of its own unless --redis-url names an index holding nothing or only what an
earlier run of this script left.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis import Redis  # noqa: E402
from rq.job import Job, JobStatus  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from app import create_app  # noqa: E402
from app.clock import utcnow  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import ApiIdempotencyKey, Contact, Message, MessageTemplate  # noqa: E402
from bench import _common as common  # noqa: E402
from jobs.sending import LANE  # noqa: E402

REDIS_CLAIM_KEY = "broadcaster:bench-api-owns-this-db"
LOG_PATH = Path(tempfile.gettempdir()) / "bench-api-web.log"
GOAL_RATIO, GOAL_P99_MS, GOAL_BULK_SECONDS = 0.5, 100, 2.0
REPLAYED_SAMPLE = 50
TEMPLATE = {"name": "hello_world", "language": "en_US"}


def prepare(url: str, redis_url: str, contacts: int) -> tuple[object, str]:
    """A fresh schema with `contacts` contacts and an approved template; returns the app and a messages key."""
    app = create_app(TestConfig(url, redis_url))
    with app.app_context():
        common.fresh_schema()
        now = utcnow()
        db.session.execute(insert(Contact), [{"phone": _phone(n), "wa_id": _phone(n)[1:], "attributes": {},
                                              "created_at": now, "updated_at": now} for n in range(contacts)])
        db.session.add(MessageTemplate(name="hello_world", language="en_US", category="UTILITY", status="APPROVED",
                                       components=common.HELLO, synced_at=now))
        db.session.commit()
        key = common.create_api_key("bench", ["messages:write", "contacts:write"])
    return app, key


def _phone(n: int) -> str:
    return f"+9170{n:08d}"


def serve(env: dict, port: int, threads: int):
    return common.serve_gunicorn("wsgi:app", env, port, threads, LOG_PATH, "/healthz")


Request = Callable[[int], tuple[str, str, bytes | None, dict[str, str]]]


def load(base: str, key: str, seconds: float, clients: int, request: Request, numbers: Iterator[int],
         ok: int) -> dict:
    """Concurrent keep-alive clients sending `request(n)` until time is up; counts answers with status `ok` and their
    latencies. Plain http.client: on 2 shared cores a heavier client would measure itself, not the server."""
    target = urlsplit(base)
    deadline = time.monotonic() + seconds
    latencies, accepted, other, lock = [], [], {"rejected": 0, "errors": 0, "statuses": {}}, threading.Lock()

    def client() -> None:
        connection, mine, landed, statuses, errors = common.connect(target), [], [], {}, 0
        while time.monotonic() < deadline:
            number = next(numbers)
            method, path, body, headers = request(number)
            start = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers={"Authorization": f"Bearer {key}", **headers})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                connection = common.connect(target)
                continue
            if response.status == ok:
                mine.append(time.perf_counter() - start)
                landed.append(number)
            else:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()
        with lock:
            latencies.extend(mine)
            accepted.extend(landed)
            other["errors"] += errors
            for status, count in statuses.items():
                other["statuses"][status] = other["statuses"].get(status, 0) + count
                other["rejected"] += count

    elapsed = common.run_clients(client, clients)
    return {"accepted": len(accepted), **common.throughput(len(accepted), latencies, elapsed), **other,
            "numbers": accepted}



def bare_request(_number: int):
    return "GET", "/api/v1/me", None, {}


def send_request(contacts: int) -> Request:
    def request(number: int):
        body = json.dumps({"to": _phone(number % contacts), "template": TEMPLATE}).encode()
        return "POST", "/api/v1/messages", body, {"Content-Type": "application/json",
                                                   "Idempotency-Key": f"bench-{number}"}
    return request


def replays(base: str, key: str, numbers: list[int], contacts: int) -> dict:
    """Retry a sample of accepted sends with their Idempotency-Key: each must answer 200 and be marked replayed."""
    target, request = urlsplit(base), send_request(contacts)
    connection, replayed = common.connect(target), 0
    for number in numbers[:REPLAYED_SAMPLE]:
        method, path, body, headers = request(number)
        connection.request(method, path, body=body, headers={"Authorization": f"Bearer {key}", **headers})
        response = connection.getresponse()
        response.read()
        replayed += response.status == 200 and response.getheader("Idempotent-Replayed") == "true"
    connection.close()
    return {"retried": min(len(numbers), REPLAYED_SAMPLE), "replayed": replayed}


def bulk(base: str, key: str, count: int, offset: int, name: str) -> dict:
    """One bulk upsert of `count` contacts; seconds and the answer."""
    body = json.dumps({"contacts": [{"phone": _phone(offset + n), "name": f"{name} {n}", "tags": ["bulk"]}
                                    for n in range(count)]}).encode()
    connection = common.connect(urlsplit(base))
    start = time.perf_counter()
    connection.request("POST", "/api/v1/contacts/bulk", body=body,
                       headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    response = connection.getresponse()
    answer = response.read()
    seconds = time.perf_counter() - start
    connection.close()
    result = json.loads(answer) if response.status == 200 else {"status": response.status, "body": answer[:500]}
    return {"seconds": round(seconds, 3), "status": response.status, "answer": result}


def rows(app) -> dict[str, int]:
    with app.app_context():
        counts = {"messages": db.session.scalar(select(func.count()).select_from(Message)),
                  "api_messages": db.session.scalar(select(func.count()).select_from(Message)
                                                    .where(Message.source == "api")),
                  "idempotency_keys": db.session.scalar(select(func.count()).select_from(ApiIdempotencyKey)),
                  "contacts": db.session.scalar(select(func.count()).select_from(Contact)),
                  "bulk_named": db.session.scalar(select(func.count()).select_from(Contact)
                                                  .where(Contact.name.like("updated %")))}
        db.session.rollback()
    return counts


def lane_queued(app) -> bool:
    """Whether the direct lane's job is waiting in Redis (nothing runs it here), as the accepted sends asked."""
    with app.app_context():
        jobs = Job.fetch_many([f"{LANE}-{parity}" for parity in "ab"], connection=app.extensions["redis"])
    return any(job is not None and job.get_status(refresh=False) == JobStatus.QUEUED for job in jobs)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="measured load, for the bare endpoint and ours")
    parser.add_argument("--warm-up", type=float, default=3, help="unmeasured load before each")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (the Procfile's 4)")
    parser.add_argument("--contacts", type=int, default=2000, help="numbers the sends go to")
    parser.add_argument("--bulk", type=int, default=10_000, help="contacts per bulk upsert")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    return parser.parse_args()


def main() -> int:
    args = arguments()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench-api.db"
    with common.private_redis(args.redis_url) as redis_url:
        common.claim_redis(Redis.from_url(redis_url), REDIS_CLAIM_KEY)
        app, key = prepare(url, redis_url, args.contacts)
        env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "SECRET_KEY": "bench", "PYTHONPATH": str(common.ROOT),
               "BROADCASTER_INSTANCE": tempfile.mkdtemp(), "API_RATE_PER_SECOND": "1000000",
               "API_RATE_BURST": "1000000", "API_BULK_MAX_CONTACTS": str(args.bulk)}
        port = common.free_port()
        web, base = serve(env, port, args.threads), f"http://127.0.0.1:{port}"
        try:
            result = measure(app, key, base, args)
        finally:
            common.stop([web])
    return common.report(result)


def measure(app, key: str, base: str, args: argparse.Namespace) -> dict:
    load_before = common.load_average()
    load(base, key, args.warm_up, args.clients, bare_request, itertools.count(), 200)
    bare = load(base, key, args.seconds, args.clients, bare_request, itertools.count(), 200)
    numbers, send = itertools.count(), send_request(args.contacts)
    warmed = load(base, key, args.warm_up, args.clients, send, numbers, 201)
    ours = load(base, key, args.seconds, args.clients, send, numbers, 201)
    load_after = common.load_average()
    sent = {**rows(app), "lane_queued": lane_queued(app)}
    retried = replays(base, key, ours["numbers"], args.contacts)
    after_retries = rows(app)
    created = bulk(base, key, args.bulk, 1_000_000, "new")
    updated = bulk(base, key, args.bulk, 1_000_000, "updated")
    written = rows(app)
    return summary(args, bare, warmed, ours, sent, retried, after_retries, created, updated, written,
                   load_before, load_after)


def summary(args, bare, warmed, ours, sent, retried, after_retries, created, updated, written, load_before,
            load_after) -> dict:
    accepted = warmed["accepted"] + ours["accepted"]
    problems = []
    if not ours["accepted"] or not bare["accepted"]:
        problems.append("no request was accepted")
    if sent["api_messages"] != accepted or sent["idempotency_keys"] != accepted:
        problems.append(f"{accepted} sends accepted but {sent['api_messages']} API messages and "
                        f"{sent['idempotency_keys']} idempotency keys stored")
    if not sent["lane_queued"]:
        problems.append(f"{accepted} sends accepted but the direct lane's job is not queued")
    if retried["replayed"] != retried["retried"] or after_retries["messages"] != sent["messages"]:
        problems.append(f"of {retried['retried']} retried sends {retried['replayed']} were replayed, and the messages "
                        f"went from {sent['messages']} to {after_retries['messages']}")
    for name, call, field in (("create", created, "created"), ("update", updated, "updated")):
        if call["status"] != 200 or call["answer"].get(field) != args.bulk:
            problems.append(f"the bulk {name} call answered {call['status']}: {str(call['answer'])[:300]}")
    if written["contacts"] != args.contacts + args.bulk or written["bulk_named"] != args.bulk:
        problems.append(f"after the bulk calls there are {written['contacts']} contacts ({written['bulk_named']} "
                        f"renamed), not {args.contacts + args.bulk} ({args.bulk})")
    ratio = round(ours["per_second"] / bare["per_second"], 2) if bare["per_second"] else None
    bulk_seconds = max(created["seconds"], updated["seconds"])
    return {
        "database": "sqlite" if not args.database_url else args.database_url.split(":")[0],
        "seconds": args.seconds, "clients": args.clients, "threads": args.threads,
        "messages_per_second": ours["per_second"], "messages_p50_ms": ours["p50_ms"],
        "messages_p99_ms": ours["p99_ms"], "messages_not_accepted": ours["statuses"], "errors": ours["errors"],
        "bare_per_second": bare["per_second"], "bare_p99_ms": bare["p99_ms"], "ours_over_bare": ratio,
        "bulk_create_seconds": created["seconds"], "bulk_update_seconds": updated["seconds"],
        "bulk_contacts": args.bulk, "accepted_including_warm_up": accepted, **retried,
        "goals": {"ours_over_bare": GOAL_RATIO, "p99_ms": GOAL_P99_MS, "bulk_seconds": GOAL_BULK_SECONDS},
        "goals_met": {"ours_over_bare": ratio is not None and ratio >= GOAL_RATIO,
                      "p99_ms": ours["p99_ms"] is not None and ours["p99_ms"] < GOAL_P99_MS,
                      "bulk_seconds": bulk_seconds < GOAL_BULK_SECONDS},
        "load_average_before": load_before, "load_average_after": load_after, "problems": problems}


if __name__ == "__main__":
    sys.exit(main())
