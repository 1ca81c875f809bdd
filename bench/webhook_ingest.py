"""Webhook intake under load, as in production: gunicorn + RQ workers, beside a bare 200 endpoint.

Usage: python bench/webhook_ingest.py [--seconds 30] [--database-url URL] [--redis-url URL] [--messages 200000]
           [--clients 16] [--workers 2] [--threads 4] [--warm-up 5] [--drain-timeout 600]
Creates sent messages in a fresh database, runs the app under gunicorn (gthread, as in the Procfile) and RQ
workers, and posts signed status webhooks (delivered, then read, for each message) from concurrent keep-alive
clients for the given time, after a few unmeasured seconds of warm-up. In the same run it measures the same server
config serving a bare WSGI app that only reads the body and answers 200 (the ceiling). Only 2xx answers count as
accepted. It then waits until every stored event is applied, and checks that every status accepted (warm-up
included) landed on its message: the message's status at least the highest one posted, and each posted status's
timestamp set, no later than posted. Prints one final JSON line: accepted events/s, p50/p99 latency of accepted
posts, ours/ceiling, seconds to apply everything after the load ended, the statuses checked, and the 1-minute load
average (the machine may be shared). Exits 1, saying why on stderr, when the drain does not finish, a status did
not land, or an accepted post was not stored.

It drops and recreates the public schema of --database-url (a fresh SQLite file by default) and empties
--redis-url, which must be an index holding nothing or only what an earlier run of this script left."""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis import Redis  # noqa: E402
from sqlalchemy import func, insert, select  # noqa: E402

from app import create_app  # noqa: E402
from app.clock import utcnow  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Campaign, CampaignStatus, Contact, Message, WebhookEvent  # noqa: E402
from app.whatsapp.webhook import sign  # noqa: E402
from bench import _common as common  # noqa: E402

SECRET = "bench-app-secret"
CONTACTS = 2_000
REDIS_CLAIM_KEY = "broadcaster:bench-webhook-owns-this-db"
LOG_PATH = Path(tempfile.gettempdir()) / "bench-webhook-ingest.log"
EPOCH = 1_700_000_000  # a post's status timestamp is EPOCH + its index
POSTED = ("delivered", "read")  # index 2m posts delivered for message m, 2m + 1 read
RANK = {"sent": 0, "delivered": 1, "read": 2}
IMPLIED = {"delivered": ("delivered_at",), "read": ("delivered_at", "read_at")}  # a status sets these timestamps
IN_CHUNK = 2_000


def bare_app(environ, start_response):
    """The ceiling: read the body and answer 200, nothing else."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def prepare_database(url: str, redis_url: str, messages: int) -> None:
    app = create_app(TestConfig(url, redis_url))
    with app.app_context():
        common.fresh_schema()
        # One message per (campaign, contact): CONTACTS contacts each get a message from every campaign.
        campaigns = [Campaign(name=f"bench {n}", phone_number_id="1", status=CampaignStatus.RUNNING,
                              targeted=CONTACTS, sent=CONTACTS) for n in range(messages // CONTACTS)]
        db.session.add_all(campaigns)
        db.session.commit()
        runs = [campaign.run.id for campaign in campaigns]
        contacts = [{"phone": f"+9190000{i:05d}", "wa_id": f"9190000{i:05d}", "attributes": {}}
                    for i in range(CONTACTS)]
        db.session.execute(insert(Contact), contacts)
        ids = list(db.session.scalars(select(Contact.id)))
        now = utcnow()
        for start in range(0, messages, 20_000):
            rows = [{"campaign_id": campaigns[i // CONTACTS].id, "run_id": runs[i // CONTACTS],
                     "contact_id": ids[i % CONTACTS], "status": "sent",
                     "wamid": f"wamid.bench{i}", "sent_at": now, "parameters": {}, "content": {},
                     "created_at": now, "updated_at": now}
                    for i in range(start, min(messages, start + 20_000))]
            db.session.execute(insert(Message), rows)
        db.session.commit()


def posted(index: int, messages: int) -> tuple[int, str, int]:
    """The message number, status and timestamp that post number `index` carries."""
    message, status = divmod(index, 2)
    return message % messages, POSTED[status], EPOCH + index


def body_for(index: int, messages: int) -> bytes:
    message, status, timestamp = posted(index, messages)
    event = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "1"},
        "statuses": [{"id": f"wamid.bench{message}", "status": status, "timestamp": str(timestamp),
                      "recipient_id": "919000000001"}]}}]}]}
    return json.dumps(event).encode()


def load(url: str, seconds: float, clients: int, numbers, messages: int) -> dict:
    """Concurrent keep-alive clients posting signed bodies (numbered by `numbers`) until time is up; returns counts,
    latencies of accepted (2xx) posts, and the numbers of the posts accepted.

    Plain http.client rather than requests: on a 2-core machine the load generator shares the CPU with the server,
    and requests costs several times more per call, which would measure the client instead of the server.
    """
    target = urlsplit(url)
    deadline = time.monotonic() + seconds
    latencies, accepted, refused, lock = [], [], {"rejected": 0, "errors": 0}, threading.Lock()

    def client() -> None:
        connection, mine, landed, rejected, errors = common.connect(target), [], [], 0, 0
        while time.monotonic() < deadline:
            index = next(numbers)
            body = body_for(index, messages)
            start = time.perf_counter()
            try:
                connection.request("POST", target.path, body=body, headers={
                    "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):  # a dropped connection: count it, open another
                errors += 1
                connection.close()
                connection = common.connect(target)
                continue
            if 200 <= response.status < 300:
                mine.append(time.perf_counter() - start)
                landed.append(index)
            else:
                rejected += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            accepted.extend(landed)
            refused["rejected"] += rejected
            refused["errors"] += errors

    elapsed = common.run_clients(client, clients)
    return {"accepted": len(accepted), **common.throughput(len(accepted), latencies, elapsed), **refused,
            "indices": accepted}



def cpu_seconds(processes: dict[str, list[psutil.Process]]) -> dict[str, float]:
    """CPU time (user + system) used so far by each group of processes and their children (but the load generator's:
    this process, whose children are the servers measured)."""
    totals = {}
    for name, roots in processes.items():
        total = 0.0
        for root in roots:
            try:
                family = [root] if root.pid == os.getpid() else [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for process in family:
                try:
                    times = process.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                total += times.user + times.system
        totals[name] = total
    return totals


def postgres_processes() -> list[psutil.Process]:
    """The PostgreSQL server's main process (its backends are its children), if it runs on this machine."""
    names = ("postgres", "postmaster")
    return [process for process in psutil.process_iter(["name", "ppid"]) if process.info["name"] in names
            and psutil.Process(process.info["ppid"]).name() not in names]


