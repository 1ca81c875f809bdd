"""A lane's batches back to back: the next batch is claimed while one sends, and sent only if that one finished
cleanly and the campaign still runs."""

from app.extensions import db
from app.models import CampaignStatus, Message, MessageStatus
from app.services.campaigns import batches as campaign_batches
from app.services.campaigns import lanes, lifecycle
from tests.factories import campaigns as support
from tests.factories.campaigns import (
    add_contacts,
    assert_counters_match,
    campaign_row,
    launch,
    make_campaign,
    phone,
    statuses,
)

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures

S, C = MessageStatus, CampaignStatus


def _one_lane(app) -> None:
    app.config.update(SEND_PARALLEL_BATCHES=1)  # batches of 10 (the sim fixture), one after another


def test_the_next_batch_is_claimed_while_one_is_sending(app, sim, monkeypatch):
    _one_lane(app)
    add_contacts(app, 30)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    sim.configure(latency_ms=40)
    claimed_while_sending = []
    real_ready = campaign_batches.ready_batch

    def watch(campaign_id):
        with app.app_context():
            sending = db.session.scalar(db.select(db.func.count()).select_from(Message)
                                        .where(Message.status == S.SENDING))
        claimed_while_sending.append(sending)
        return real_ready(campaign_id)

    monkeypatch.setattr(campaign_batches, "ready_batch", watch)
    with app.app_context():
        report = lanes.send_lane(campaign_id, budget_seconds=60)
    assert (report.batches, report.claimed, report.sent) == (3, 30, 30)
    assert claimed_while_sending == [0, 10, 10, 10]  # the first before anything; the others beside a batch
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert sim.ledger()["accepted"] == 30 and sim.ledger()["duplicates"] == 0
    assert_counters_match(app, campaign_id)


def test_a_pause_class_error_gives_the_claimed_next_batch_back_unsent(app, sim):
    _one_lane(app)
    app.config["WHATSAPP_SEND_CONCURRENCY"] = 1  # in order: the error halts the sends after it
    add_contacts(app, 30)
    sim.configure(fixed_outcomes={phone(4)[1:]: {"code": 132015, "mode": "sync"}})
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        report = lanes.send_lane(campaign_id, budget_seconds=60)
    assert (report.batches, report.sent) == (1, 3)
    assert campaign_row(app, campaign_id).status == C.PAUSED
    assert statuses(app, campaign_id) == {S.SENT: 3, S.PENDING: 27}  # the second batch never went out
    assert sim.ledger()["accepted"] == 3
    assert_counters_match(app, campaign_id)


def test_a_pause_from_the_page_while_a_batch_sends_keeps_the_next_batch_pending(app, sim, monkeypatch):
    _one_lane(app)
    add_contacts(app, 30)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    paused = []

    def pause_once(*_):
        if not paused:  # staff press Pause as the lane looks at the campaign before sending its next batch
            paused.append(True)
            with app.app_context():
                lifecycle.pause(campaign_id)

    real_still_running = campaign_batches.still_running

    def still_running(campaign_id):
        pause_once()
        return real_still_running(campaign_id)

    monkeypatch.setattr(campaign_batches, "still_running", still_running)
    with app.app_context():
        report = lanes.send_lane(campaign_id, budget_seconds=60)
    assert (report.batches, report.sent) == (1, 10)
    assert statuses(app, campaign_id) == {S.SENT: 10, S.PENDING: 20}
    assert sim.ledger()["accepted"] == 10
    assert_counters_match(app, campaign_id)


def test_with_its_budget_spent_a_lane_claims_no_next_batch(app, sim):
    _one_lane(app)
    add_contacts(app, 30)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        report = lanes.send_lane(campaign_id, budget_seconds=0)
    assert (report.batches, report.claimed, report.next.next_step) == (1, 10, campaign_batches.NOW)
    assert statuses(app, campaign_id) == {S.SENT: 10, S.PENDING: 20}
