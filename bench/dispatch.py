"""Benchmark: campaigns of 20,000 recipients through real RQ workers and the Cloud API simulator, beside the raw
ceiling and the naive one-job-per-message design, on SQLite and PostgreSQL with 2 and 4 workers.

For every database × worker count it measures three things against the same simulator (its own process, 50 ms
latency, webhooks off, enforcing the rate limit with error 130429):

- ours: the dispatch engine (`python worker.py` processes sending campaign batches);
- raw: the same WhatsAppClient in a bare loop, as many processes as workers, each with the workers' send
  concurrency (WHATSAPP_SEND_CONCURRENCY) in threads, no database, no queue, no rate limiter (measured once per
  worker count, since it does not touch the database);
- baseline: the seed design, one RQ job per message (load it, send it, write the result), on fewer messages.

Each configuration checks duplicates (the simulator's ledger) and lost messages (not final, or the ledger and the
database disagree), and the script prints one final JSON line with messages per second, ours/raw and
ours/baseline, the goals, and the load average (the machine is shared: read figures beside it). The rate limit is
SEND_RATE_PER_SECOND=--rate, 2,000/s by default, above anything reached, so that it does not cap what is measured;
the batch size is pinned (--batch-size, SEND_BATCH_SIZE) to the 1,250 the engine picks for a 1,000/s sender with
its 4 lanes (5 seconds of a lane's share), so 20,000 recipients make 4 batches per lane.

    python bench/dispatch.py [--db sqlite,postgresql] [--workers 2,4] [--recipients 20000]
        [--baseline-messages 300] [--latency-ms 50] [--rate 2000] [--batch-size 1250] [--set NAME=VALUE ...]
        [--postgresql postgresql://postgres@127.0.0.1:5432/bench] [--sqlite /tmp/bench-dispatch.sqlite3]
        [--redis redis://127.0.0.1:6379/9] [--skip raw,baseline]

It drops and recreates the public schema of --postgresql, deletes the --sqlite file, and empties --redis, which
must be an index holding nothing or only what an earlier run of this benchmark left (it is marked as ours).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN, PHONE_NUMBER_ID, WABA_ID = "bench-token", "100000000000001", "200000000000001"
REDIS_CLAIM_KEY = "broadcaster:bench-dispatch-owns-this-db"
LOG_PATH = Path(tempfile.gettempdir()) / "bench-dispatch-workers.log"
FINAL = ("sent", "delivered", "read", "failed", "skipped", "cancelled")
HELLO = [{"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a "
                                  "WhatsApp message notification from the Cloud API, hosted by Meta."}]
GOAL_RATE, GOAL_RAW_SHARE, GOAL_SPEEDUP = 1000, 0.7, 20
# worker.py with RQ's SimpleWorker (jobs run in the worker process, no fork per job): --simple-workers
SIMPLE_WORKER = "import rq, worker\nworker.Worker = rq.SimpleWorker\nworker.main()\n"


def main() -> int:
    args = _arguments()
    sys.path.insert(0, str(ROOT))
    os.environ.update(_env(args, ""))
    simulator, sim_url = _start_simulator()
    os.environ["WHATSAPP_API_BASE_URL"] = sim_url
    started_load = _load()
    try:
        results = _matrix(args, sim_url, simulator.pid)
    finally:
        simulator.send_signal(signal.SIGTERM)
        simulator.wait(timeout=10)
    summary = _summary(args, results, started_load)
    print(json.dumps(summary), flush=True)
    checks_pass = all(result["duplicates"] == 0 and result["lost"] == 0 for result in results)
    return 0 if checks_pass else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=_names, default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument("--workers", type=_numbers, default="2,4", help="worker process counts, e.g. 2,4")
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--baseline-messages", type=int, default=300, help="how many the naive design sends")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="simulator latency per send")
    parser.add_argument("--rate", type=float, default=2000.0, help="SEND_RATE_PER_SECOND (and the simulator's cap)")
    parser.add_argument("--batch-size", type=int, default=1250, help="SEND_BATCH_SIZE (0: the app's default)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="another setting for the workers, e.g. SEND_BATCH_SIZE=1000")
    parser.add_argument("--skip", type=_names, default="", help="parts to leave out: raw, baseline")
    parser.add_argument("--simple-workers", action="store_true",
                        help="run jobs inside the worker process (RQ's SimpleWorker) instead of a forked work horse")
    parser.add_argument("--postgresql", default="postgresql://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--sqlite", default=str(Path(tempfile.gettempdir()) / "bench-dispatch.sqlite3"))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    return parser.parse_args()


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def _numbers(value: str) -> list[int]:
    return [int(number) for number in _names(value)]


def _env(args: argparse.Namespace, database: str) -> dict[str, str]:
    env = {"REDIS_URL": args.redis, "WHATSAPP_ACCESS_TOKEN": TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
           "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID, "SEND_RATE_PER_SECOND": str(args.rate), "PYTHONPATH": str(ROOT)}
    if getattr(args, "batch_size", 0):
        env["SEND_BATCH_SIZE"] = str(args.batch_size)
    env.update(setting.split("=", 1) for setting in args.set)
    if database:
        env["DATABASE_URL"] = database
    return env


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [sys.executable, "-m", "app.whatsapp.simulator", "--port", str(port), "--no-webhooks"]
    process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/_sim/health", timeout=1).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("the simulator did not start")


def _configure_simulator(sim_url: str, latency_ms: float, cap: float) -> None:
    """A fixed latency, no errors, and a throughput cap (0: none); the ledger starts empty."""
    config = {"max_messages_per_second": cap, "latency_ms": latency_ms, "latency_jitter_ms": 0, "error_rates": {}}
    requests.post(f"{sim_url}/_sim/config", json=config, timeout=5).raise_for_status()
    requests.post(f"{sim_url}/_sim/reset", json={"keep_config": True}, timeout=5).raise_for_status()


def _matrix(args: argparse.Namespace, sim_url: str, simulator_pid: int) -> list[dict[str, Any]]:
    raw = {workers: _raw_run(args, sim_url, workers) for workers in args.workers} if "raw" not in args.skip else {}
    results = []
    for name in args.db:
        database = args.postgresql if name == "postgresql" else f"sqlite:///{args.sqlite}"
        os.environ.update(_env(args, database))
        app = _prepare(args, name)
        for workers in args.workers:
            ours = _ours_run(app, args, sim_url, workers, simulator_pid)
            baseline = _baseline_run(app, args, sim_url, workers) if "baseline" not in args.skip else None
            result = _configuration(name, workers, ours, raw.get(workers), baseline)
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


def _configuration(database: str, workers: int, ours: dict, raw: dict | None, baseline: dict | None) -> dict:
    rate = ours["messages_per_second"]
    result = {"db": database, "workers": workers, "messages_per_second": rate,
              "raw_messages_per_second": raw["messages_per_second"] if raw else None,
              "baseline_messages_per_second": baseline["messages_per_second"] if baseline else None,
              "ours_over_raw": round(rate / raw["messages_per_second"], 3) if raw else None,
              "ours_over_baseline": round(rate / baseline["messages_per_second"], 1) if baseline else None,
              "duplicates": ours["duplicates"] + (baseline["duplicates"] if baseline else 0),
              "lost": ours["lost"] + (baseline["lost"] if baseline else 0), "ours": ours}
    if raw:
        result["raw"] = raw
    if baseline:
        result["baseline"] = baseline
    return result


def _summary(args: argparse.Namespace, results: list[dict], started_load: list[float]) -> dict[str, Any]:
    postgresql_4 = [r["messages_per_second"] for r in results if r["db"] == "postgresql" and r["workers"] == 4]
    raw_shares = [r["ours_over_raw"] for r in results if r["ours_over_raw"] is not None]
    speedups = [r["ours_over_baseline"] for r in results if r["ours_over_baseline"] is not None]
    goals = {f"postgresql_4_workers_at_least_{GOAL_RATE}": postgresql_4[0] >= GOAL_RATE if postgresql_4 else None,
             f"ours_over_raw_at_least_{GOAL_RAW_SHARE}": min(raw_shares) >= GOAL_RAW_SHARE if raw_shares else None,
             f"ours_over_baseline_at_least_{GOAL_SPEEDUP}": min(speedups) >= GOAL_SPEEDUP if speedups else None}
    configurations = [{key: value for key, value in result.items() if key not in ("ours", "raw", "baseline")}
                      for result in results]
    return {"recipients": args.recipients, "latency_ms": args.latency_ms, "rate_limit": args.rate,
            "send_concurrency_per_worker": _send_concurrency(), "batch_size": args.batch_size, "settings": args.set,
            "worker_class": "SimpleWorker" if args.simple_workers else "Worker (fork per job)",
            "baseline_messages": args.baseline_messages if "baseline" not in args.skip else 0,
            "configurations": configurations, "duplicates": sum(r["duplicates"] for r in results),
            "lost": sum(r["lost"] for r in results), "goals": goals, "load_average_at_start": started_load,
            "load_average_at_end": _load(), "cpus": os.cpu_count()}


def _send_concurrency() -> int:
    from app.config import Config

    return int(Config().WHATSAPP_SEND_CONCURRENCY)


# --- preparing a database -----------------------------------------------------------------------------------------

def _prepare(args: argparse.Namespace, name: str):
    """A fresh schema with the contacts and the template, and an empty Redis index of ours."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from app import create_app
    from app.clock import utcnow
    from app.extensions import db
    from app.models import Contact, MessageTemplate

    if name == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(args.sqlite + suffix).unlink(missing_ok=True)
    app = create_app()
    _claim_redis(app.extensions["redis"])
    with app.app_context():
        if name == "postgresql":
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        upgrade()
        now = utcnow()
        rows = [{"phone": f"+9170{n:08d}", "wa_id": f"9170{n:08d}", "name": f"Customer {n}", "attributes": {},
                 "created_at": now, "updated_at": now} for n in range(args.recipients)]
        db.session.execute(insert(Contact), rows)
        db.session.add(MessageTemplate(name="hello_world", language="en_US", category="UTILITY", status="APPROVED",
                                       components=HELLO, synced_at=now))
        db.session.commit()
    return app


