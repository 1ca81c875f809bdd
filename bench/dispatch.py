"""Benchmark: campaigns of 20,000 recipients through real RQ workers and the Cloud API simulator, beside the raw
ceiling and the naive one-job-per-message design, on SQLite and PostgreSQL with 2 and 4 workers.

For every database × worker count it measures three things against the same simulator (its own process, 50 ms
latency, webhooks off, enforcing the rate limit with error 130429), all the same way: messages sent divided by
the wall time from launch to the last message reaching a final state.

- ours: the dispatch engine (`python worker.py` processes sending campaign batches), from the launch (the
  messages are written, the batches queued) to the last message's sent_at or failed_at;
- raw: the same WhatsAppClient in a bare loop, as many processes as workers, each with the workers' send
  concurrency (WHATSAPP_SEND_CONCURRENCY) in threads, no database, no queue, no rate limiter, from the start signal
  to the last answer (measured once per worker count, since it does not touch the database);
- baseline: the seed design, one RQ job per message (load it, send it, write the result), on fewer messages, from
  writing its messages and queueing its jobs to the last message's sent_at or failed_at.

The end is read from the rows (the timestamps the app writes as it records each result); observed_seconds, when
this script saw the run finish by polling (up to 0.25 s late), is printed beside it as a check.

Every run must do what it claims, or the script says why on stderr and exits 1: every message sent, none lost
(not final, or the database and the simulator's ledger disagree), no duplicates in the ledger. The final JSON line
holds messages per second, ours/raw and ours/baseline, the goals and the load average (the machine is shared:
read figures beside it). The rate limit is SEND_RATE_PER_SECOND=--rate, 2,000/s by default, above anything
reached, so that it does not cap what is measured; the batch size is pinned (--batch-size, SEND_BATCH_SIZE) to
the 1,250 the engine picks for a 1,000/s sender with its 4 lanes (5 seconds of a lane's share), so 20,000
recipients make 4 batches per lane.

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
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _common as common  # noqa: E402

LOG_PATH = Path(tempfile.gettempdir()) / "bench-dispatch-workers.log"
GOAL_RATE, GOAL_RAW_SHARE, GOAL_SPEEDUP = 1000, 0.7, 20
MEASURE = ("messages sent / seconds from launch to the last message's final status (raw: from the start signal to "
           "the last answer)")


def main() -> int:
    args = _arguments()
    os.environ.update(_env(args, ""))
    simulator, sim_url = common.start_simulator(["--no-webhooks"], {})
    os.environ["WHATSAPP_API_BASE_URL"] = sim_url
    started_load = common.load_average()
    try:
        results = _matrix(args, sim_url, simulator.pid)
    finally:
        common.stop([simulator])
    return common.report(_summary(args, results, started_load))


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
    env = {**common.whatsapp_env(), "REDIS_URL": args.redis, "SEND_RATE_PER_SECOND": str(args.rate)}
    if getattr(args, "batch_size", 0):
        env["SEND_BATCH_SIZE"] = str(args.batch_size)
    env.update(setting.split("=", 1) for setting in args.set)
    if database:
        env["DATABASE_URL"] = database
    return env


def _matrix(args: argparse.Namespace, sim_url: str, simulator_pid: int) -> list[dict[str, Any]]:
    raw = {workers: _raw_run(args, sim_url, workers) for workers in args.workers} if "raw" not in args.skip else {}
    results = []
    for name in args.db:
        database = args.postgresql if name == "postgresql" else f"sqlite:///{args.sqlite}"
        os.environ.update(_env(args, database))
        app = common.prepare(args.recipients, common.DISPATCH_CLAIM_KEY, args.sqlite if name == "sqlite" else None)
        for workers in args.workers:
            ours = _ours_run(app, args, sim_url, workers, simulator_pid)
            baseline = _baseline_run(app, args, sim_url, workers) if "baseline" not in args.skip else None
            result = _configuration(name, workers, ours, raw.get(workers), baseline)
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


def _configuration(database: str, workers: int, ours: dict, raw: dict | None, baseline: dict | None) -> dict:
    rate = ours["messages_per_second"]
    parts = {"ours": ours, "raw": raw, "baseline": baseline}
    problems = [f"{database}, {workers} workers, {part}: {problem}"
                for part, figures in parts.items() if figures for problem in figures["problems"]]
    result = {"db": database, "workers": workers, "messages_per_second": rate,
              "first_claim_to_last_sent_per_second": ours["first_claim_to_last_sent_per_second"],
              "raw_messages_per_second": raw["messages_per_second"] if raw else None,
              "baseline_messages_per_second": baseline["messages_per_second"] if baseline else None,
              "ours_over_raw": round(rate / raw["messages_per_second"], 3) if raw else None,
              "ours_over_baseline": round(rate / baseline["messages_per_second"], 1) if baseline else None,
              "duplicates": sum(figures["duplicates"] for figures in parts.values() if figures),
              "lost": sum(figures["lost"] for figures in parts.values() if figures), "problems": problems}
    return result | {part: figures for part, figures in parts.items() if figures}


def _summary(args: argparse.Namespace, results: list[dict], started_load: list[float]) -> dict[str, Any]:
    postgresql_4 = [r["messages_per_second"] for r in results if r["db"] == "postgresql" and r["workers"] == 4]
    raw_shares = [r["ours_over_raw"] for r in results if r["ours_over_raw"] is not None]
    speedups = [r["ours_over_baseline"] for r in results if r["ours_over_baseline"] is not None]
    goals = {f"postgresql_4_workers_at_least_{GOAL_RATE}": postgresql_4[0] >= GOAL_RATE if postgresql_4 else None,
             f"ours_over_raw_at_least_{GOAL_RAW_SHARE}": min(raw_shares) >= GOAL_RAW_SHARE if raw_shares else None,
             f"ours_over_baseline_at_least_{GOAL_SPEEDUP}": min(speedups) >= GOAL_SPEEDUP if speedups else None}
    configurations = [{key: value for key, value in result.items() if key not in ("ours", "raw", "baseline")}
                      for result in results]
    return {"recipients": args.recipients, "measure": MEASURE, "latency_ms": args.latency_ms,
            "rate_limit": args.rate, "send_concurrency_per_worker": _send_concurrency(),
            "batch_size": args.batch_size, "settings": args.set,
            "worker_class": "SimpleWorker" if args.simple_workers else "Worker (fork per job)",
            "baseline_messages": args.baseline_messages if "baseline" not in args.skip else 0,
            "configurations": configurations, "duplicates": sum(r["duplicates"] for r in results),
            "lost": sum(r["lost"] for r in results), "goals": goals,
            "problems": [problem for result in results for problem in result["problems"]],
            "load_average_at_start": started_load, "load_average_at_end": common.load_average(),
            "cpus": os.cpu_count()}


def _send_concurrency() -> int:
    from app.config import Config

    return int(Config().WHATSAPP_SEND_CONCURRENCY)


# --- ours -----------------------------------------------------------------------------------------------------------

def _ours_run(app, args: argparse.Namespace, sim_url: str, workers: int, simulator_pid: int) -> dict[str, Any]:
    common.configure_simulator(sim_url, args.latency_ms, cap=args.rate)
    processes = common.start_workers(app, workers, {}, LOG_PATH, args.simple_workers)
    simulator_cpu = _simulator_cpu(simulator_pid)
    psutil.cpu_percent()  # starts the machine's busy share from here
    launched_at, started = datetime.now(UTC), time.perf_counter()
    campaign_id = common.launch_campaign(app, f"Benchmark {workers} workers")
    launch_seconds = time.perf_counter() - started
    try:
        common.wait_until(app, lambda: common.campaign_status(app, campaign_id) in ("completed", "paused",
                                                                                    "cancelled", "failed"),
                          timeout=args.recipients / 50 + 120, log=LOG_PATH)
        observed = time.perf_counter() - started
        worker_cpu, machine_busy = common.cpu_seconds(processes), psutil.cpu_percent()
    finally:
        common.stop_workers(app, processes)
    status = common.campaign_status(app, campaign_id)
    figures = _figures(app, campaign_id, sim_url, launched_at, args.recipients)
    if status != "completed":
        figures["problems"].append(f"the campaign ended {status}, not completed")
    thousands = max(figures["sent"], 1) / 1000
    return {"workers": workers, "launch_seconds": round(launch_seconds, 2), **figures,
            "observed_seconds": round(observed, 2),
            "worker_cpu_seconds_per_1000": round(worker_cpu / thousands, 2),
            "simulator_cpu_seconds_per_1000": round((_simulator_cpu(simulator_pid) - simulator_cpu) / thousands, 2),
            "machine_cpu_busy_percent": machine_busy, "campaign_status": status, "load_average": common.load_average()}


def _simulator_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _figures(app, campaign_id: int, sim_url: str, launched_at: datetime, expected: int) -> dict[str, Any]:
    """Seconds from launch to the last final status, and the outcomes against the simulator's ledger."""
    rows = common.campaign_messages(app, campaign_id)
    checks = common.audit(rows, common.ledger(sim_url, detail="1"), campaign_id)
    sent = sum(1 for row in rows if row.status in common.SENT)
    last = common.last_final_at(rows)
    seconds = max((last - launched_at).total_seconds(), 0.001) if last else None
    claims = [row.claimed_at for row in rows if row.claimed_at]
    sends = [row.sent_at for row in rows if row.sent_at]
    problems = [f"{sent} of {expected} messages sent ({len(rows)} targeted)"] if sent != expected else []
    problems += [f"{checks[name]} {name.replace('_', ' ')}" for name in ("lost", "duplicates", "other_duplicates")
                 if checks[name]]
    return {"targeted": len(rows), "sent": sent, "seconds": round(seconds, 2) if seconds else None,
            "messages_per_second": round(sent / seconds, 1) if seconds else 0.0,
            "first_claim_to_last_sent_seconds":
                round((max(sends) - min(claims)).total_seconds(), 2) if claims and sends else None,
            # The earlier versions' measure (first claim to last send), to compare with figures quoted before.
            "first_claim_to_last_sent_per_second":
                round(sent / max((max(sends) - min(claims)).total_seconds(), 0.001), 1) if claims and sends else None,
            "failed": sum(1 for row in rows if row.status == "failed"),
            "throttled": sum(1 for row in rows if row.error_code == 130429),
            "extra_attempts": sum(row.attempts for row in rows) - len(rows), **checks, "problems": problems}


