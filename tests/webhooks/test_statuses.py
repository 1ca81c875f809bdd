"""Status webhooks: forward-only in every order, duplicates change nothing, counters always equal a recount."""

from __future__ import annotations

import itertools
import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Campaign, CampaignStatus, Contact, HourlyMessageStats, WebhookEvent
from app.services.webhooks import processing, template_updates
from app.whatsapp.errors import classify
from jobs.webhooks import sweep_webhook_events
from tests.factories import webhooks as support
from tests.factories.webhooks import at, status, statuses_body

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
SECONDS = {"sent": 1, "delivered": 2, "read": 3}  # when WhatsApp says each happened
RANK = {"sent": 1, "delivered": 2, "read": 3}


@pytest.fixture
def campaign(hooks, make_contact):
    contact_id = make_contact("+919800000001", "Asha")
    return support.make_campaign(hooks.app), contact_id


def _sent_message(app, campaign, wamid=None):
    campaign_id, contact_id = campaign
    wamid = wamid or support.new_wamid()
    return support.make_message(app, campaign_id, contact_id, "sent", wamid), wamid


def _age_events(app, minutes):
    with app.app_context():
        for event in db.session.scalars(select(WebhookEvent)):
            event.received_at -= timedelta(minutes=minutes)
        db.session.commit()


def test_statuses_in_every_order_end_read_with_each_timestamp_their_own(hooks, make_contact):
    campaign_id = support.make_campaign(hooks.app)
    bodies, message_ids = [], []
    for number, order in enumerate(itertools.permutations(["sent", "delivered", "read"])):
        # Per order: each status in its own webhook; all in one body; everything twice, forwards then backwards.
        wamids = []
        for variant in range(3):
            wamid = support.new_wamid()
            contact_id = make_contact(f"+9198000001{number}{variant}")
            message_ids.append(support.make_message(hooks.app, campaign_id, contact_id, "sent", wamid))
            wamids.append(wamid)
        single = [statuses_body(status(wamids[0], name, SECONDS[name])) for name in order]
        twice = [statuses_body(status(wamids[2], name, SECONDS[name])) for name in order]
        bodies += [*single, statuses_body(*[status(wamids[1], name, SECONDS[name]) for name in order]),
                   *twice, *reversed(twice)]
    hooks.deliver(*bodies)
    for message_id in message_ids:
        message = support.message_row(hooks.app, message_id)
        assert message.status == "read"
        assert (message.sent_at, message.delivered_at, message.read_at) == (at(0), at(2), at(3))
    assert support.counters(hooks.app, campaign_id) == {**_zero(), "targeted": 18, "sent": 18, "delivered": 18,
                                                        "read": 18}


def _zero():
    return dict.fromkeys(("targeted", "skipped", "sent", "delivered", "read", "failed", "replied"), 0)


def test_random_shuffles_with_duplicates_keep_counters_exact(hooks, make_contact):
    rng = random.Random(7)
    campaign_id = support.make_campaign(hooks.app)
    received, items = {}, []
    for index in range(30):
        contact_id = make_contact(f"+9198000002{index:02d}")
        wamid = support.new_wamid()
        support.make_message(hooks.app, campaign_id, contact_id, "sent", wamid)
        names = rng.sample(["sent", "delivered", "read"], rng.randint(0, 3))
        received[wamid] = set(names)
        items += [status(wamid, name, SECONDS[name]) for name in names for _ in range(rng.randint(1, 3))]
    rng.shuffle(items)
    bodies = []
    while items:
        size = rng.randint(1, 6)
        bodies.append(statuses_body(*items[:size]))
        items = items[size:]
    hooks.deliver(*bodies)
    for wamid, names in received.items():
        message = support.message_row(hooks.app, wamid=wamid)
        assert message.status == max(names | {"sent"}, key=RANK.get)
        assert message.delivered_at == (at(2) if "delivered" in names else at(3) if "read" in names else None)
    expected = {**_zero(), "targeted": 30, "sent": 30,
                "delivered": sum(1 for names in received.values() if names & {"delivered", "read"}),
                "read": sum(1 for names in received.values() if "read" in names)}
    assert support.counters(hooks.app, campaign_id) == expected


