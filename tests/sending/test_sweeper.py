"""Crash safety: stuck messages wait for a status webhook, then the sweeper retries them; lost queues are rebuilt
from the database; and a worker crashing mid-batch never makes anyone get the message twice."""

from datetime import UTC, datetime, timedelta

from rq_scheduler import Scheduler
from sqlalchemy import select, update

from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus
from app.queues import DEFAULT
from app.services.campaigns import lifecycle, prepare
from app.services.sending import message_state
from app.whatsapp.client import WhatsAppClient
from jobs.campaigns import sweep
from tests.conftest import REDIS_CLAIM_KEY, run_jobs
from tests.factories import campaigns as support
from tests.factories.campaigns import (
    add_contacts,
    assert_counters_match,
    campaign_row,
    claim_of,
    launch,
    make_campaign,
    messages,
    phone,
    statuses,
)

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures
S, C = MessageStatus, CampaignStatus


def age_claims(app, campaign_id: int, seconds: float) -> None:
    """Let `seconds` pass for every message in sending."""
    with app.app_context():
        db.session.execute(update(Message).where(Message.campaign_id == campaign_id, Message.status == S.SENDING)
                           .values(claimed_at=datetime.now(UTC) - timedelta(seconds=seconds)))
        db.session.commit()


def status_webhook(app, message_ids: list[int], wamids: dict[int, str] | None = None) -> None:
    """Stands in for the webhook engineer's status processing: WhatsApp reports these messages as sent."""
    with app.app_context():
        totals = message_state.new_totals()
        for message in db.session.scalars(select(Message).where(Message.id.in_(message_ids))).unique():
            message_state.move(message, S.SENT, datetime.now(UTC), totals)
            message.wamid = message.wamid or (wamids or {}).get(message.id)
        message_state.add_to_counters(totals)
        db.session.commit()


def run_sweep(app) -> dict:
    with app.app_context():
        report = sweep()
    run_jobs(app)
    return report


def test_stuck_messages_wait_out_the_grace_period_then_are_sent_again(app, sim):
    app.config["SEND_SETTLE_GRACE_SECONDS"] = 600
    add_contacts(app, 3)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        claim_of(campaign_id, 10, datetime.now(UTC))  # then the worker died

    age_claims(app, campaign_id, 599)
    assert run_sweep(app)["returned"] == 0
    assert statuses(app, campaign_id) == {S.SENDING: 3} and sim.ledger()["accepted"] == 0

    age_claims(app, campaign_id, 601)
    assert run_sweep(app)["returned"] == 3
    assert statuses(app, campaign_id) == {S.SENT: 3}
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert_counters_match(app, campaign_id)


def test_a_status_webhook_settles_an_unanswered_send_so_it_is_never_sent_twice(app, sim):
    app.config.update(SEND_READ_TIMEOUT_SECONDS=0.3, SEND_SETTLE_GRACE_SECONDS=600)
    add_contacts(app, 2)
    sim.configure(fixed_outcomes={phone(1)[1:]: {"latency_ms": 800}})
    campaign_id = make_campaign(app)
    launch(app, campaign_id)
    unknown = messages(app, campaign_id)[phone(1)]
    assert unknown.status == S.SENDING

    status_webhook(app, [unknown.id], {unknown.id: sim.simulator.ledger.last_wamid[phone(1)[1:]]})
    age_claims(app, campaign_id, 3600)
    report = run_sweep(app)
    assert (report["returned"], report["completed"]) == (0, [campaign_id])
    assert sim.ledger(detail=True)["per_recipient"][phone(1)[1:]] == 1
    assert_counters_match(app, campaign_id)


def test_out_of_tries_a_stuck_message_fails_with_the_no_answer_explanation(app, sim):
    app.config.update(SEND_MAX_ATTEMPTS=1)
    add_contacts(app, 1)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        ids = claim_of(campaign_id, 10, datetime.now(UTC))
        db.session.execute(update(Message).where(Message.id.in_(ids)).values(attempts=1))
        db.session.commit()
    age_claims(app, campaign_id, 3600)
    report = run_sweep(app)

    message = messages(app, campaign_id)[phone(1)]
    assert report["failed"] == 1 and message.status == S.FAILED
    assert message.error_title == "No answer from WhatsApp"
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert_counters_match(app, campaign_id)


def test_the_sweeper_rebuilds_lost_batches_and_scheduled_starts_from_the_database(app, sim):
    add_contacts(app, 12)
    campaign_id = make_campaign(app)
    scheduled_id = make_campaign(app, name="Later", schedule_kind="at",
                                 scheduled_at=datetime.now(UTC) + timedelta(hours=1))
    with app.app_context():
        lifecycle.launch(campaign_id, None)  # committed, but Redis lost the batches …
        lifecycle.start(scheduled_id, None)  # … and the scheduled start
    app.extensions["redis"].flushdb()
    app.extensions["redis"].set(REDIS_CLAIM_KEY, "1")

    report = run_sweep(app)
    assert report["due"] == [campaign_id] and report["batches_queued"] == 4
    assert report["starts_rescheduled"] == 1
    assert campaign_row(app, campaign_id).status == C.COMPLETED and sim.ledger()["accepted"] == 12
    with app.app_context():
        scheduler = Scheduler(queue_name=DEFAULT, connection=app.extensions["redis"])
        assert [job.args for job in scheduler.get_jobs()] == [(scheduled_id,)]
    assert run_sweep(app)["starts_rescheduled"] == 0  # already there: not scheduled twice


def test_the_sweeper_completes_a_campaign_whose_last_message_a_webhook_settled(app, sim):
    add_contacts(app, 1)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        ids = claim_of(campaign_id, 10, datetime.now(UTC))
    status_webhook(app, ids)
    assert campaign_row(app, campaign_id).status == C.RUNNING
    assert run_sweep(app)["completed"] == [campaign_id]
    assert campaign_row(app, campaign_id).status == C.COMPLETED


def test_a_worker_crash_mid_batch_then_restart_sends_nobody_anything_twice(app, sim):
    app.config["SEND_SETTLE_GRACE_SECONDS"] = 600
    add_contacts(app, 25)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    # The worker claims a batch of 10, gets six out, and dies before writing any result.
    with app.app_context():
        claimed = claim_of(campaign_id, 10, datetime.now(UTC))
        items = prepare.prepare(db.session.get(Campaign, campaign_id), claimed, datetime.now(UTC))
        client = WhatsAppClient(support_settings(app))
        out = {item.message_id: client.send_template(item.to, "hello_world", "en_US", item.components,
                                                     biz_opaque_callback_data=item.callback).wamid
               for item in items[:6]}
        client.close()

    run_jobs(app)  # the restarted workers send everything else, and leave the ten ambiguous ones alone
    assert statuses(app, campaign_id) == {S.SENT: 15, S.SENDING: 10}
    status_webhook(app, list(out), out)  # statuses arrive for the six that really went out
    age_claims(app, campaign_id, 601)
    run_sweep(app)  # after the grace period the other four are sent

    ledger = sim.ledger(detail=True)
    assert (ledger["accepted"], ledger["recipients"], ledger["duplicates"]) == (25, 25, 0)
    assert statuses(app, campaign_id) == {S.SENT: 25}
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert_counters_match(app, campaign_id)


def support_settings(app):
    from app.services.sending.sender import whatsapp_settings

    return whatsapp_settings(support.PHONE_NUMBER_ID)