def measured_load(url: str, args: argparse.Namespace, numbers, processes: dict[str, list[psutil.Process]]) -> dict:
    """`load`, plus the CPU each group of processes spent per accepted event meanwhile (where the 2 cores went)."""
    groups = {**processes, "postgres": postgres_processes(), "load generator": [psutil.Process()]}
    before = cpu_seconds(groups)
    result = load(url, args.seconds, args.clients, numbers, args.messages)
    after = cpu_seconds(groups)
    result["cpu_ms_per_event"] = {name: round((after[name] - before[name]) * 1000 / max(1, result["accepted"]), 3)
                                  for name in groups}
    return result


def serve(app_spec: str, env: dict, port: int, threads: int):
    return common.serve_gunicorn(app_spec, env, port, threads, LOG_PATH, timeout=30)


def warm_up(url: str, args: argparse.Namespace, numbers) -> dict:
    """The socket accepts before the workers have imported the app (seconds on a busy machine): wait for a first
    answer, then load for a few unmeasured seconds so every worker is up before we measure."""
    common.wait_for_http(url, "the app", timeout=60)
    return load(url, args.warm_up, args.clients, numbers, args.messages)


def drain_seconds(app, timeout: float) -> float | None:
    """Seconds until no stored event waits to be applied, or None when some still wait after `timeout`."""
    start = time.monotonic()
    with app.app_context():
        while time.monotonic() - start < timeout:
            waiting = db.session.scalar(select(func.count()).select_from(WebhookEvent)
                                        .where(WebhookEvent.processed_at.is_(None)))
            db.session.rollback()
            if not waiting:
                return round(time.monotonic() - start, 1)
            time.sleep(0.5)
    return None


def expected_statuses(indices: list[int], messages: int) -> dict[str, dict[str, int]]:
    """wamid -> {status posted: its earliest timestamp}, over the posts accepted."""
    expected: dict[str, dict[str, int]] = {}
    for index in indices:
        message, status, timestamp = posted(index, messages)
        statuses = expected.setdefault(f"wamid.bench{message}", {})
        statuses[status] = min(statuses.get(status, timestamp), timestamp)
    return expected


def landed(app, indices: list[int], messages: int) -> dict:
    """Whether every accepted status reached its message: the status at least the highest posted, and each posted
    status's timestamps (a read implies delivered) set no later than the earliest posted."""
    expected = expected_statuses(indices, messages)
    wamids, missing, examples = sorted(expected), 0, []
    with app.app_context():
        for start in range(0, len(wamids), IN_CHUNK):
            rows = db.session.execute(select(Message.wamid, Message.status, Message.delivered_at, Message.read_at)
                                      .where(Message.wamid.in_(wamids[start:start + IN_CHUNK]))).all()
            found = {row.wamid: row for row in rows}
            for wamid in wamids[start:start + IN_CHUNK]:
                if not _reflects(found.get(wamid), expected[wamid]):
                    missing += 1
                    if len(examples) < 3:
                        row = _described(found.get(wamid))
                        examples.append({"wamid": wamid, "posted": expected[wamid], "row": row})
        db.session.rollback()
    return {"messages_checked": len(wamids), "statuses_checked": sum(len(s) for s in expected.values()),
            "messages_not_landed": missing, "not_landed_examples": examples}


def _reflects(row, statuses: dict[str, int]) -> bool:
    if row is None or RANK.get(row.status, -1) < max(RANK[status] for status in statuses):
        return False
    for status, timestamp in statuses.items():
        for column in IMPLIED[status]:
            value = getattr(row, column)
            if value is None or value.timestamp() > timestamp:
                return False
    return True