def test_read_without_delivered_counts_as_delivered(hooks, campaign):
    message_id, wamid = _sent_message(hooks.app, campaign)
    hooks.deliver(statuses_body(status(wamid, "read", 3)))
    message = support.message_row(hooks.app, message_id)
    assert (message.status, message.delivered_at, message.read_at) == ("read", at(3), at(3))
    assert support.counters(hooks.app, campaign[0])["delivered"] == 1


def test_failed_is_recorded_with_code_and_explanation_once(hooks, campaign):
    message_id, wamid = _sent_message(hooks.app, campaign)
    failed = statuses_body(status(wamid, "failed", 5, error_code=131026))
    hooks.deliver(failed, failed, statuses_body(status(wamid, "delivered", 6)))
    message = support.message_row(hooks.app, message_id)
    assert (message.status, message.error_code, message.error_title, message.failed_at) == (
        "failed", 131026, "Meta's title", at(5))
    assert message.error_detail.startswith(classify(131026).explanation)
    assert "Meta's details." in message.error_detail
    # Accepted, then reported failed: it counts as failed, not also as sent.
    assert support.counters(hooks.app, campaign[0]) == {**_zero(), "targeted": 1, "failed": 1}
    assert "1 statuses unchanged" in hooks.events()[1].outcome


def test_failure_that_means_trouble_for_the_account_pauses_the_campaign(hooks, campaign):
    _, wamid = _sent_message(hooks.app, campaign)
    hooks.deliver(statuses_body(status(wamid, "failed", 5, error_code=131048)))
    with hooks.app.app_context():
        paused = db.session.get(Campaign, campaign[0])
        assert paused.status == CampaignStatus.PAUSED and "blocked or reported" in paused.pause_reason


def test_statuses_feed_the_hourly_stats_behind_the_dashboard(hooks, campaign):
    _, wamid = _sent_message(hooks.app, campaign)
    hooks.deliver(statuses_body(status(wamid, "read", 5)))
    with hooks.app.app_context():
        rows = [(row.delivered, row.read) for row in db.session.scalars(db.select(HourlyMessageStats))]
    assert rows == [(1, 1)]


def test_failure_because_the_customer_turned_marketing_off_opts_them_out(hooks, campaign):
    _, wamid = _sent_message(hooks.app, campaign)
    hooks.deliver(statuses_body(status(wamid, "failed", 5, error_code=131050)))
    with hooks.app.app_context():
        contact = db.session.get(Contact, campaign[1])
        assert (contact.opt_out_source, contact.opted_out_at) == ("user_preferences", at(5))


def test_status_for_a_message_stuck_in_sending_settles_it_by_callback_data(hooks, campaign):
    campaign_id, contact_id = campaign
    stuck = support.make_message(hooks.app, campaign_id, contact_id, "sending")  # crashed before saving the wamid
    wamid = support.new_wamid()
    hooks.deliver(statuses_body(status(wamid, "delivered", 2, callback=f"c{campaign_id}:{stuck}")),
                  statuses_body(status(wamid, "read", 3)))  # later statuses carry the wamid only
    message = support.message_row(hooks.app, stuck)
    assert (message.status, message.wamid, message.sent_at, message.delivered_at) == ("read", wamid, at(2), at(2))
    assert support.counters(hooks.app, campaign_id) == {**_zero(), "targeted": 1, "sent": 1, "delivered": 1,
                                                        "read": 1}


def test_pending_retry_of_an_ambiguous_send_is_settled_instead_of_resent(hooks, campaign):
    campaign_id, contact_id = campaign
    retry = support.make_message(hooks.app, campaign_id, contact_id, "pending")
    hooks.deliver(statuses_body(status("wamid.LATE", "sent", 1, callback=f"c{campaign_id}:{retry}")))
    assert support.message_row(hooks.app, retry).status == "sent"
    assert support.counters(hooks.app, campaign_id)["sent"] == 1


def test_callback_data_naming_another_campaign_is_not_trusted(hooks, campaign):
    campaign_id, contact_id = campaign
    stuck = support.make_message(hooks.app, campaign_id, contact_id, "sending")
    hooks.deliver(statuses_body(status("wamid.OTHER", "sent", 1, callback=f"c{campaign_id + 1}:{stuck}"),
                                status("wamid.JUNK", "sent", 1, callback="campaign-7:message-1043")))
    assert support.message_row(hooks.app, stuck).status == "sending"
    assert hooks.events()[0].outcome.startswith("waiting for unknown messages (wamid.JUNK, wamid.OTHER)")