# --- raw ceiling ----------------------------------------------------------------------------------------------------

def _raw_run(args: argparse.Namespace, sim_url: str, workers: int) -> dict[str, Any]:
    """The client alone: `workers` processes × the send concurrency in threads, all starting together."""
    concurrency = _send_concurrency()
    common.configure_simulator(sim_url, args.latency_ms, cap=0)
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
    snapshot = common.ledger(sim_url)
    lost = abs(snapshot["accepted"] - workers * concurrency - sends)  # the warm-up sends are in the ledger too
    problems = [f"{count} {name}" for name, count in (("failed sends", failures), ("lost", lost),
                                                       ("duplicates", snapshot["duplicates"])) if count]
    result = {"workers": workers, "concurrency_per_process": concurrency, "sends": sends,
              "seconds": round(ended - started, 2), "messages_per_second": round(sends / (ended - started), 1),
              "failures": failures, "duplicates": snapshot["duplicates"], "lost": lost,
              "client_cpu_seconds_per_1000": round(sum(o["cpu"] for o in outcomes) / (sends / 1000), 2),
              "load_average": common.load_average(), "problems": problems}
    print(json.dumps({"raw": result}), flush=True)
    return result


def _raw_process(sim_url: str, concurrency: int, first: int, count: int, ready, go, results) -> None:
    """One process of the raw run: warm the keep-alive connections, wait for the start, send `count` messages."""
    from app.whatsapp.client import WhatsAppClient
    from app.whatsapp.settings import WhatsAppSettings

    settings = WhatsAppSettings(base_url=sim_url, api_version="v23.0",
                                access_token=common.TOKEN, phone_number_id=common.PHONE_NUMBER_ID,
                                business_account_id=common.WABA_ID, concurrency=concurrency)
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
    """Its launch writes a pending message per recipient and queues one job each; timed like ours from there."""
    common.configure_simulator(sim_url, args.latency_ms, cap=args.rate)
    processes = common.start_workers(app, workers, {}, LOG_PATH, args.simple_workers)
    launched_at, started = datetime.now(UTC), time.perf_counter()
    campaign_id = _baseline_launch(app, args.baseline_messages)
    try:
        common.wait_until(app, lambda: _baseline_done(campaign_id), timeout=args.baseline_messages + 120,
                          log=LOG_PATH)
        observed = time.perf_counter() - started
    finally:
        common.stop_workers(app, processes)
    figures = _figures(app, campaign_id, sim_url, launched_at, args.baseline_messages)
    return {"messages": args.baseline_messages, "workers": workers, **figures, "observed_seconds": round(observed, 2),
            "load_average": common.load_average()}


