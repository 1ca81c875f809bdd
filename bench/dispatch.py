"""Benchmark: one campaign to 20,000 contacts through real RQ workers and the Cloud API simulator, beside the naive way.

The dispatch engine (batches, a shared Redis rate limiter, keep-alive sends from a thread pool) runs on N
`python worker.py` processes against the simulator in its own process (`python -m app.whatsapp.simulator
--no-webhooks`), which enforces the configured throughput with error 130429 and adds a little latency. Then, in
the same run, the naive way sends part of the audience again: one message per RQ job, one request at a time, a
new connection per message, no shared limiter, no retry. For each it reports messages per second against the
configured rate, duplicates from the simulator's ledger (must be 0) and lost messages (must be 0), and it prints
one final JSON line.

    python bench/dispatch.py [--contacts 20000] [--workers 3] [--naive-contacts 1000] [--latency-ms 20]
        [--database postgresql://postgres@127.0.0.1:5432/test_h4] [--redis redis://127.0.0.1:6379/11]

It drops and recreates the public schema of --database, and empties --redis, which must be an index holding
nothing or only what an earlier run of this benchmark left (it is marked as ours). The rate is the app's
SEND_RATE_PER_SECOND (set --rate to export it to the workers), 80 messages a second by default.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
TOKEN, PHONE_NUMBER_ID, WABA_ID = "bench-token", "100000000000001", "200000000000001"
REDIS_CLAIM_KEY = "broadcaster:bench-dispatch-owns-this-db"
HELLO = [{"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a "
                                  "WhatsApp message notification from the Cloud API, hosted by Meta."}]


def main() -> int:
    args = _arguments()
    sys.path.insert(0, str(ROOT))
    simulator, sim_url = _start_simulator()
    env = _worker_env(args, sim_url)
    os.environ.update(env)
    try:
        app = _prepare(args, sim_url)
        engine = _engine_run(app, args, sim_url, env)
        print(json.dumps(engine), flush=True)
        naive = _naive_run(app, args, sim_url, env)
        print(json.dumps(naive), flush=True)
    finally:
        simulator.send_signal(signal.SIGTERM)
        simulator.wait(timeout=10)
    summary = {"contacts": args.contacts, "workers": args.workers, "configured_rate": engine["configured_rate"],
               "engine_messages_per_second": engine["messages_per_second"],
               "engine_rate_used": engine["rate_used"], "engine_duplicates": engine["duplicates"],
               "engine_lost": engine["lost"], "engine_seconds": engine["seconds"],
               "naive_messages": naive["messages"], "naive_messages_per_second": naive["messages_per_second"],
               "naive_failed": naive["failed"], "naive_throttled": naive["throttled"],
               "naive_duplicates": naive["duplicates"], "naive_lost": naive["lost"],
               "speedup": round(engine["messages_per_second"] / max(naive["messages_per_second"], 0.001), 1)}
    print(json.dumps(summary))
    return 0 if engine["duplicates"] == 0 and engine["lost"] == 0 else 1


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=3, help="RQ worker processes (python worker.py)")
    parser.add_argument("--naive-contacts", type=int, default=1_000, help="how many the naive way sends")
    parser.add_argument("--rate", type=float, default=None, help="exported as SEND_RATE_PER_SECOND to the workers")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="simulator latency per send")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/test_h4")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    return parser.parse_args()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WHATSAPP_ACCESS_TOKEN": TOKEN,
           "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID, "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID}
    command = [sys.executable, "-m", "app.whatsapp.simulator", "--port", str(port), "--no-webhooks"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
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


def _worker_env(args: argparse.Namespace, sim_url: str) -> dict[str, str]:
    env = {"DATABASE_URL": args.database, "REDIS_URL": args.redis, "WHATSAPP_API_BASE_URL": sim_url,
           "WHATSAPP_ACCESS_TOKEN": TOKEN, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
           "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA_ID, "PYTHONPATH": str(ROOT)}
    if args.rate:
        env["SEND_RATE_PER_SECOND"] = str(args.rate)
    return env


def _prepare(args: argparse.Namespace, sim_url: str):
    """A fresh schema with the contacts and the template, an empty Redis index of ours, the simulator's limits."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, text

    from app import create_app
    from app.extensions import db
    from app.models import Contact, MessageTemplate
    from app.models.base import utcnow

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
        rate = _configured_rate()
    sim_config = {"max_messages_per_second": rate, "latency_ms": args.latency_ms,
                  "latency_jitter_ms": args.latency_ms / 2}
    requests.post(f"{sim_url}/_sim/config", json=sim_config, timeout=5).raise_for_status()
    return app


def _claim_redis(connection) -> None:
    if connection.dbsize() and not connection.exists(REDIS_CLAIM_KEY):
        raise SystemExit(f"{connection} holds data this benchmark did not create; pass --redis with a free index.")
    connection.flushdb()
    connection.set(REDIS_CLAIM_KEY, "1")


def _configured_rate() -> float:
    from app.services.rate_limit import sender_rate

    return sender_rate()