def test_status_for_an_unknown_message_is_retried_until_the_message_appears(hooks, campaign):
    wamid = support.new_wamid()
    hooks.deliver(statuses_body(status(wamid, "delivered", 2)))
    [event] = hooks.events()
    assert event.processed_at is None and event.attempts == 1 and event.outcome.startswith("waiting")
    message_id, _ = _sent_message(hooks.app, campaign, wamid)  # the dispatcher writes its results late
    with hooks.app.app_context():
        assert sweep_webhook_events()["events"] == 0  # the sweeper leaves fresh events to their own job
    _age_events(hooks.app, 2)
    with hooks.app.app_context():
        assert sweep_webhook_events()["events"] == 1
    [event] = hooks.events()
    assert event.processed_at is not None and event.attempts == 2 and "1 statuses applied" in event.outcome
    assert support.message_row(hooks.app, message_id).status == "delivered"
    assert support.counters(hooks.app, campaign[0])["delivered"] == 1


def test_status_for_a_message_that_never_appears_is_kept_as_orphaned(hooks, campaign):
    known_id, known = _sent_message(hooks.app, campaign)
    hooks.deliver(statuses_body(status("wamid.NOBODY", "read", 3), status(known, "delivered", 2)))
    assert support.message_row(hooks.app, known_id).status == "delivered"  # the known one is applied at once
    _age_events(hooks.app, 20)
    with hooks.app.app_context():
        sweep_webhook_events()
    [event] = hooks.events()
    assert event.processed_at is not None and event.outcome.startswith("orphaned: no message found for wamid.NOBODY")
    assert support.counters(hooks.app, campaign[0])["delivered"] == 1


def test_meta_fixture_with_broken_parts_is_processed_without_losing_the_good_ones(hooks, wa_fixture_bytes):
    hooks.deliver(wa_fixture_bytes("mixed_batch.json"))
    [event] = hooks.events()
    assert event.outcome.startswith("waiting for unknown messages (wamid.BATCH1, wamid.BATCH3)")
    assert "unhandled parts" in event.outcome


@pytest.fixture
def wa_fixture_bytes():
    return lambda name: (support.wa.FIXTURES / name).read_bytes()


def test_concurrent_workers_on_overlapping_events_keep_counters_exact(hooks, make_contact):
    campaign_id = support.make_campaign(hooks.app)
    wamids = []
    for index in range(20):
        wamid = support.new_wamid()
        support.make_message(hooks.app, campaign_id, make_contact(f"+9198000003{index:02d}"), "sent", wamid)
        wamids.append(wamid)
    for name in ("read", "delivered", "read", "delivered"):
        hooks.post(statuses_body(*[status(wamid, name, SECONDS[name]) for wamid in wamids]))
    with hooks.app.app_context():
        event_ids = db.session.scalars(select(WebhookEvent.id)).all()
    errors = []

    def work(event_id):
        try:
            with hooks.app.app_context():
                processing.process_event(event_id)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(event_id,)) for event_id in event_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert support.counters(hooks.app, campaign_id) == {**_zero(), "targeted": 20, "sent": 20, "delivered": 20,
                                                        "read": 20}


def test_one_event_that_fails_costs_only_itself_not_its_batch(hooks, campaign, make_contact, monkeypatch):
    first_id, first = _sent_message(hooks.app, campaign)
    second_id, second = _sent_message(hooks.app, (campaign[0], make_contact("+919800000002")))
    real = template_updates.apply_template_events

    def fail_on_poison(events, counts):  # fault injection: this one event breaks whenever it is applied
        if any(event.name == "poison" for event in events):
            raise RuntimeError("poisoned event")
        real(events, counts)

    monkeypatch.setattr(template_updates, "apply_template_events", fail_on_poison)
    hooks.deliver(statuses_body(status(first, "delivered", 2)), support.template_body("APPROVED", "poison"),
                  statuses_body(status(second, "read", 3)))
    assert (support.message_row(hooks.app, first_id).status, support.message_row(hooks.app, second_id).status) == (
        "delivered", "read")
    good, poisoned, other = hooks.events()
    assert good.processed_at and other.processed_at and "1 statuses applied" in other.outcome
    assert (poisoned.processed_at, poisoned.attempts) == (None, 1)
    assert poisoned.outcome == "error: RuntimeError: poisoned event"
    assert support.counters(hooks.app, campaign[0])["delivered"] == 2
