"""A real `python worker.py` process is SIGKILLed in the middle of a batch; the campaign still finishes with
every message in a final state and nobody getting the message twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from rq import Worker
from sqlalchemy import select

from app.extensions import db
from app.models import CampaignStatus, Contact, Message, MessageStatus
from tests.factories import campaigns as support
from tests.factories.campaigns import add_contacts, assert_counters_match, campaign_row, launch, make_campaign
from tests.sending.test_sweeper import age_claims, run_sweep, status_webhook

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures
S, C = MessageStatus, CampaignStatus
ROOT = Path(__file__).resolve().parents[2]
FINAL = {S.SENT, S.DELIVERED, S.READ, S.FAILED, S.SKIPPED, S.CANCELLED}
CONTACTS = 200


def start_worker(app, log_path: Path) -> subprocess.Popen[bytes]:
    """A real RQ worker on the test's database and Redis; slow enough (2 sends at a time) to be caught mid-batch."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "REDIS_URL": app.config["REDIS_URL"], "SEND_BATCH_SIZE": "50", "WHATSAPP_SEND_CONCURRENCY": "2",
           "SEND_RATE_PER_SECOND": "1000"}
    env.update({name: str(app.config[name]) for name in ("WHATSAPP_API_BASE_URL", "WHATSAPP_ACCESS_TOKEN",
                                                         "WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_BUSINESS_ACCOUNT_ID")})
    return subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log_path.open("wb"),
                            stderr=subprocess.STDOUT)


def crash(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker and its work horse, as a crashed machine would: the horse has a process group of its
    own (RQ calls setpgrp), so killing the worker alone would leave it sending."""
    try:
        doomed = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        doomed = []
    for process in doomed:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    worker.wait(10)


def wait_for(condition, timeout: float, what: str, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}; worker log:\n{log_path.read_text(errors='replace')[-2000:]}"
        time.sleep(0.02)


def in_sending(app, campaign_id: int) -> dict[int, str]:
    """The campaign's messages left in sending, with their recipients' wa_id."""
    with app.app_context():
        rows = db.session.execute(select(Message.id, Contact.wa_id).join(Contact, Contact.id == Message.contact_id)
                                  .where(Message.campaign_id == campaign_id, Message.status == S.SENDING)).all()
    return {row.id: row.wa_id for row in rows}


def settle_what_whatsapp_has(app, sim, campaign_id: int) -> int:
    """The status webhooks for sends that reached WhatsApp before the crash (the simulator posts none here)."""
    reached = sim.simulator.ledger.last_wamid
    wamids = {message_id: reached[wa_id] for message_id, wa_id in in_sending(app, campaign_id).items()
              if wa_id in reached}
    status_webhook(app, list(wamids), wamids)
    return len(wamids)


def test_a_real_worker_killed_mid_batch_loses_nothing_and_sends_nothing_twice(app, sim, tmp_path):
    app.config["SEND_SETTLE_GRACE_SECONDS"] = 600
    add_contacts(app, CONTACTS)
    campaign_id = make_campaign(app)
    sim.configure(latency_ms=100)
    log_path = tmp_path / "worker.log"
    worker = start_worker(app, log_path)
    try:
        wait_for(lambda: Worker.count(connection=app.extensions["redis"]) >= 1, 20, "the worker did not start",
                 log_path)
        launch(app, campaign_id, run=False)
        wait_for(lambda: sim.ledger()["accepted"] >= 20, 20, "the worker sent nothing", log_path)
    finally:
        crash(worker)
    stranded = in_sending(app, campaign_id)
    assert stranded, "the kill came between batches: nothing was left in sending"

    sim.configure(latency_ms=0)
    run_sweep(app)  # the other lanes' batches, in this process; the dead lane's claims stay in sending
    assert settle_what_whatsapp_has(app, sim, campaign_id) > 0
    for _ in range(3):  # past the grace period the rest go back to pending and are sent
        if campaign_row(app, campaign_id).status == C.COMPLETED:
            break
        age_claims(app, campaign_id, 601)
        run_sweep(app)

    ledger = sim.ledger()
    assert (ledger["duplicates"], ledger["recipients"]) == (0, CONTACTS)
    with app.app_context():
        left = db.session.scalars(select(Message.status).where(Message.campaign_id == campaign_id,
                                                               Message.status.not_in(FINAL))).all()
    assert left == []
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert_counters_match(app, campaign_id)


def test_a_lane_whose_worker_was_killed_can_be_queued_again(app, monkeypatch):
    """RQ 3 cannot delete a job whose execution died with a SIGKILLed worker; the lane must still be re-queued."""
    from rq.job import Job

    from jobs import campaigns as campaign_jobs
    from jobs import lanes

    with app.app_context():
        assert len(campaign_jobs.enqueue_send_batch(4242, lane=0)) == 1

        def broken_delete(self, *args, **kwargs):
            raise ValueError(f"Execution {self.id} not found in Redis")

        monkeypatch.setattr(Job, "delete", broken_delete)
        monkeypatch.setattr(lanes, "_alive", lambda job, later_is_enough: False)  # its worker is gone
        again = campaign_jobs.enqueue_send_batch(4242, lane=0)
    assert [job.get_status() for job in again] == ["queued"]  # before the fix: ValueError, lane stuck for good
