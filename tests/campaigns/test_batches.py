"""Sending campaigns against the Cloud API simulator: everyone once, at the shared rate, each error class as the
error table says, and the counters always equal a recount of the rows."""

from datetime import UTC, datetime, timedelta

import pytest
from flask import render_template
from flask_login import login_user
from sqlalchemy import update

from app.extensions import db
from app.models import Campaign, CampaignStatus, Contact, Message, MessageStatus, User
from app.services.campaigns import batches as campaign_batches
from app.services.campaigns import engine, lifecycle, prepare
from app.services.campaigns import page as campaign_page
from app.services.sending import results
from app.whatsapp.client import SendResult
from app.whatsapp.errors import ERROR_TABLE, classify
from jobs.campaigns import enqueue_send_batch, send_batch
from tests.conftest import run_jobs
from tests.factories import campaigns as support
from tests.factories.campaigns import (
    add_contacts,
    assert_counters_match,
    campaign_row,
    claim_of,
    launch,
    make_campaign,
    make_template,
    messages,
    phone,
    report_failures,
    statuses,
)

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures

S, C = MessageStatus, CampaignStatus


def digits(number: int) -> str:
    return phone(number)[1:]


def make_due(app, campaign_id: int) -> None:
    """Let time pass: every waiting retry becomes due now."""
    with app.app_context():
        db.session.execute(update(Message).where(Message.campaign_id == campaign_id, Message.status == S.PENDING)
                           .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        db.session.commit()


def test_campaign_sends_everyone_once_renders_each_message_and_completes(app, sim):
    add_contacts(app, 25)
    add_contacts(app, 1, start=99, opted_out_at=datetime(2025, 1, 2, tzinfo=UTC))
    template_id = make_template(app, "order_update")
    variables = {"body.1": {"source": "name", "value": "", "fallback": "there"},
                 "body.2": {"source": "literal", "value": "#1042", "fallback": ""}}
    campaign_id = make_campaign(app, template_id, variables=variables)

    launch(app, campaign_id)

    campaign = campaign_row(app, campaign_id)
    assert campaign.status == C.COMPLETED and campaign.finished_at is not None
    counts = assert_counters_match(app, campaign_id)
    assert (counts["targeted"], counts["sent"], counts["skipped"], counts["failed"]) == (26, 25, 1, 0)
    first = messages(app, campaign_id)[phone(1)]
    assert first.wamid and first.attempts == 1 and first.sent_at is not None
    assert first.body == "Hi Customer 1, your order #1042 has been shipped and will reach you soon."
    assert first.parameters["components"][0]["parameters"][0]["text"] == "Customer 1"
    ledger = sim.ledger(detail=True)
    assert (ledger["accepted"], ledger["recipients"], ledger["duplicates"]) == (25, 25, 0)
    assert {send["tracker"] for send in ledger["recent"]} == {f"r{campaign.run.id}"}
    assert digits(99) not in ledger["per_recipient"]


def test_callback_data_is_r_run_colon_message_id(app, sim):
    add_contacts(app, 1)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        ids = claim_of(campaign_id, 10, datetime.now(UTC))
        campaign = db.session.get(Campaign, campaign_id)
        items = prepare.prepare(campaign, ids, datetime.now(UTC))
        assert [item.callback for item in items] == [f"r{campaign.run.id}:{ids[0]}"]


def test_contact_opted_out_after_launch_is_skipped_at_send_time(app, sim):
    add_contacts(app, 3)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        contact = db.session.scalar(db.select(Contact).where(Contact.phone == phone(2)))
        contact.opted_out_at = datetime(2026, 3, 4, 10, tzinfo=UTC)
        db.session.commit()
    run_jobs(app)

    skipped = messages(app, campaign_id)[phone(2)]
    assert skipped.status == S.SKIPPED and skipped.skip_reason == "Opted out of messages on 2026-03-04"
    assert digits(2) not in sim.ledger(detail=True)["per_recipient"]
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert assert_counters_match(app, campaign_id)["skipped"] == 1


def test_a_value_emptied_after_launch_skips_that_recipient_with_the_reason_and_sends_the_rest(app, sim):
    add_contacts(app, 3)
    template_id = make_template(app, "order_update")
    variables = {"body.1": {"source": "attribute", "value": "city", "fallback": ""},
                 "body.2": {"source": "literal", "value": "#1042", "fallback": ""}}
    campaign_id = make_campaign(app, template_id, variables=variables)
    with app.app_context():
        for contact in db.session.scalars(db.select(Contact)):
            contact.attributes = {"city": "Pune"}
        db.session.commit()
    launch(app, campaign_id, run=False)
    with app.app_context():
        contact = db.session.scalar(db.select(Contact).where(Contact.phone == phone(2)))
        contact.attributes = {}  # edited between launch and send: WhatsApp would refuse an empty parameter
        db.session.commit()
    run_jobs(app)

    rows = messages(app, campaign_id)
    skipped = rows[phone(2)]
    assert (skipped.status, skipped.skip_reason) == (S.SKIPPED, "No value for {{1}} in the message")
    assert rows[phone(1)].status == rows[phone(3)].status == S.SENT
    assert rows[phone(1)].body.startswith("Hi Pune,")
    assert digits(2) not in sim.ledger(detail=True)["per_recipient"]
    assert assert_counters_match(app, campaign_id)["skipped"] == 1


def test_launched_anyway_a_campaign_skips_exactly_the_recipients_with_an_empty_value(app, sim):
    add_contacts(app, 4)
    template_id = make_template(app, "order_update")
    variables = {"body.1": {"source": "attribute", "value": "city", "fallback": ""},
                 "body.2": {"source": "literal", "value": "#1042", "fallback": ""}}
    campaign_id = make_campaign(app, template_id, variables=variables, accept_fallbacks=True)
    with app.app_context():
        for contact in db.session.scalars(db.select(Contact).where(Contact.phone.in_([phone(1), phone(3)]))):
            contact.attributes = {"city": "Pune"}
        db.session.commit()
    launch(app, campaign_id)

    rows = messages(app, campaign_id)
    assert {number: rows[phone(number)].status for number in range(1, 5)} == {
        1: S.SENT, 2: S.SKIPPED, 3: S.SENT, 4: S.SKIPPED}
    assert rows[phone(2)].skip_reason == "No value for {{1}} in the message"
    assert sim.ledger()["accepted"] == 2  # WhatsApp never saw an empty parameter
    assert assert_counters_match(app, campaign_id)["skipped"] == 2


def test_permanent_error_fails_the_message_with_code_title_and_explanation(app, sim):
    add_contacts(app, 3)
    sim.configure(fixed_outcomes={digits(2): 131026})  # Meta accepts the send, then reports it by webhook
    campaign_id = make_campaign(app)
    launch(app, campaign_id)
    assert messages(app, campaign_id)[phone(2)].status == S.SENT
    assert report_failures(app, sim) == 1

    failed = messages(app, campaign_id)[phone(2)]
    info = ERROR_TABLE[131026]
    # A webhook failure keeps Meta's own title and adds its words to our explanation (statuses._record_failure).
    title, explanation = "Message Undeliverable", f"{info.explanation} WhatsApp said: Unable to deliver message."
    assert (failed.status, failed.error_code, failed.error_title) == (S.FAILED, 131026, title)
    assert failed.error_detail == explanation and failed.failed_at is not None and failed.attempts == 1
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert assert_counters_match(app, campaign_id)["failed"] == 1
    with app.app_context():
        assert campaign_page.failures(campaign_id) == [
            campaign_page.Failure(131026, title, explanation, 1)]


def test_marketing_turned_off_by_the_customer_opts_them_out_for_good(app, sim):
    add_contacts(app, 2)
    sim.configure(fixed_outcomes={digits(2): 131050})  # reported by webhook: processing it opts the customer out
    campaign_id = make_campaign(app)
    launch(app, campaign_id)
    assert report_failures(app, sim) == 1

    assert messages(app, campaign_id)[phone(2)].status == S.FAILED
    with app.app_context():
        contacts = {c.phone: c for c in db.session.scalars(db.select(Contact))}
        assert contacts[phone(2)].opt_out_source == "user_preferences" and contacts[phone(2)].opted_out_at
        assert contacts[phone(1)].opted_out_at is None


def test_retryable_error_backs_off_honouring_retry_after_then_sends(app, sim):
    add_contacts(app, 2)
    sim.configure(fixed_outcomes={digits(1): {"code": 130429, "mode": "sync"}, digits(2): {"code": 131000}})
    campaign_id = make_campaign(app)
    before = datetime.now(UTC)
    launch(app, campaign_id)

    throttled, broken = messages(app, campaign_id)[phone(1)], messages(app, campaign_id)[phone(2)]
    assert (throttled.status, throttled.attempts, throttled.error_code) == (S.PENDING, 1, 130429)
    assert throttled.next_attempt_at >= before + timedelta(seconds=1)  # Retry-After: 1
    assert broken.next_attempt_at >= before + timedelta(seconds=30)  # 131000's own minimum wait
    assert campaign_row(app, campaign_id).status == C.RUNNING
    assert_counters_match(app, campaign_id)

    sim.configure(fixed_outcomes={})
    make_due(app, campaign_id)
    with app.app_context():  # the sweeper does this once they are due; the lanes' later batches make way
        assert len(enqueue_send_batch(campaign_id)) == 4
    run_jobs(app)
    assert statuses(app, campaign_id) == {S.SENT: 2}
    assert messages(app, campaign_id)[phone(1)].attempts == 2
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert sim.ledger()["duplicates"] == 0
    assert_counters_match(app, campaign_id)


def test_retry_delays_grow_exponentially_with_jitter_and_never_undercut_what_whatsapp_asked(app):
    app.config.update(SEND_RETRY_BASE_SECONDS=10, SEND_RETRY_MAX_SECONDS=300)
    server_error = classify(None, 503)  # waits at least 30 s
    with app.app_context():
        for attempt, expected in [(1, 30), (2, 30), (3, 40), (4, 80), (5, 160), (6, 300), (9, 300)]:
            assert expected <= results.retry_delay(attempt, server_error) <= expected * 1.25
        told = SendResult(ok=False, http_status=429, error_code=4, retry_after=120)
        assert 120 <= results.retry_delay(1, told.error_info(), told) <= 150  # Retry-After: 120
        assert results.retry_delay(1, classify(131049)) >= 24 * 3600  # deferred a day


def test_after_max_attempts_the_message_fails(app, sim):
    app.config["SEND_MAX_ATTEMPTS"] = 2
    add_contacts(app, 1)
    sim.configure(fixed_outcomes={digits(1): {"code": 131000, "mode": "sync"}})
    campaign_id = make_campaign(app)
    launch(app, campaign_id)
    assert messages(app, campaign_id)[phone(1)].status == S.PENDING
    make_due(app, campaign_id)
    with app.app_context():
        send_batch(campaign_id)

    message = messages(app, campaign_id)[phone(1)]
    assert (message.status, message.attempts, message.error_code) == (S.FAILED, 2, 131000)
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert_counters_match(app, campaign_id)


def test_recipient_marketing_limit_reported_by_webhook_fails_the_message_with_its_reason(app, sim):
    # Meta reports 131049 only in a failed status webhook, after accepting the send, so it never reaches the
    # 24-hour deferral of the send path (results.retry_delay, tested above). A failed status is final
    # (message_state: nothing leaves FAILED, SENT cannot go back to PENDING): the webhook records the failure.
    add_contacts(app, 2)
    sim.configure(fixed_outcomes={digits(1): 131049})
    campaign_id = make_campaign(app)
    launch(app, campaign_id)
    assert report_failures(app, sim) == 1
    failed = messages(app, campaign_id)[phone(1)]
    assert (failed.status, failed.error_code, failed.attempts) == (S.FAILED, 131049, 1)
    assert failed.error_title == "Meta chose not to deliver." and failed.next_attempt_at is None
    assert ERROR_TABLE[131049].explanation in failed.error_detail
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert assert_counters_match(app, campaign_id)["failed"] == 1


def test_pause_class_error_pauses_the_campaign_with_the_reason_on_its_page(app, sim, staff_client):
    app.config["WHATSAPP_SEND_CONCURRENCY"] = 1  # in order: the error halts the sends after it
    add_contacts(app, 5)
    sim.configure(fixed_outcomes={digits(2): {"code": 132015, "mode": "sync"}})
    campaign_id = make_campaign(app)
    launch(app, campaign_id)

    campaign = campaign_row(app, campaign_id)
    assert campaign.status == C.PAUSED and "Template is paused" in campaign.pause_reason
    rows = messages(app, campaign_id)
    paused_on = rows[phone(2)]
    assert (paused_on.status, paused_on.attempts) == (S.PENDING, 0)
    # Sent in message order (PostgreSQL may number the launch's rows in any contact order): the ones before the
    # error went out, the rest wait.
    assert {row.id: row.status for row in rows.values()} == {
        row.id: S.SENT if row.id < paused_on.id else S.PENDING for row in rows.values()}
    page = staff_client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Template is paused" in page and "Resume" in page
    assert_counters_match(app, campaign_id)

    sim.configure(fixed_outcomes={})
    with app.app_context():
        lifecycle.resume(campaign_id)
    launch_jobs(app, campaign_id)
    assert campaign_row(app, campaign_id).status == C.COMPLETED
    assert sim.ledger()["duplicates"] == 0 and sim.ledger()["accepted"] == 5


def launch_jobs(app, campaign_id):
    from jobs.campaigns import enqueue_send_batch

    with app.app_context():
        enqueue_send_batch(campaign_id)
    run_jobs(app)


def test_stop_class_error_pauses_every_running_campaign_of_the_sender_and_warns_admins(app, sim, make_user):
    add_contacts(app, 4)
    other = make_campaign(app, name="Other campaign")
    launch(app, other, run=False)  # running, with its batches not yet sent
    sim.configure(fixed_outcomes={digits(1): {"code": 190, "mode": "sync"}})
    campaign_id = make_campaign(app)
    with app.app_context():
        lifecycle.launch(campaign_id, None)
        send_batch(campaign_id)

    for paused in (campaign_id, other):
        campaign = campaign_row(app, paused)
        assert campaign.status == C.PAUSED
        assert campaign.pause_reason.startswith(engine.STOP_REASON_PREFIX)
        assert "Access token expired or invalid" in campaign.pause_reason
        assert_counters_match(app, paused)
    admin = make_user("admin")
    with app.test_request_context("/"):
        login_user(db.session.get(User, admin.id))
        banner = render_template("campaign_runs/_stop_banner_partial.html")
    assert "Sending is stopped" in banner and "2 campaigns were paused" in banner


def test_no_answer_leaves_the_message_sending_and_never_resends_it_blindly(app, sim):
    app.config["SEND_READ_TIMEOUT_SECONDS"] = 0.3
    add_contacts(app, 2)
    sim.configure(fixed_outcomes={digits(1): {"latency_ms": 1500}})
    campaign_id = make_campaign(app)
    launch(app, campaign_id)

    unknown = messages(app, campaign_id)[phone(1)]
    assert (unknown.status, unknown.attempts, unknown.wamid) == (S.SENDING, 1, None)
    assert unknown.error_title == "No answer from WhatsApp"
    assert campaign_row(app, campaign_id).status == C.RUNNING  # not complete while one is unsettled
    with app.app_context():
        send_batch(campaign_id)
    assert sim.ledger(detail=True)["per_recipient"][digits(1)] == 1
    assert_counters_match(app, campaign_id)


def test_template_deleted_or_paused_pauses_before_sending(app, sim):
    add_contacts(app, 2)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        campaign.template.status = "PAUSED"
        db.session.commit()
    run_jobs(app)
    campaign = campaign_row(app, campaign_id)
    assert campaign.status == C.PAUSED and "paused" in campaign.pause_reason
    assert sim.ledger()["accepted"] == 0 and statuses(app, campaign_id) == {S.PENDING: 2}


@pytest.mark.parametrize("start, end, now_local, waits", [
    ("21:00", "09:00", "22:30", True), ("21:00", "09:00", "08:59", True), ("21:00", "09:00", "12:00", False),
    ("13:00", "14:00", "13:30", True), (None, None, "23:00", False),
])
def test_quiet_hours_of_recipients_without_a_timezone_follow_the_campaign_s(app, start, end, now_local, waits):
    # Recipients are held in their own timezone (campaigns/test_quiet_hours.py); numbers without one use the campaign's.
    campaign = Campaign(name="q", phone_number_id="1", timezone="Asia/Kolkata", quiet_hours_start=start,
                        quiet_hours_end=end)
    hours, minutes = map(int, now_local.split(":"))
    now = datetime(2026, 11, 2, hours, minutes, tzinfo=UTC) - timedelta(hours=5, minutes=30)
    quiet = campaign_batches.quiet_now(campaign, now)
    assert (quiet is not None and quiet.default_quiet) == waits
    if waits:
        until = campaign_batches.window_end(campaign_batches.quiet_window(campaign), campaign.timezone, now)
        assert until > now and until.astimezone(UTC) - now < timedelta(hours=24)


def test_an_unexpected_error_pauses_the_campaign_releases_its_batch_and_fails_the_job(app, sim, monkeypatch):
    add_contacts(app, 3)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)

    def broken(campaign, contact):
        raise RuntimeError("a bug")

    monkeypatch.setattr(prepare.rendering, "render", broken)
    with app.app_context(), pytest.raises(RuntimeError):
        send_batch(campaign_id)
    campaign = campaign_row(app, campaign_id)
    assert campaign.status == C.PAUSED and "unexpected error (RuntimeError)" in campaign.pause_reason
    assert statuses(app, campaign_id) == {S.PENDING: 3}  # released: nothing went out, nothing waits for the sweeper
    assert sim.ledger()["accepted"] == 0
    assert_counters_match(app, campaign_id)
