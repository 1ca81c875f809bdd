"""Launching (materialising recipients), scheduling, pausing, resuming and cancelling campaigns."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from rq_scheduler import Scheduler
from sqlalchemy import event, select, update

import jobs.campaigns
from app.extensions import db
from app.models import AuditEntry, Campaign, CampaignStatus, Message, MessageStatus
from app.queues import DEFAULT
from app.services.campaigns import batches as campaign_batches
from app.services.campaigns import lifecycle
from app.services.errors import ServiceError
from jobs.campaigns import enqueue_send_batch, launch_scheduled, schedule_start, send_batch, unschedule_start
from tests.conftest import run_jobs
from tests.factories import campaigns as support
from tests.factories.campaigns import (
    add_contacts,
    assert_counters_match,
    campaign_row,
    launch,
    make_campaign,
    messages,
    phone,
    statuses,
)

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures
S, C = MessageStatus, CampaignStatus


def scheduled_starts(app) -> list[tuple[str, datetime]]:
    with app.app_context():
        scheduler = Scheduler(queue_name=DEFAULT, connection=app.extensions["redis"])
        return [(job.id, when) for job, when in scheduler.get_jobs(with_times=True)]


def fire_scheduled_starts(app) -> None:
    """What rq-scheduler does when the time comes: move the start jobs to their queue; then run them."""
    with app.app_context():
        scheduler = Scheduler(queue_name=DEFAULT, connection=app.extensions["redis"])
        for job in scheduler.get_jobs():
            scheduler.enqueue_job(job)
    run_jobs(app)


def test_launch_materialises_recipients_with_one_insert_select(app, sim):
    add_contacts(app, 3)
    add_contacts(app, 1, start=4, opted_out_at=datetime(2025, 1, 2, 23, 30, tzinfo=UTC))
    add_contacts(app, 1, start=5, deleted_at=datetime(2025, 6, 1, tzinfo=UTC))
    campaign_id = make_campaign(app)
    inserts: list[str] = []
    with app.app_context():
        def count_inserts(conn, cursor, statement, *args):
            if statement.lstrip().upper().startswith("INSERT INTO MESSAGES"):
                inserts.append(statement)

        event.listen(db.engine, "before_cursor_execute", count_inserts)
        try:
            lifecycle.launch(campaign_id, None)
        finally:
            event.remove(db.engine, "before_cursor_execute", count_inserts)

    assert len(inserts) == 1 and "SELECT" in inserts[0].upper()
    rows = messages(app, campaign_id)
    assert sorted(rows) == [phone(n) for n in range(1, 5)]  # the deleted contact is not a recipient
    assert {rows[phone(n)].status for n in (1, 2, 3)} == {S.PENDING}
    assert rows[phone(4)].status == S.SKIPPED and rows[phone(4)].skip_reason == "Opted out of messages on 2025-01-02"
    campaign = campaign_row(app, campaign_id)
    assert (campaign.status, campaign.targeted, campaign.skipped) == (C.RUNNING, 4, 1)
    assert campaign.started_at is not None
    assert_counters_match(app, campaign_id)
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.launch"))
        assert entry.target == f"campaign:{campaign_id}" and "4 contacts (1 skipped)" in entry.summary


def test_the_audience_is_frozen_at_launch(app, sim):
    add_contacts(app, 2)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    add_contacts(app, 1, start=3)  # joins after launch: not part of this campaign
    run_jobs(app)
    assert sorted(messages(app, campaign_id)) == [phone(1), phone(2)]
    assert sim.ledger()["recipients"] == 2
    assert campaign_row(app, campaign_id).status == C.COMPLETED


def test_launch_problems_block_the_launch_and_change_nothing(app, sim):
    campaign_id = make_campaign(app)  # nobody to send to
    with app.app_context(), pytest.raises(ServiceError, match="No contacts match this audience."):
        lifecycle.launch(campaign_id, None)
    assert campaign_row(app, campaign_id).status == C.DRAFT
    assert messages(app, campaign_id) == {}


def test_a_campaign_launches_once(app, sim):
    add_contacts(app, 2)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context(), pytest.raises(ServiceError, match="cannot be started"):
        lifecycle.launch(campaign_id, None)
    assert len(messages(app, campaign_id)) == 2


def test_schedule_at_starts_the_campaign_when_due(app, sim):
    add_contacts(app, 3)
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    campaign_id = make_campaign(app, schedule_kind="at", scheduled_at=at)
    with app.app_context():
        run = lifecycle.start(campaign_id, None)
        schedule_start(campaign_id, run.next_at)
    assert run.next_at == at and campaign_row(app, campaign_id).status == C.SCHEDULED
    assert [when for _, when in scheduled_starts(app)] == [at.replace(tzinfo=None)]
    assert messages(app, campaign_id) == {}  # recipients are chosen when it starts, not before

    fire_scheduled_starts(app)
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert sim.ledger()["accepted"] == 3


def test_schedule_refuses_a_time_in_the_past(app, sim):
    add_contacts(app, 1)
    campaign_id = make_campaign(app, schedule_kind="at", scheduled_at=datetime.now(UTC) - timedelta(minutes=1))
    with app.app_context(), pytest.raises(ServiceError, match="future"):
        lifecycle.start(campaign_id, None)
    assert campaign_row(app, campaign_id).status == C.DRAFT


def test_each_cron_run_is_a_child_campaign_with_its_own_recipients(app, sim):
    add_contacts(app, 2)
    parent_id = make_campaign(app, name="Weekly", schedule_kind="cron", cron="0 10 * * *", timezone="Asia/Kolkata")
    with app.app_context():
        run = lifecycle.start(parent_id, None)
    assert (run.next_at.hour, run.next_at.minute) == (4, 30)  # 10:00 in India is 04:30 UTC
    with app.app_context():
        launch_scheduled(parent_id)
    run_jobs(app)
    add_contacts(app, 1, start=3)
    with app.app_context():  # a day later
        db.session.execute(update(Campaign).values(created_at=datetime.now(UTC) - timedelta(days=1)))
        db.session.commit()
        launch_scheduled(parent_id)
    run_jobs(app)

    with app.app_context():
        runs = db.session.scalars(select(Campaign).where(Campaign.parent_id == parent_id).order_by(Campaign.id)).all()
        assert [(r.status, r.targeted, r.template_id is not None) for r in runs] == [
            (C.COMPLETED, 2, True), (C.COMPLETED, 3, True)]
        assert all(r.name.startswith("Weekly · ") for r in runs)
    assert campaign_row(app, parent_id).status == C.SCHEDULED
    assert len(scheduled_starts(app)) == 1  # the next start (one job per start time)
    assert sim.ledger()["accepted"] == 5 and sim.ledger()["duplicates"] == 0


def test_a_cron_start_that_fires_twice_runs_once(app, sim):
    add_contacts(app, 1)
    parent_id = make_campaign(app, schedule_kind="cron", cron="*/5 * * * *", timezone="UTC")
    with app.app_context():
        lifecycle.start(parent_id, None)
        first, second = launch_scheduled(parent_id), launch_scheduled(parent_id)
    assert first["run_id"] is not None and second["run_id"] is None


def test_cancelling_a_scheduled_campaign_unschedules_it(app, sim, staff_client):
    add_contacts(app, 1)
    campaign_id = make_campaign(app, schedule_kind="at", scheduled_at=datetime.now(UTC) + timedelta(days=1))
    with app.app_context():
        run = lifecycle.start(campaign_id, None)
        schedule_start(campaign_id, run.next_at)
    assert len(scheduled_starts(app)) == 1
    token = support_csrf(staff_client, campaign_id)
    staff_client.post(f"/campaigns/{campaign_id}/cancel", data={"csrf_token": token})
    assert campaign_row(app, campaign_id).status == C.CANCELLED
    assert scheduled_starts(app) == []
    with app.app_context():
        assert launch_scheduled(campaign_id) == {"run_id": None, "next_at": None}  # a stale start does nothing
        assert unschedule_start(campaign_id) == 0


def support_csrf(client, campaign_id: int) -> str:
    from tests.conftest import csrf_token_from

    return csrf_token_from(client.get(f"/campaigns/{campaign_id}").get_data(as_text=True))


def test_pause_and_resume_take_effect_within_one_batch(app, sim):
    add_contacts(app, 30)  # three batches of 10
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        campaign_batches.send_batch(campaign_id)  # one batch goes out …
        lifecycle.pause(campaign_id, user_id=None)
    run_jobs(app)  # … and the next batches find the campaign paused
    assert sim.ledger()["accepted"] == 10 and statuses(app, campaign_id) == {S.SENT: 10, S.PENDING: 20}
    assert campaign_row(app, campaign_id).status == C.PAUSED

    with app.app_context():
        lifecycle.resume(campaign_id)
        enqueue_send_batch(campaign_id)
    run_jobs(app)
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert sim.ledger()["accepted"] == 30 and sim.ledger()["duplicates"] == 0
    assert_counters_match(app, campaign_id)
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["campaign.launch", "campaign.pause", "campaign.resume"]


def test_a_batch_job_goes_on_with_its_lane_while_batches_are_due_then_queues_the_rest(app, sim, monkeypatch):
    app.config.update(SEND_PARALLEL_BATCHES=1)
    add_contacts(app, 30)  # three batches of 10
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    queue = app.extensions["queues"][DEFAULT]
    with app.app_context():
        queue.empty()
        monkeypatch.setattr(jobs.campaigns, "LANE_BUDGET_SECONDS", 0)  # spent after one batch
        assert send_batch(campaign_id)["batches"] == 1 and queue.count == 1  # the lane's next batch is queued
        queue.empty()
        monkeypatch.setattr(jobs.campaigns, "LANE_BUDGET_SECONDS", 30)
        assert send_batch(campaign_id)["batches"] == 2 and queue.count == 0  # the other two, in this job
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert sim.ledger()["accepted"] == 30 and sim.ledger()["duplicates"] == 0


def test_cancel_while_a_batch_is_in_flight_stops_after_that_batch(app, sim):
    app.config.update(WHATSAPP_SEND_CONCURRENCY=2)
    add_contacts(app, 30)
    sim.configure(latency_ms=60, fixed_outcomes={support.phone(3)[1:]: {"code": 131000, "mode": "sync"}})
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    batch = threading.Thread(target=lambda: _in_context(app, send_batch, campaign_id))
    batch.start()
    time.sleep(0.1)  # the batch has claimed its 10 and is sending them
    with app.app_context():
        lifecycle.cancel(campaign_id)
    batch.join(10)
    run_jobs(app)

    counts = statuses(app, campaign_id)
    assert counts == {S.SENT: 9, S.CANCELLED: 21}  # the retry in flight was cancelled too, not left pending
    assert sim.ledger()["accepted"] == 9 and campaign_row(app, campaign_id).status == C.CANCELLED
    assert_counters_match(app, campaign_id)


def _in_context(app, function, *args):
    with app.app_context():
        function(*args)


def test_only_allowed_changes_happen(app, sim):
    add_contacts(app, 1)
    campaign_id = make_campaign(app)
    with app.app_context():
        with pytest.raises(ServiceError, match="draft campaign cannot be set to paused"):
            lifecycle.pause(campaign_id)
        with pytest.raises(ServiceError):
            lifecycle.resume(campaign_id)
        lifecycle.cancel(campaign_id)
        with pytest.raises(ServiceError):
            lifecycle.launch(campaign_id, None)
    assert campaign_row(app, campaign_id).status == C.CANCELLED
    with app.app_context():
        assert db.session.scalar(select(Message.id).where(Message.campaign_id == campaign_id)) is None


def test_the_last_run_before_the_end_date_ends_a_recurring_campaign(app, sim, staff_client):
    add_contacts(app, 2)
    parent_id = make_campaign(app, name="Daily deals", schedule_kind="cron", cron="0 10 1 1 *", timezone="UTC",
                              ends_at=datetime.now(UTC) + timedelta(days=400))
    with app.app_context():
        run = lifecycle.start(parent_id, None)
        schedule_start(parent_id, run.next_at)
    assert campaign_row(app, parent_id).status == C.SCHEDULED
    with app.app_context():  # this start is the last one: the next (1 January) would be past the end date
        db.session.execute(update(Campaign).where(Campaign.id == parent_id)
                           .values(ends_at=datetime.now(UTC) + timedelta(minutes=5)))
        db.session.commit()
        result = launch_scheduled(parent_id)
    run_jobs(app)
    assert result["run_id"] is not None and result["next_at"] is None
    parent = campaign_row(app, parent_id)
    assert (parent.status, parent.started_at) == (C.COMPLETED, None) and parent.finished_at is not None
    assert campaign_row(app, result["run_id"]).status == C.COMPLETED and sim.ledger()["accepted"] == 2
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.summary).where(AuditEntry.action == "campaign.end")) == \
            "Recurring campaign “Daily deals” reached its end date; no more runs start"
    html = staff_client.get(f"/campaigns/{parent_id}").get_data(as_text=True)
    assert "This recurring campaign has ended: no run starts after" in html and "Daily deals · " in html


def test_a_start_that_comes_due_after_the_end_date_starts_nothing(app, sim):
    add_contacts(app, 1)
    parent_id = make_campaign(app, schedule_kind="cron", cron="0 10 * * *", timezone="UTC",
                              ends_at=datetime.now(UTC) + timedelta(days=3))
    with app.app_context():
        lifecycle.start(parent_id, None)
        db.session.execute(update(Campaign).where(Campaign.id == parent_id)
                           .values(ends_at=datetime.now(UTC) - timedelta(minutes=1)))
        db.session.commit()
        assert lifecycle.overdue_or_next_start(parent_id) is not None  # the sweeper lets it end now
        assert launch_scheduled(parent_id) == {"run_id": None, "next_at": None}
    assert campaign_row(app, parent_id).status == C.COMPLETED
    with app.app_context():
        assert db.session.scalar(select(Campaign.id).where(Campaign.parent_id == parent_id)) is None
    assert sim.ledger()["accepted"] == 0


def test_scheduling_refuses_an_end_date_before_the_first_run(app, sim):
    add_contacts(app, 1)
    campaign_id = make_campaign(app, schedule_kind="cron", cron="0 10 1 1 *", timezone="UTC",
                                ends_at=datetime.now(UTC) + timedelta(minutes=1))  # the first run is 1 January
    with app.app_context(), pytest.raises(ServiceError, match="end date comes before the next run"):
        lifecycle.start(campaign_id, None)
    assert campaign_row(app, campaign_id).status == C.DRAFT
