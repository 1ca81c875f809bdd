"""Chaos benchmark: one campaign through real RQ workers while a worker is SIGKILLed every few seconds.

The simulator runs in its own process and answers 10% of sends with errors (retryable 131000 and 130429,
permanent 131026) and 2% of recipients so slowly that the client's read times out, so those sends are ambiguous.
Status webhooks go to the app under gunicorn (signed with a shared WHATSAPP_APP_SECRET), which is what settles an
ambiguous send without sending it twice. The script itself plays the scheduler: every few seconds it runs the
campaign sweeper (settle stuck messages after SEND_SETTLE_GRACE_SECONDS, requeue lost batches) and the webhook
event sweeper. At the end it prints one JSON line: lost and duplicate messages, seconds, kills and the counts by
status. The goal is lost 0 and duplicates 0.

Both are counted against the simulator's ledger, not only from our own rows: a duplicate is a recipient who got
the campaign's message more than once at the simulator; a message is lost when it is not in a final state, when
our database says sent, delivered or read but the simulator never accepted it, or when the simulator never got it
and it is not failed or skipped. Any of these, a timeout, or counters that differ from a recount exit 1.

    python bench/chaos_dispatch.py [--contacts 20000] [--workers 4] [--kill-every 3]
        [--database postgresql://postgres@127.0.0.1:5432/bench] [--redis redis://127.0.0.1:6379/11]

It drops and recreates the public schema of --database and empties --redis, which must hold nothing or only what
an earlier run of this script left (it is marked as ours).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as common  # noqa: E402

APP_SECRET = "bench-chaos-app-secret"
REDIS_CLAIM_KEY = "broadcaster:bench-chaos-owns-this-db"
LOG_PATH = Path(tempfile.gettempdir()) / "bench-chaos-dispatch.log"


def main() -> int:
    args = _arguments()
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the finally below stops every process started here.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = _env(args)
    os.environ.update(env)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        app = common.prepare(args.contacts, REDIS_CLAIM_KEY)
        web_url = _start_web(env, processes)
        simulator, sim_url = common.start_simulator(["--webhook-url", f"{web_url}/webhooks/whatsapp"], env, LOG_PATH)
        processes.append(simulator)
        env["WHATSAPP_API_BASE_URL"] = os.environ["WHATSAPP_API_BASE_URL"] = sim_url  # the workers send there
        _configure_simulator(app, args, sim_url)
        result = _run(app, args, env, sim_url)
    finally:
        common.stop(processes)
    return common.report(result)


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
    env = {**common.whatsapp_env(), "DATABASE_URL": args.database, "REDIS_URL": args.redis,
           "WHATSAPP_APP_SECRET": APP_SECRET, "SEND_READ_TIMEOUT_SECONDS": str(args.read_timeout),
           "SEND_SETTLE_GRACE_SECONDS": str(args.grace)}
    if args.rate:
        env["SEND_RATE_PER_SECOND"] = str(args.rate)
    return env


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


def _start_web(env: dict[str, str], processes: list) -> str:
    """The app under gunicorn: it receives the simulator's status webhooks."""
    port = common.free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", "4", "-b", f"127.0.0.1:{port}", "wsgi:app"]
    processes.append(common.spawn(command, {**env, "SESSION_COOKIE_SECURE": "0"}, LOG_PATH))
    url = f"http://127.0.0.1:{port}"
    common.wait_for_http(f"{url}/webhooks/whatsapp", "gunicorn", processes[-1])
    return url


def _configure_simulator(app, args: argparse.Namespace, sim_url: str) -> None:
    """Errors for a share of all sends, and a fixed slow answer (past the read timeout) for some recipients."""
    with app.app_context():
        rate = common.sender_rate()
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
    common.wait_for_workers(app, args.workers, LOG_PATH)
    campaign_id = common.launch_campaign(app, "Chaos")
    started, kills = time.monotonic(), 0
    next_kill = next_sweep = started + args.kill_every
    try:
        while not (finished := _finished(app, campaign_id)) and time.monotonic() - started < args.timeout:
            now = time.monotonic()
            if now >= next_kill:
                _kill_one(workers, env)
                kills, next_kill = kills + 1, now + args.kill_every
            if now >= next_sweep:
                _sweep(app)
                next_sweep = now + args.sweep_every
            time.sleep(0.2)
    finally:
        common.stop(workers)
    seconds = time.monotonic() - started
    time.sleep(2)  # the last status webhooks on their way
    figures = _figures(app, campaign_id, sim_url)
    if not finished:
        figures["problems"].insert(0, f"the campaign did not finish within --timeout {args.timeout:.0f} s")
    return {"contacts": args.contacts, "workers": args.workers, "kills": kills, "seconds": round(seconds, 1),
            "finished": finished, **figures, "load_average": common.load_average()}


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return common.spawn([sys.executable, "worker.py"], env, LOG_PATH)  # SEND_READ_TIMEOUT_SECONDS from env


def _kill_one(workers: list[subprocess.Popen[bytes]], env: dict[str, str]) -> None:
    """SIGKILL a random worker with its work horse, and start another in its place."""
    victim = random.randrange(len(workers))
    _crash(workers[victim])
    workers[victim] = _start_worker(env)


def _sweep(app) -> None:
    """What the every-minute periodic jobs do, more often: a bench cannot wait minutes between rounds."""
    from app.extensions import db

    with app.app_context():
        for job in common.sweepers():
            try:
                job()
            except Exception as error:  # report and go on: the next round tries again
                print(f"{job.__name__} failed: {error!r}", file=sys.stderr, flush=True)
                db.session.rollback()


def _finished(app, campaign_id: int) -> bool:
    return common.campaign_status(app, campaign_id) in ("completed", "cancelled", "failed")


def _figures(app, campaign_id: int, sim_url: str) -> dict[str, Any]:
    """Counts by status, lost and duplicate messages against the simulator's ledger, and whether the maintained
    counters match a recount."""
    rows = common.campaign_messages(app, campaign_id)
    checks = common.audit(rows, common.ledger(sim_url, detail="1"), campaign_id)
    with app.app_context():
        counters_match = common.counters_match(campaign_id)
    problems = [f"{checks[name]} {name.replace('_', ' ')}" for name in ("lost", "duplicates", "other_duplicates")
                if checks[name]]
    if not counters_match:
        problems.append("the campaign's counters differ from a recount")
    failed = Counter(str(row.error_code) for row in rows if row.status == "failed")
    return {**checks, "campaign_status": common.campaign_status(app, campaign_id), "counters_match": counters_match,
            "by_status": dict(Counter(row.status for row in rows)), "failed_by_error_code": dict(failed),
            "problems": problems}


if __name__ == "__main__":
    sys.exit(main())
