"""Webhook intake under load, as in production: gunicorn + RQ workers, beside a bare 200 endpoint.

Usage: python bench/webhook_ingest.py [--seconds 30] [--database-url URL] [--clients 16] [--workers 2] [--threads 4]
Creates sent messages in a fresh database, runs the app under gunicorn (gthread, as in the Procfile) and RQ
workers, and posts signed status webhooks (delivered, then read, for each message) from concurrent keep-alive
clients for the given time, after a few unmeasured seconds of warm-up. In the same run it measures the same server
config serving a bare WSGI app that only reads the body and answers 200 (the ceiling). It then waits until every
stored event is applied. Prints one final JSON line: accepted events/s, p50/p99 latency, ours/ceiling, seconds
to apply everything after the load ended, and the 1-minute load average (the machine may be shared)."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from itertools import count
from pathlib import Path
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask_migrate import upgrade  # noqa: E402
from redis import Redis  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.clock import utcnow  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Campaign, CampaignStatus, Contact, Message, WebhookEvent  # noqa: E402
from app.whatsapp.webhook import sign  # noqa: E402
from jobs.webhooks import DRAIN_QUEUED  # noqa: E402

SECRET = "bench-app-secret"
MESSAGES = 200_000
CONTACTS = 2_000


def bare_app(environ, start_response):
    """The ceiling: read the body and answer 200, nothing else."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare_database(url: str, redis_url: str, messages: int) -> None:
    app = create_app(TestConfig(url, redis_url))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        upgrade()
        # One message per (campaign, contact): CONTACTS contacts each get a message from every campaign.
        campaigns = [Campaign(name=f"bench {n}", phone_number_id="1", status=CampaignStatus.RUNNING,
                              targeted=CONTACTS, sent=CONTACTS) for n in range(messages // CONTACTS)]
        db.session.add_all(campaigns)
        db.session.commit()
        contacts = [{"phone": f"+9190000{i:05d}", "wa_id": f"9190000{i:05d}", "attributes": {}}
                    for i in range(CONTACTS)]
        db.session.execute(insert(Contact), contacts)
        ids = list(db.session.scalars(select(Contact.id)))
        now = utcnow()
        for start in range(0, messages, 20_000):
            rows = [{"campaign_id": campaigns[i // CONTACTS].id, "contact_id": ids[i % CONTACTS], "status": "sent",
                     "wamid": f"wamid.bench{i}", "sent_at": now, "parameters": {}, "content": {},
                     "created_at": now, "updated_at": now}
                    for i in range(start, min(messages, start + 20_000))]
            db.session.execute(insert(Message), rows)
        db.session.commit()


def body_for(index: int) -> bytes:
    message, status = divmod(index, 2)
    event = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "1", "phone_number_id": "1"},
        "statuses": [{"id": f"wamid.bench{message % MESSAGES}", "status": ("delivered", "read")[status],
                      "timestamp": str(1_700_000_000 + index), "recipient_id": "919000000001"}]}}]}]}
    return json.dumps(event).encode()


def load(url: str, seconds: float, clients: int) -> dict:
    """Concurrent keep-alive clients posting signed bodies until time is up; returns counts and latencies.

    Plain http.client rather than requests: on a 2-core machine the load generator shares the CPU with the server,
    and requests costs several times more per call, which would measure the client instead of the server.
    """
    target = urlsplit(url)
    deadline = time.monotonic() + seconds
    numbers, latencies, failures, lock = count(), [], [0], threading.Lock()

    def client() -> None:
        connection, mine = http.client.HTTPConnection(target.hostname, target.port, timeout=60), []
        while time.monotonic() < deadline:
            body = body_for(next(numbers))
            start = time.perf_counter()
            connection.request("POST", target.path, body=body, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                with lock:
                    failures[0] += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"requests": len(latencies), "per_second": round(len(latencies) / elapsed, 1), "failures": failures[0],
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


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


def measured_load(url: str, seconds: float, clients: int, processes: dict[str, list[psutil.Process]]) -> dict:
    """`load`, plus the CPU each group of processes spent per accepted event meanwhile (where the 2 cores went)."""
    groups = {**processes, "postgres": postgres_processes(), "load generator": [psutil.Process()]}
    before = cpu_seconds(groups)
    result = load(url, seconds, clients)
    after = cpu_seconds(groups)
    result["cpu_ms_per_event"] = {name: round((after[name] - before[name]) * 1000 / max(1, result["requests"]), 3)
                                  for name in groups}
    return result


def serve(app_spec: str, env: dict, port: int, threads: int) -> subprocess.Popen:
    """gunicorn as the Procfile runs it (gthread, 2 workers, `threads` threads each)."""
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", app_spec, "--bind", f"127.0.0.1:{port}",
                                "--worker-class", "gthread", "--workers", "2", "--threads", str(threads),
                                "--log-level", "warning"], cwd=ROOT, env=env)
    for _ in range(300):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.1)
    raise SystemExit("gunicorn did not start")


