"""Chaos benchmark: one campaign through real RQ workers while a worker is SIGKILLed every few seconds.

The simulator runs in its own process and answers 10% of sends with errors (retryable 131000 and 130429,
permanent 131026) and 2% of recipients so slowly that the client's read times out, so those sends are ambiguous.
Status webhooks go to the app under gunicorn (signed with a shared WHATSAPP_APP_SECRET), which is what settles an
ambiguous send without sending it twice. The script itself plays the scheduler: every few seconds it runs the
campaign sweeper (settle stuck messages after SEND_SETTLE_GRACE_SECONDS, requeue lost batches) and the webhook
event sweeper. At the end it prints one JSON line: lost (recipients not in a final state), duplicates (from the
simulator's ledger), seconds, kills and the counts by status. The goal is lost 0 and duplicates 0.

    python bench/chaos_dispatch.py [--contacts 20000] [--workers 4] [--kill-every 3]
        [--database postgresql://postgres@127.0.0.1:5432/bench] [--redis redis://127.0.0.1:6379/11]

It drops and recreates the public schema of --database and empties --redis, which must hold nothing or only what
an earlier run of this script left (it is marked as ours).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN, PHONE_NUMBER_ID, WABA_ID = "bench-token", "100000000000001", "200000000000001"
APP_SECRET = "bench-chaos-app-secret"
REDIS_CLAIM_KEY = "broadcaster:bench-chaos-owns-this-db"
FINAL = ("sent", "delivered", "read", "failed", "skipped", "cancelled")
LOG_PATH = Path(tempfile.gettempdir()) / "bench-chaos-dispatch.log"
HELLO = [{"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a "
                                  "WhatsApp message notification from the Cloud API, hosted by Meta."}]


def main() -> int:
    args = _arguments()
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the finally below stops every process started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.path.insert(0, str(ROOT))
    env = _env(args)
    os.environ.update(env)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        app = _prepare(args)
        web_url = _start_web(env, processes)
        sim_url = _start_simulator(env, f"{web_url}/webhooks/whatsapp", processes)
        env["WHATSAPP_API_BASE_URL"] = os.environ["WHATSAPP_API_BASE_URL"] = sim_url  # the workers send there
        _configure_simulator(app, args, sim_url)
        result = _run(app, args, env, sim_url)
    finally:
        for process in processes:
            _stop(process)
    print(json.dumps(result), flush=True)
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill-every", type=float, default=3.0, help="seconds between worker kills")
    parser.add_argument("--sweep-every", type=float, default=3.0, help="seconds between sweeps")
    parser.add_argument("--error-rate", type=float, default=0.10, help="share of sends answered with an error")
    parser.add_argument("--slow-rate", type=float, default=0.02, help="share of recipients answered too slowly")
    parser.add_argument("--read-timeout", type=float, default=1.0, help="the workers' SEND_READ_TIMEOUT_SECONDS")
    # Longer than the worst wait for a status webhook here: a drain job killed with its worker holds the drain flag
    # for 60 s (jobs/webhooks.py) and the webhook sweeper leaves events younger than 60 s alone. With a shorter grace
    # the sweeper retries ambiguous sends whose webhook is merely late, and they arrive twice. Production uses 600.
    parser.add_argument("--grace", type=int, default=150, help="SEND_SETTLE_GRACE_SECONDS")
    parser.add_argument("--rate", type=float, default=None, help="SEND_RATE_PER_SECOND (and the simulator's cap)")
    parser.add_argument("--timeout", type=float, default=1200, help="give up after this many seconds")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    return parser.parse_args()


def _env(args: argparse.Namespace) -> dict[str, str]:
    env = {"DATABASE_URL": args.database, "REDIS_URL": args.redis, "WHATSAPP_ACCESS_TOKEN": TOKEN,
           "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID, "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID,
           "WHATSAPP_APP_SECRET": APP_SECRET, "SEND_READ_TIMEOUT_SECONDS": str(args.read_timeout),
           "SEND_SETTLE_GRACE_SECONDS": str(args.grace), "PYTHONPATH": str(ROOT)}
    if args.rate:
        env["SEND_RATE_PER_SECOND"] = str(args.rate)
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # A session of its own, so stopping one never signals this script.
    log = LOG_PATH.open("ab")
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _crash(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process and its children: RQ's work horse has a process group of its own (setpgrp), and a
    horse left alive keeps sending, which is not a crash."""
    try:
        doomed = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        doomed = []
    for victim in doomed:
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    process.wait(timeout=10)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_for(url: str, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or still importing the app
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start; see {LOG_PATH}")


def _start_web(env: dict[str, str], processes: list) -> str:
    """The app under gunicorn: it receives the simulator's status webhooks."""
    port = _free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    processes.append(_spawn(command, {**env, "SESSION_COOKIE_SECURE": "0"}))
    url = f"http://127.0.0.1:{port}"
    _wait_for(f"{url}/webhooks/whatsapp", "gunicorn")
    return url


def _start_simulator(env: dict[str, str], webhook_url: str, processes: list) -> str:
    port = _free_port()
    command = [sys.executable, "-m", "app.whatsapp.simulator", "--port", str(port), "--webhook-url", webhook_url]
    processes.append(_spawn(command, env))
    url = f"http://127.0.0.1:{port}"
    _wait_for(f"{url}/_sim/health", "the simulator")
    return url


def _prepare(args: argparse.Namespace):
    """A fresh schema with the contacts and the template, and an empty Redis index of ours."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from app import create_app
    from app.clock import utcnow
    from app.extensions import db
    from app.models import Contact, MessageTemplate

    app = create_app()
    _claim_redis(app.extensions["redis"])
    with app.app_context():
        with db.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        upgrade()
        now = utcnow()
        rows = [{"phone": f"+9170{n:08d}", "wa_id": f"9170{n:08d}", "name": f"Customer {n}", "attributes": {},
                 "created_at": now, "updated_at": now} for n in range(args.contacts)]
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


def _configure_simulator(app, args: argparse.Namespace, sim_url: str) -> None:
    """Errors for a share of all sends, and a fixed slow answer (past the read timeout) for some recipients."""
    from app.services.sending.rate_limit import sender_rate

    with app.app_context():
        rate = sender_rate()
    share = args.error_rate / 3
    # 131026 is reported by webhook (accepted, then failed); the others are Graph errors on the request itself.
    errors = {"131000": share, "130429": share, "131026": share}
    slow_ms = (args.read_timeout + 1) * 1000
    slow = {f"9170{n:08d}": {"latency_ms": slow_ms}
            for n in random.sample(range(args.contacts), int(args.contacts * args.slow_rate))}
    config = {"max_messages_per_second": rate, "latency_ms": 20, "latency_jitter_ms": 10, "error_rates": errors,
              "fixed_outcomes": slow, "webhooks": {"enabled": True, "batch_size": 20}}
    requests.post(f"{sim_url}/_sim/config", json=config, timeout=30).raise_for_status()


def _run(app, args: argparse.Namespace, env: dict[str, str], sim_url: str) -> dict[str, Any]:
    workers = [_start_worker(env) for _ in range(args.workers)]
    _wait_for_workers(app, args.workers)
    campaign_id = _launch(app)
    started, kills = time.monotonic(), 0
    next_kill = next_sweep = started + args.kill_every
    try:
        while not _finished(app, campaign_id) and time.monotonic() - started < args.timeout:
            now = time.monotonic()
            if now >= next_kill:
                _kill_one(workers, env)
                kills, next_kill = kills + 1, now + args.kill_every
            if now >= next_sweep:
                _sweep(app)
                next_sweep = now + args.sweep_every
            time.sleep(0.2)
    finally:
        for worker in workers:
            _stop(worker)
    seconds = time.monotonic() - started
    time.sleep(2)  # the last status webhooks on their way
    return {"contacts": args.contacts, "workers": args.workers, "kills": kills, "seconds": round(seconds, 1),
            **_figures(app, campaign_id, sim_url), "load_average": [round(value, 2) for value in os.getloadavg()]}


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return _spawn([sys.executable, "worker.py"], env)  # SEND_READ_TIMEOUT_SECONDS comes from the environment


def _wait_for_workers(app, count: int) -> None:
    from rq import Worker

    deadline = time.monotonic() + 60
    while Worker.count(connection=app.extensions["redis"]) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start; see {LOG_PATH}")
        time.sleep(0.2)


def _kill_one(workers: list[subprocess.Popen[bytes]], env: dict[str, str]) -> None:
    """SIGKILL a random worker with its work horse, and start another in its place."""
    victim = random.randrange(len(workers))
    _crash(workers[victim])
    workers[victim] = _start_worker(env)


def _launch(app) -> int:
    from app.extensions import db
    from app.models import Campaign
    from app.services import campaign_lifecycle
    from jobs.campaigns import enqueue_send_batch

    with app.app_context():
        campaign = Campaign(name="Chaos", template_id=1, phone_number_id=PHONE_NUMBER_ID, audience={})
        db.session.add(campaign)
        db.session.commit()
        campaign_lifecycle.launch(campaign.id, None)
        enqueue_send_batch(campaign.id)
        return campaign.id


def _sweep(app) -> None:
    """What the every-minute periodic jobs do, more often: a bench cannot wait minutes between rounds."""
    from app.extensions import db
    from jobs.campaigns import sweep
    from jobs.webhooks import sweep_webhook_events

    with app.app_context():
        for job in (sweep, sweep_webhook_events):
            try:
                job()
            except Exception as error:  # report and go on: the next round tries again
                print(f"{job.__name__} failed: {error!r}", file=sys.stderr, flush=True)
                db.session.rollback()


def _finished(app, campaign_id: int) -> bool:
    from app.extensions import db
    from app.models import Campaign

    with app.app_context():
        return db.session.get(Campaign, campaign_id).status in ("completed", "cancelled", "failed")


def _figures(app, campaign_id: int, sim_url: str) -> dict[str, Any]:
    """Counts by status, lost recipients, duplicates, and whether the maintained counters match a recount."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Campaign, Message
    from app.services import message_state

    ledger = requests.get(f"{sim_url}/_sim/ledger", timeout=30).json()
    with app.app_context():
        counts = dict(db.session.execute(select(Message.status, func.count()).where(Message.campaign_id == campaign_id)
                                         .group_by(Message.status)).all())
        campaign = db.session.get(Campaign, campaign_id)
        counters_match = message_state.maintained(campaign) == message_state.recount(campaign_id)
        status = campaign.status
    lost = sum(number for name, number in counts.items() if name not in FINAL)
    return {"lost": lost, "duplicates": ledger["duplicates"], "campaign_status": status,
            "ledger_accepted": ledger["accepted"], "counters_match": counters_match, "by_status": counts}


if __name__ == "__main__":
    sys.exit(main())