def _start_workers(app, count: int, env: dict[str, str], log_path: Path) -> list[subprocess.Popen[bytes]]:
    """Start `count` real workers and wait until they all listen, so start-up is not timed."""
    from rq import Worker

    log = log_path.open("ab")
    workers = [subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env={**os.environ, **env}, stdout=log,
                                stderr=subprocess.STDOUT) for _ in range(count)]
    deadline = time.monotonic() + 60
    while Worker.count(connection=app.extensions["redis"]) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"the workers did not start; see {log_path}")
        time.sleep(0.2)
    return workers


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)  # RQ's warm shutdown: the current job finishes first
    for worker in workers:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()


def _engine_run(app, args: argparse.Namespace, sim_url: str, env: dict[str, str]) -> dict[str, Any]:
    from app.extensions import db
    from app.models import Campaign
    from app.services import campaign_lifecycle
    from jobs.campaigns import enqueue_send_batch

    log_path = Path(tempfile.gettempdir()) / "bench-dispatch-workers.log"
    workers = _start_workers(app, args.workers, env, log_path)
    with app.app_context():
        campaign = Campaign(name="Benchmark", template_id=1, phone_number_id=PHONE_NUMBER_ID, audience={})
        db.session.add(campaign)
        db.session.commit()
        campaign_id, rate = campaign.id, _configured_rate()
        started = time.perf_counter()
        campaign_lifecycle.launch(campaign_id, None)
        launched = time.perf_counter()
        enqueue_send_batch(campaign_id)
    try:
        _wait_until(app, lambda: _campaign_status(campaign_id) in ("completed", "paused", "cancelled", "failed"),
                    timeout=args.contacts / rate * 3 + 120, log_path=log_path)
    finally:
        _stop_workers(workers)
    seconds = time.perf_counter() - started
    figures = _figures(app, campaign_id, sim_url)
    first, last, sent = figures.pop("first_sent"), figures.pop("last_sent"), figures["sent"]
    sending_seconds = max((last - first).total_seconds(), 0.001) if first and last else seconds
    per_second = round(sent / sending_seconds, 1)
    return {"run": "engine", "contacts": args.contacts, "workers": args.workers, "configured_rate": rate,
            "latency_ms": args.latency_ms, "launch_seconds": round(launched - started, 2),
            "seconds": round(seconds, 1), "messages_per_second": per_second,
            "rate_used": round(per_second / rate, 3), **figures}


def _campaign_status(campaign_id: int) -> str:
    from app.extensions import db
    from app.models import Campaign

    db.session.expire_all()
    return db.session.get(Campaign, campaign_id).status


def _wait_until(app, done, timeout: float, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    with app.app_context():
        while not done():
            if time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
                raise SystemExit(f"timed out; worker log ends:\n{tail}")
            time.sleep(0.5)


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
    sent = [row for row in rows if row.status == "sent"]
    unsettled = sum(1 for row in rows if row.status in ("pending", "sending"))
    never_arrived = sum(1 for row in sent if row.wa_id not in received)
    sent_ids = {row.wa_id for row in sent}
    unrecorded = sum(1 for wa_id in received if wa_id not in sent_ids)  # reached WhatsApp, not marked sent
    return {"targeted": len(rows), "sent": len(sent), "failed": sum(1 for row in rows if row.status == "failed"),
            "throttled": sum(1 for row in rows if row.error_code == 130429),
            "extra_attempts": sum(row.attempts for row in rows) - len(rows),
            "ledger_accepted": ledger["accepted"], "duplicates": ledger["duplicates"],
            "lost": unsettled + never_arrived + unrecorded, "first_sent": first, "last_sent": last}


def _naive_run(app, args: argparse.Namespace, sim_url: str, env: dict[str, str]) -> dict[str, Any]:
    requests.post(f"{sim_url}/_sim/reset", json={"keep_config": True}, timeout=5).raise_for_status()
    campaign_id, message_ids = _naive_messages(app, args.naive_contacts)
    log_path = Path(tempfile.gettempdir()) / "bench-dispatch-naive-workers.log"
    workers = _start_workers(app, args.workers, env, log_path)
    started = time.perf_counter()
    with app.app_context():
        from app.queues import DEFAULT, get_queue

        queue = get_queue(DEFAULT)
        for message_id in message_ids:
            queue.enqueue("bench.dispatch.naive_send", message_id, result_ttl=0)  # by name: workers import it
    try:
        _wait_until(app, lambda: _naive_done(campaign_id), timeout=len(message_ids) * 2 + 120, log_path=log_path)
    finally:
        _stop_workers(workers)
    seconds = time.perf_counter() - started
    figures = _figures(app, campaign_id, sim_url)
    figures.pop("first_sent"), figures.pop("last_sent")
    return {"run": "naive", "messages": len(message_ids), "workers": args.workers, "seconds": round(seconds, 1),
            "messages_per_second": round(len(message_ids) / seconds, 1), **figures}


def _naive_messages(app, count: int) -> tuple[int, list[int]]:
    """The naive way's own campaign: a pending message for each of the first `count` contacts."""
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


def _naive_done(campaign_id: int) -> bool:
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import Message

    db.session.expire_all()
    return not db.session.scalar(select(func.count()).where(Message.campaign_id == campaign_id,
                                                            Message.status.in_(("pending", "sending"))))


def naive_send(message_id: int) -> None:
    """The naive way (an RQ job): one message, a new connection, no shared rate limit, no retry."""
    from flask import current_app

    from app.extensions import db
    from app.models import Message
    from app.models.base import utcnow
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