def _claim_redis(connection) -> None:
    if connection.dbsize() and not connection.exists(REDIS_CLAIM_KEY):
        raise SystemExit(f"{connection} holds data this benchmark did not create; pass --redis with a free index.")
    connection.flushdb()
    connection.set(REDIS_CLAIM_KEY, "1")


# --- workers --------------------------------------------------------------------------------------------------------

def _start_workers(app, count: int, simple: bool = False) -> list[subprocess.Popen[bytes]]:
    """Start `count` real workers and wait until they all listen, so start-up is not timed."""
    from rq import Worker

    log = LOG_PATH.open("ab")
    command = [sys.executable, "-c", SIMPLE_WORKER] if simple else [sys.executable, "worker.py"]
    workers = [subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT)
               for _ in range(count)]
    deadline = time.monotonic() + 60
    while Worker.count(connection=app.extensions["redis"]) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start; see {LOG_PATH}")
        time.sleep(0.2)
    return workers


def _cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    """CPU used by these processes and their finished children (RQ's work horses)."""
    total = 0.0
    for process in processes:
        try:
            times = psutil.Process(process.pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def _stop_workers(app, workers: list[subprocess.Popen[bytes]]) -> None:
    from rq import Worker

    for worker in workers:
        worker.send_signal(signal.SIGTERM)  # RQ's warm shutdown: the current job finishes first
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
    deadline = time.monotonic() + 10
    while Worker.count(connection=app.extensions["redis"]) and time.monotonic() < deadline:
        time.sleep(0.1)


def _wait_until(app, done, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with app.app_context():
        while not done():
            if time.monotonic() > deadline:
                tail = LOG_PATH.read_text(errors="replace")[-3000:] if LOG_PATH.exists() else ""
                raise SystemExit(f"timed out; worker log ends:\n{tail}")
            time.sleep(0.25)


# --- ours -----------------------------------------------------------------------------------------------------------

def _ours_run(app, args: argparse.Namespace, sim_url: str, workers: int, simulator_pid: int) -> dict[str, Any]:
    from app.extensions import db
    from app.models import Campaign
    from app.services import campaign_lifecycle
    from jobs.campaigns import enqueue_send_batch

    _configure_simulator(sim_url, args.latency_ms, cap=args.rate)
    processes = _start_workers(app, workers, args.simple_workers)
    simulator_cpu = _simulator_cpu(simulator_pid)
    psutil.cpu_percent()  # starts the machine's busy share from here
    with app.app_context():
        campaign = Campaign(name=f"Benchmark {workers} workers", template_id=1, phone_number_id=PHONE_NUMBER_ID,
                            audience={})
        db.session.add(campaign)
        db.session.commit()
        campaign_id = campaign.id
        started = time.perf_counter()
        campaign_lifecycle.launch(campaign_id, None)
        launched = time.perf_counter()
        enqueue_send_batch(campaign_id)
    try:
        _wait_until(app, lambda: _campaign_status(campaign_id) in ("completed", "paused", "cancelled", "failed"),
                    timeout=args.recipients / 50 + 120)
        worker_cpu, machine_busy = _cpu_seconds(processes), psutil.cpu_percent()
    finally:
        _stop_workers(app, processes)
    seconds = time.perf_counter() - started
    figures = _figures(app, campaign_id, sim_url)
    first, last = figures.pop("first_claimed"), figures.pop("last_sent")
    sending_seconds = max((last - first).total_seconds(), 0.001) if first and last else seconds
    thousands = max(figures["sent"], 1) / 1000
    return {"workers": workers, "launch_seconds": round(launched - started, 2), "seconds": round(seconds, 1),
            "sending_seconds": round(sending_seconds, 2),
            "messages_per_second": round(figures["sent"] / sending_seconds, 1),
            "worker_cpu_seconds_per_1000": round(worker_cpu / thousands, 2),
            "simulator_cpu_seconds_per_1000": round((_simulator_cpu(simulator_pid) - simulator_cpu) / thousands, 2),
            "machine_cpu_busy_percent": machine_busy,
            "campaign_status": _status_in(app, campaign_id), "load_average": _load(), **figures}


def _simulator_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _campaign_status(campaign_id: int) -> str:
    from app.extensions import db
    from app.models import Campaign

    db.session.expire_all()
    status = db.session.get(Campaign, campaign_id).status
    db.session.rollback()  # no snapshot held between polls (SQLite readers would pin the WAL)
    return status


def _status_in(app, campaign_id: int) -> str:
    with app.app_context():
        return _campaign_status(campaign_id)


def _figures(app, campaign_id: int, sim_url: str) -> dict[str, Any]:
    """Outcomes from the database beside the simulator's ledger: duplicates, and messages lost on the way."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Contact, Message

    ledger = requests.get(f"{sim_url}/_sim/ledger", params={"detail": "1"}, timeout=30).json()
    received = ledger["per_recipient"]
    with app.app_context():
        rows = db.session.execute(select(Message.status, Message.attempts, Message.error_code, Contact.wa_id)
                                  .join(Contact, Contact.id == Message.contact_id)
                                  .where(Message.campaign_id == campaign_id)).all()
        # From the first claim to the last result written: the whole sending time, batch overheads included.
        first, last = db.session.execute(select(func.min(Message.claimed_at), func.max(Message.sent_at))
                                         .where(Message.campaign_id == campaign_id)).one()
    sent = [row for row in rows if row.status in ("sent", "delivered", "read")]
    unsettled = sum(1 for row in rows if row.status not in FINAL)
    never_arrived = sum(1 for row in sent if row.wa_id not in received)
    sent_ids = {row.wa_id for row in sent}
    unrecorded = sum(1 for wa_id in received if wa_id not in sent_ids)  # reached WhatsApp, not marked sent
    return {"targeted": len(rows), "sent": len(sent), "failed": sum(1 for row in rows if row.status == "failed"),
            "throttled": sum(1 for row in rows if row.error_code == 130429),
            "extra_attempts": sum(row.attempts for row in rows) - len(rows),
            "ledger_accepted": ledger["accepted"], "duplicates": ledger["duplicates"],
            "lost": unsettled + never_arrived + unrecorded, "first_claimed": first, "last_sent": last}


# --- raw ceiling ----------------------------------------------------------------------------------------------------

def _raw_run(args: argparse.Namespace, sim_url: str, workers: int) -> dict[str, Any]:
    """The client alone: `workers` processes × the send concurrency in threads, all starting together."""
    concurrency = _send_concurrency()
    _configure_simulator(sim_url, args.latency_ms, cap=0)
    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Queue(), context.Event(), context.Queue()
    share = args.recipients // workers
    processes = [context.Process(target=_raw_process, args=(sim_url, concurrency, number * share,
                                                            share, ready, go, results)) for number in range(workers)]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=60)
    go.set()
    outcomes = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    started, ended = min(o["started"] for o in outcomes), max(o["ended"] for o in outcomes)
    sends, failures = share * workers, sum(o["failures"] for o in outcomes)
    ledger = requests.get(f"{sim_url}/_sim/ledger", timeout=30).json()
    warm_ups = workers * concurrency
    result = {"workers": workers, "concurrency_per_process": concurrency, "sends": sends,
              "seconds": round(ended - started, 2), "messages_per_second": round(sends / (ended - started), 1),
              "failures": failures, "duplicates": ledger["duplicates"],
              "lost": abs(ledger["accepted"] - warm_ups - sends), "client_cpu_seconds_per_1000":
              round(sum(o["cpu"] for o in outcomes) / (sends / 1000), 2), "load_average": _load()}
    print(json.dumps({"raw": result}), flush=True)
    return result


def _raw_process(sim_url: str, concurrency: int, first: int, count: int, ready, go, results) -> None:
    """One process of the raw run: warm the keep-alive connections, wait for the start, send `count` messages."""
    sys.path.insert(0, str(ROOT))
    from app.whatsapp.client import WhatsAppClient
    from app.whatsapp.settings import WhatsAppSettings

    settings = WhatsAppSettings(base_url=sim_url, api_version="v23.0",
                                access_token=TOKEN, phone_number_id=PHONE_NUMBER_ID,
                                business_account_id=WABA_ID, concurrency=concurrency)
    client = WhatsAppClient(settings)
    failures = [0] * concurrency

    def warm(thread: int) -> None:
        client.send_template(f"9180{first + thread:08d}", "hello_world", "en_US", None, f"warm:{first + thread}")

    def send(thread: int) -> None:
        for n in range(first + thread, first + count, concurrency):
            result = client.send_template(f"9170{n:08d}", "hello_world", "en_US", None, f"raw:{n}")
            failures[thread] += not result.ok

    _in_threads(warm, concurrency)
    ready.put(os.getpid())
    go.wait()
    started, cpu = time.time(), time.process_time()
    _in_threads(send, concurrency)
    results.put({"started": started, "ended": time.time(), "failures": sum(failures),
                 "cpu": time.process_time() - cpu})
    client.close()


def _in_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target, args=(number,)) for number in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- baseline: one RQ job per message -----------------------------------------------------------------------------

def _baseline_run(app, args: argparse.Namespace, sim_url: str, workers: int) -> dict[str, Any]:
    _configure_simulator(sim_url, args.latency_ms, cap=args.rate)
    campaign_id, message_ids = _baseline_messages(app, args.baseline_messages)
    processes = _start_workers(app, workers, args.simple_workers)
    started = time.perf_counter()
    with app.app_context():
        from app.queues import DEFAULT, get_queue

        queue = get_queue(DEFAULT)
        for message_id in message_ids:
            queue.enqueue("bench.dispatch.naive_send", message_id, result_ttl=0)  # by name: workers import it
    try:
        _wait_until(app, lambda: _baseline_done(campaign_id), timeout=len(message_ids) + 120)
    finally:
        _stop_workers(app, processes)
    seconds = time.perf_counter() - started
    figures = _figures(app, campaign_id, sim_url)
    figures.pop("first_claimed"), figures.pop("last_sent")
    return {"messages": len(message_ids), "workers": workers, "seconds": round(seconds, 1),
            "messages_per_second": round(len(message_ids) / seconds, 2), "load_average": _load(), **figures}


def _baseline_messages(app, count: int) -> tuple[int, list[int]]:
    """The naive design's own campaign: a pending message for each of the first `count` contacts."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Campaign, Contact, Message

    with app.app_context():
        campaign = Campaign(name="Naive", template_id=1, phone_number_id=PHONE_NUMBER_ID, audience={},
                            status="running")
        db.session.add(campaign)
        db.session.flush()
        contact_ids = db.session.scalars(select(Contact.id).order_by(Contact.id).limit(count)).all()
        messages = [Message(campaign_id=campaign.id, contact_id=contact_id) for contact_id in contact_ids]
        db.session.add_all(messages)
        campaign.targeted = len(messages)
        db.session.commit()
        return campaign.id, [message.id for message in messages]


def _baseline_done(campaign_id: int) -> bool:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Message

    db.session.expire_all()
    left = db.session.scalar(select(func.count()).where(Message.campaign_id == campaign_id,
                                                        Message.status.in_(("pending", "sending"))))
    db.session.rollback()
    return not left


def naive_send(message_id: int) -> None:
    """The naive design (an RQ job): load one message, send it with the client, write the result."""
    from flask import current_app

    from app.clock import utcnow
    from app.extensions import db
    from app.models import Message
    from app.services import message_state, rendering
    from app.whatsapp.client import WhatsAppClient
    from app.whatsapp.settings import WhatsAppSettings

    message = db.session.get(Message, message_id)
    campaign, contact = message.campaign, message.contact
    rendered = rendering.render(campaign, contact)
    with WhatsAppClient(WhatsAppSettings.from_mapping(current_app.config)) as client:
        result = client.send_template(contact.wa_id, campaign.template.name, campaign.template.language,
                                      rendered.components, biz_opaque_callback_data=f"c{campaign.id}:{message.id}")
    totals = message_state.new_totals()
    message_state.move(message, "sending", utcnow(), totals)
    message_state.move(message, "sent" if result.ok else "failed", utcnow(), totals)
    message.wamid, message.error_code, message.attempts = result.wamid, result.error_code, 1
    message_state.add_to_counters(totals)
    db.session.commit()


if __name__ == "__main__":
    sys.exit(main())