def warm_up(url: str, clients: int, seconds: float = 5) -> None:
    """The socket accepts before the workers have imported the app (seconds on a busy machine): wait for a first
    answer, then load for a few unmeasured seconds so every worker is up before we measure."""
    target = urlsplit(url)
    for _ in range(600):
        try:
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            connection.request("GET", target.path)
            connection.getresponse().read()
            break
        except OSError:
            time.sleep(0.1)
    load(url, seconds, clients)


def drain_seconds(url: str, redis_url: str, timeout: float = 600) -> float:
    app = create_app(TestConfig(url, redis_url))
    start = time.monotonic()
    with app.app_context():
        while time.monotonic() - start < timeout:
            waiting = db.session.scalar(select(func.count()).select_from(WebhookEvent)
                                        .where(WebhookEvent.processed_at.is_(None)))
            db.session.rollback()
            if not waiting:
                return round(time.monotonic() - start, 1)
            time.sleep(0.5)
    return -1.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (the Procfile's 4)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12"))
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    prepare_database(url, args.redis_url, MESSAGES)
    Redis.from_url(args.redis_url).delete(DRAIN_QUEUED)  # a worker killed by an earlier run may have left it set
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": args.redis_url, "WHATSAPP_APP_SECRET": SECRET,
           "SECRET_KEY": "bench", "PYTHONPATH": str(ROOT)}
    port = free_port()
    bare, bare_url = serve("bench.webhook_ingest:bare_app", env, port, args.threads), f"http://127.0.0.1:{port}/"
    warm_up(bare_url, args.clients)
    ceiling = measured_load(bare_url, args.seconds, args.clients, {"web": [psutil.Process(bare.pid)]})
    bare.terminate()
    bare.wait()
    web, url_ours = serve("wsgi:app", env, port, args.threads), f"http://127.0.0.1:{port}/webhooks/whatsapp"
    workers = [subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(args.workers)]
    try:
        warm_up(url_ours, args.clients)
        ours = measured_load(url_ours, args.seconds, args.clients, {
            "web": [psutil.Process(web.pid)], "workers": [psutil.Process(worker.pid) for worker in workers]})
        busy = os.getloadavg()[0]  # 2 shared cores: say how loaded the machine was while we measured
        drained = drain_seconds(url, args.redis_url)
    finally:
        for process in [web, *workers]:
            process.terminate()
        for process in [web, *workers]:
            process.wait(30)
    print(json.dumps({"database": url.split(":")[0], "seconds": args.seconds, "clients": args.clients,
                      "threads": args.threads,
                      "accepted_per_second": ours["per_second"], "p50_ms": ours["p50_ms"], "p99_ms": ours["p99_ms"],
                      "rejected": ours["failures"], "ceiling_per_second": ceiling["per_second"],
                      "ours_over_ceiling": round(ours["per_second"] / ceiling["per_second"], 2),
                      "seconds_to_apply_all_after_load": drained, "load_average_1m": round(busy, 2),
                      "cpu_ms_per_event": ours["cpu_ms_per_event"],
                      "ceiling_cpu_ms_per_event": ceiling["cpu_ms_per_event"]}))


if __name__ == "__main__":
    main()