def _described(row) -> dict | None:
    if row is None:
        return None
    return {"status": row.status, "delivered_at": row.delivered_at and row.delivered_at.isoformat(),
            "read_at": row.read_at and row.read_at.isoformat()}


def stored_events(app) -> dict[str, int]:
    with app.app_context():
        stored = db.session.scalar(select(func.count()).select_from(WebhookEvent))
        problems = db.session.scalar(select(func.count()).select_from(WebhookEvent).where(
            WebhookEvent.outcome.in_(("orphaned", "error", "rejected"))))
        db.session.rollback()
    return {"events_stored": stored, "events_with_problem_outcome": problems}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="measured load, for the ceiling and for ours")
    parser.add_argument("--warm-up", type=float, default=5, help="unmeasured load before each")
    parser.add_argument("--messages", type=int, default=200_000, help=f"sent messages to post statuses for "
                                                                      f"(a multiple of {CONTACTS})")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (the Procfile's 4)")
    parser.add_argument("--drain-timeout", type=float, default=600, help="fail if events still wait after this")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    args = parser.parse_args()
    if args.messages < CONTACTS:
        parser.error(f"--messages must be at least {CONTACTS}")
    return args


def main() -> int:
    args = arguments()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    common.claim_redis(Redis.from_url(args.redis_url), REDIS_CLAIM_KEY)
    prepare_database(url, args.redis_url, args.messages)
    env = {"DATABASE_URL": url, "REDIS_URL": args.redis_url, "WHATSAPP_APP_SECRET": SECRET, "SECRET_KEY": "bench",
           "PYTHONPATH": str(common.ROOT)}
    port = common.free_port()
    bare, bare_url = serve("bench.webhook_ingest:bare_app", env, port, args.threads), f"http://127.0.0.1:{port}/"
    try:
        warm_up(bare_url, args, itertools.count())
        ceiling = measured_load(bare_url, args, itertools.count(), {"web": [psutil.Process(bare.pid)]})
    finally:
        common.stop([bare])
    ours, checks = run_ours(url, args, env, port)
    return common.report(summary(url, args, ceiling, ours, checks))


def run_ours(url: str, args: argparse.Namespace, env: dict, port: int) -> tuple[dict, dict]:
    """The app and its workers under load; then the drain, and whether the accepted statuses landed."""
    web, url_ours = serve("wsgi:app", env, port, args.threads), f"http://127.0.0.1:{port}/webhooks/whatsapp"
    workers = [common.spawn([sys.executable, "worker.py"], env, LOG_PATH) for _ in range(args.workers)]
    numbers = itertools.count()  # the measured posts follow the warm-up's: new statuses, not repeats
    try:
        warmed = warm_up(url_ours, args, numbers)
        ours = measured_load(url_ours, args, numbers, {
            "web": [psutil.Process(web.pid)], "workers": [psutil.Process(worker.pid) for worker in workers]})
        ours["load_average_1m"] = round(os.getloadavg()[0], 2)  # 2 shared cores: how loaded while we measured
        app = create_app(TestConfig(url, args.redis_url))
        drained = drain_seconds(app, args.drain_timeout)
    finally:
        common.stop([web, *workers])
    indices = warmed["indices"] + ours.pop("indices")
    checks = {"seconds_to_apply_all_after_load": drained, "accepted_including_warm_up": len(indices),
              **landed(app, indices, args.messages), **stored_events(app)}
    return ours, checks


def summary(url: str, args: argparse.Namespace, ceiling: dict, ours: dict, checks: dict) -> dict:
    problems = []
    if checks["seconds_to_apply_all_after_load"] is None:
        problems.append(f"stored events were still waiting to be applied after --drain-timeout {args.drain_timeout} s")
    if checks["messages_not_landed"]:
        problems.append(f"{checks['messages_not_landed']} of {checks['messages_checked']} messages do not reflect "
                        f"the statuses accepted for them")
    if checks["events_stored"] < checks["accepted_including_warm_up"]:
        problems.append(f"{checks['accepted_including_warm_up']} posts accepted but {checks['events_stored']} stored")
    if not ours["accepted"]:
        problems.append("no post was accepted")
    ratio = round(ours["per_second"] / ceiling["per_second"], 2) if ceiling["per_second"] else None
    return {"database": url.split(":")[0], "seconds": args.seconds, "clients": args.clients, "threads": args.threads,
            "messages": args.messages, "accepted_per_second": ours["per_second"], "p50_ms": ours["p50_ms"],
            "p99_ms": ours["p99_ms"], "accepted": ours["accepted"], "rejected": ours["rejected"],
            "errors": ours["errors"], "ceiling_per_second": ceiling["per_second"],
            "ours_over_ceiling": ratio,
            **checks, "load_average_1m": ours["load_average_1m"], "cpu_ms_per_event": ours["cpu_ms_per_event"],
            "ceiling_cpu_ms_per_event": ceiling["cpu_ms_per_event"], "problems": problems}


if __name__ == "__main__":
    sys.exit(main())