def _baseline_launch(app, count: int) -> int:
    """The naive design's own campaign: a pending message for each of the first `count` contacts, a job each."""
    from sqlalchemy import select

    from app.extensions import db
    from app.models import Campaign, Contact, Message
    from app.queues import DEFAULT, get_queue

    with app.app_context():
        campaign = Campaign(name="Naive", template_id=1, phone_number_id=common.PHONE_NUMBER_ID, audience={},
                            status="running")
        run = campaign.send_run()
        db.session.add(campaign)
        db.session.flush()
        contact_ids = db.session.scalars(select(Contact.id).order_by(Contact.id).limit(count)).all()
        messages = [Message(campaign_id=campaign.id, run_id=run.id, contact_id=contact_id)
                    for contact_id in contact_ids]
        db.session.add_all(messages)
        campaign.targeted = len(messages)
        db.session.commit()
        queue = get_queue(DEFAULT)
        for message in messages:
            queue.enqueue("bench.dispatch.naive_send", message.id, result_ttl=0)  # by name: workers import it
        return campaign.id


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
    from app.whatsapp import callback
    from app.whatsapp.client import WhatsAppClient
    from app.whatsapp.settings import WhatsAppSettings

    message = db.session.get(Message, message_id)
    campaign, contact = message.campaign, message.contact
    rendered = common.render(campaign, contact)
    with WhatsAppClient(WhatsAppSettings.from_mapping(current_app.config)) as client:
        result = client.send_template(contact.wa_id, campaign.template.name, campaign.template.language,
                                      rendered.components,
                                      biz_opaque_callback_data=callback.encode(message.id, message.run_id))
    common.record_send(message, result.ok, utcnow())
    message.wamid, message.error_code, message.attempts = result.wamid, result.error_code, 1
    db.session.commit()


if __name__ == "__main__":
    sys.exit(main())
