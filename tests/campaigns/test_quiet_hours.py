"""Quiet hours in each recipient's own time: the timezone of their number, kept on the contact, copied onto the
message at launch; recipients inside their window wait for it to open while everyone else keeps getting sent to."""

from __future__ import annotations

import time as clock_time
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from flask_migrate import downgrade, upgrade
from phonenumbers import PhoneNumberType
from phonenumbers import timezone as phonenumbers_timezone
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.extensions import db
from app.models import Campaign, CampaignStatus, Contact, Message, MessageStatus
from app.queues import DEFAULT
from app.services.campaigns import batches as campaign_batches
from app.services.campaigns import sweep as campaign_sweep
from app.services.contacts import edits, phones
from app.services.sending import claims as dispatch_claim
from app.services.webhooks import inbound
from jobs.campaigns import enqueue_send_batch
from tests.conftest import csrf_token_from, run_jobs
from tests.factories import campaigns as dispatch_support
from tests.factories import webhooks as webhook_support
from tests.factories.campaigns import assert_counters_match, claim_of, launch, make_campaign, messages, statuses
from tests.factories.imports import ImportPages, make_csv

sim, sim_process_wide = dispatch_support.sim, dispatch_support.sim_process_wide  # fixtures
hooks, sim_api = webhook_support.hooks, webhook_support.sim_api
sim_server, sim_receiver = webhook_support.sim_server, webhook_support.sim_receiver

S, C = MessageStatus, CampaignStatus
INDIA, INDIA_2, DUBAI, NEW_YORK = "+919876543210", "+919812345678", "+971501234567", "+12125551234"
# 09:30 in India (open), 08:00 in Dubai (quiet until 09:00 = 05:00 UTC), 23:00 the night before in New York.
MORNING = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
OVERNIGHT = (time(21), time(9))


@pytest.fixture
def clock(clock):
    """Every test here starts on an Indian morning."""
    clock.now = MORNING
    return clock


def save_contact(app, phone: str, name: str = "Customer") -> int:
    with app.app_context():
        return edits.save_contact(None, phone, name, "", {}, "IN").id


def zone_of(app, phone: str) -> str | None:
    with app.app_context():
        return db.session.scalar(select(Contact.timezone).where(Contact.phone == phone))


def quiet_campaign(app, timezone: str = "Asia/Kolkata", start: str = "21:00", end: str = "09:00") -> int:
    return make_campaign(app, timezone=timezone, quiet_hours_start=start, quiet_hours_end=end)


# --- the timezone of a number ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("phone", "zone"), [
    (INDIA, "Asia/Kolkata"),  # phonenumbers says Asia/Calcutta, the legacy name people no longer look for
    (DUBAI, "Asia/Dubai"),
    (NEW_YORK, "America/New_York"),
    ("+14155551234", "America/Los_Angeles"),
    ("+13125551234", "America/Chicago"),
    ("+18085551234", "Pacific/Honolulu"),
    ("+79161234567", "Europe/Moscow"),  # a mobile in a country of many zones: its main one, not the first listed
    ("+61412345678", "Australia/Sydney"),
    ("+447911123456", "Europe/Guernsey"),  # several names for London's clock: the first is as good as any
])
def test_a_number_gets_the_timezone_of_its_country_or_area_code(phone, zone):
    assert phones.time_zone(phone) == zone
    ZoneInfo(zone)  # zoneinfo (tzdata) knows the name


def test_legacy_names_keep_the_same_clock_as_the_current_ones():
    moment = datetime(2026, 6, 1, tzinfo=UTC)
    assert moment.astimezone(ZoneInfo("Asia/Calcutta")).utcoffset() == timedelta(hours=5, minutes=30)


@pytest.mark.parametrize("phone", ["+80012345678", "+88212345678", "+999123456"])
def test_numbers_without_a_place_have_no_timezone(phone):
    assert phones.time_zone(phone) is None


def test_the_lookup_agrees_with_phonenumbers_for_every_country():
    checked = 0
    for region in phonenumbers.SUPPORTED_REGIONS:
        for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            listed = phonenumbers_timezone.time_zones_for_geographical_number(number)
            current = [phones.CURRENT_ZONE_NAMES.get(zone, zone) for zone in listed]
            expected = next((zone for zone in current if zone in phones.known_time_zones()), None)
            assert phones.time_zone(e164) == expected, e164
            checked += 1
    assert checked > 400


# --- every way a contact is made gets its timezone ----------------------------------------------------------------


def test_a_contact_added_or_renumbered_by_staff_gets_its_timezone(app, staff_client):
    token = csrf_token_from(staff_client.get("/contacts/new").get_data(as_text=True))
    staff_client.post("/contacts/new", data={"csrf_token": token, "phone": DUBAI, "name": "Omar"})
    assert zone_of(app, DUBAI) == "Asia/Dubai"
    with app.app_context():
        contact_id = db.session.scalar(select(Contact.id).where(Contact.phone == DUBAI))
    assert "Asia/Dubai" in staff_client.get(f"/contacts/{contact_id}").get_data(as_text=True)
    staff_client.post(f"/contacts/{contact_id}/edit", data={"csrf_token": token, "phone": NEW_YORK, "name": "Omar"})
    assert zone_of(app, NEW_YORK) == "America/New_York"


def test_imported_contacts_get_their_timezone_new_or_updated(app, staff_client, tmp_path):
    app.config["INSTANCE_DIR"] = str(tmp_path / "instance")
    with app.app_context():  # a contact from before timezones were kept
        db.session.add(Contact(phone=INDIA, wa_id=INDIA[1:], name="Old", attributes={}))
        db.session.commit()
    rows = [["Name", "Phone"], ["Ravi", "9876543210"], ["Omar", DUBAI], ["Jo", "+1 212 555 1234"]]
    ImportPages(staff_client, app).run(make_csv(tmp_path / "people.csv", rows))
    assert [zone_of(app, phone) for phone in (INDIA, DUBAI, NEW_YORK)] == [
        "Asia/Kolkata", "Asia/Dubai", "America/New_York"]


def test_a_contact_created_by_an_inbound_message_gets_its_timezone(hooks):
    hooks.deliver(webhook_support.inbound_body(webhook_support.text("971501234567", "Salaam")))
    assert zone_of(hooks.app, DUBAI) == "Asia/Dubai"


def test_inbound_contact_for_a_number_with_no_place_has_no_timezone(app):
    with app.app_context():
        contact = inbound.contact_for("80012345678", None, datetime.now(UTC))
        db.session.commit()
        assert contact.phone == "+80012345678" and contact.timezone is None


def test_the_migration_gives_existing_contacts_their_timezone(app):
    with app.app_context():
        db.session.remove()
        downgrade(revision="a9e4c2d17b30")  # the column is there, the backfill not yet run
        try:
            columns = {"wa_id": "x", "attributes": {}, "created_at": MORNING, "updated_at": MORNING}
            with db.engine.begin() as connection:
                for phone in (INDIA, DUBAI, "+80012345678"):
                    connection.execute(Contact.__table__.insert().values(phone=phone, **columns))
            upgrade(revision="e2b8f4c6a1d3")
            zones = dict(db.session.execute(select(Contact.phone, Contact.timezone)).all())
        finally:
            db.session.remove()
            upgrade()
    assert zones == {INDIA: "Asia/Kolkata", DUBAI: "Asia/Dubai", "+80012345678": None}


# --- the window -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("window", "local", "ends"), [
    (OVERNIGHT, "20:59", None),
    (OVERNIGHT, "21:00", "next day 09:00"),
    (OVERNIGHT, "23:59", "next day 09:00"),
    (OVERNIGHT, "00:00", "09:00"),
    (OVERNIGHT, "08:59", "09:00"),
    (OVERNIGHT, "09:00", None),
    ((time(13), time(14)), "12:59", None),
    ((time(13), time(14)), "13:00", "14:00"),
    ((time(13), time(14)), "13:59", "14:00"),
    ((time(13), time(14)), "14:00", None),
])
def test_quiet_window_edges_overnight_and_within_a_day(window, local, ends):
    zone = ZoneInfo("Asia/Dubai")
    now = datetime.combine(datetime(2026, 11, 2).date(), time.fromisoformat(local), tzinfo=zone)
    end = campaign_batches.window_end(window, "Asia/Dubai", now.astimezone(UTC))
    if ends is None:
        assert end is None
    else:
        day = now.date() + timedelta(days=1 if ends.startswith("next day") else 0)
        assert end == datetime.combine(day, time(9) if ends.endswith("09:00") else time(14), tzinfo=zone)


@pytest.mark.parametrize(("start", "end"), [(None, None), ("21:00", None), ("10:00", "10:00")])
def test_no_window_means_no_quiet_hours(start, end):
    campaign = Campaign(name="q", timezone="Asia/Kolkata", quiet_hours_start=start, quiet_hours_end=end)
    assert campaign_batches.quiet_window(campaign) is None
    assert campaign_batches.quiet_now(campaign, MORNING) is None and campaign_batches.sendable(None) == []


def test_the_window_follows_daylight_saving_time_in_a_us_number_s_zone():
    zone = phones.time_zone(NEW_YORK)
    # New York falls back on 1 Nov 2026: 23:00 EDT the night before is 03:00 UTC, 09:00 EST the next day 14:00 UTC.
    assert campaign_batches.window_end(OVERNIGHT, zone, datetime(2026, 11, 1, 3, 0, tzinfo=UTC)) == datetime(
        2026, 11, 1, 14, 0, tzinfo=UTC)
    # And springs forward on 8 Mar 2026: 23:00 EST is 04:00 UTC, 09:00 EDT the next day 13:00 UTC.
    assert campaign_batches.window_end(OVERNIGHT, zone, datetime(2026, 3, 8, 4, 0, tzinfo=UTC)) == datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC)
    # In summer 21:00 comes an hour earlier in UTC than in winter.
    assert campaign_batches.window_end(OVERNIGHT, zone, datetime(2026, 7, 1, 1, 0, tzinfo=UTC)) is not None
    assert campaign_batches.window_end(OVERNIGHT, zone, datetime(2026, 1, 15, 1, 30, tzinfo=UTC)) is None


def test_quiet_now_names_the_zones_inside_the_window_and_the_campaign_zone_for_the_rest():
    campaign = Campaign(name="q", timezone="Asia/Dubai", quiet_hours_start="21:00", quiet_hours_end="09:00")
    quiet = campaign_batches.quiet_now(campaign, MORNING)
    assert {"Asia/Dubai", "America/New_York"} <= quiet.zones and "Asia/Kolkata" not in quiet.zones
    assert quiet.default_quiet  # numbers with no timezone follow the campaign's: Dubai, 08:00
    campaign.timezone = "Asia/Kolkata"
    assert not campaign_batches.quiet_now(campaign, MORNING).default_quiet


def test_a_stored_timezone_phonenumbers_no_longer_returns_is_still_kept_quiet():
    assert "Asia/Calcutta" not in phones.known_time_zones()  # stored before legacy names were renamed
    campaign = Campaign(name="q", timezone="Asia/Dubai", quiet_hours_start="21:00", quiet_hours_end="09:00")
    at = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)  # 01:30 in Kolkata
    assert "Asia/Calcutta" in campaign_batches.quiet_now(campaign, at).zones


def test_every_timezone_a_number_can_get_is_a_current_name():
    tables = [resources.files("tzdata").joinpath("zoneinfo", name).read_text() for name in ("zone1970.tab", "zone.tab")]
    current = {line.split("\t")[2] for table in tables for line in table.splitlines() if not line.startswith("#")}
    assert phones.known_time_zones() <= current


# --- sending ----------------------------------------------------------------------------------------------------


def test_launch_copies_each_recipient_s_timezone_onto_their_message(app):
    for phone in (INDIA, DUBAI, NEW_YORK):
        save_contact(app, phone)
    with app.app_context():
        db.session.add(Contact(phone="+80012345678", wa_id="80012345678", attributes={}))
        db.session.commit()
    campaign_id = quiet_campaign(app)
    launch(app, campaign_id, run=False)
    zones = {phone: message.recipient_zone for phone, message in messages(app, campaign_id).items()}
    assert zones == {INDIA: "Asia/Kolkata", DUBAI: "Asia/Dubai", NEW_YORK: "America/New_York",
                     "+80012345678": None}


def scheduled_lanes(app, campaign_id: int) -> dict[str, float]:
    """The lanes' batches waiting in RQ's scheduled registry: job id → seconds from now until it runs."""
    with app.app_context():
        registry = ScheduledJobRegistry(DEFAULT, connection=app.extensions["redis"])
        return {job_id: registry.get_scheduled_time(job_id).timestamp() - clock_time.time()
                for job_id in registry.get_job_ids() if job_id.startswith(f"send-batch-{campaign_id}-")}


def live_text(client, campaign_id: int) -> str:
    """The polled part of the campaign page, as one line of text."""
    html = client.get(f"/campaigns/{campaign_id}", headers={"HX-Request": "true"}).get_data(as_text=True)
    return " ".join(html.split())


def test_recipients_in_their_quiet_hours_wait_while_the_others_are_sent_to(app, sim, clock, staff_client):
    save_contact(app, INDIA), save_contact(app, INDIA_2), save_contact(app, DUBAI)
    with app.app_context():  # no timezone of its own: follows the campaign's, Dubai
        db.session.add(Contact(phone="+80012345678", wa_id="80012345678", attributes={}))
        db.session.commit()
    campaign_id = quiet_campaign(app, timezone="Asia/Dubai")
    launch(app, campaign_id)

    sent = {phone for phone, message in messages(app, campaign_id).items() if message.status == S.SENT}
    assert sent == {INDIA, INDIA_2} and statuses(app, campaign_id) == {S.SENT: 2, S.PENDING: 2}
    assert sim.ledger()["accepted"] == 2
    lanes = scheduled_lanes(app, campaign_id)
    assert lanes and all(3540 < seconds <= 3600 for seconds in lanes.values())  # at 09:00 in Dubai

    with app.app_context():
        assert campaign_sweep.sweep(MORNING).completed == []  # held recipients keep the campaign running
    text = live_text(staff_client, campaign_id)
    assert "2 recipients held for quiet hours" in text and "the next window opens at 09:00 Asia/Dubai" in text
    assert "2 of 4 done" in text and "left" not in text  # no time left at the rate while some wait for morning

    clock.now = MORNING + timedelta(hours=1)
    with app.app_context():
        enqueue_send_batch(campaign_id)  # as the scheduled batches (or the sweeper) would
    run_jobs(app)
    assert statuses(app, campaign_id) == {S.SENT: 4}
    assert dispatch_support.campaign_row(app, campaign_id).status == C.COMPLETED
    assert sim.ledger()["duplicates"] == 0
    assert_counters_match(app, campaign_id)
    assert "held for quiet hours" not in live_text(staff_client, campaign_id)


def test_a_batch_with_only_held_recipients_waits_for_the_first_window_to_open(app, sim, clock):
    save_contact(app, DUBAI), save_contact(app, NEW_YORK)
    campaign_id = quiet_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        report = campaign_batches.send_batch(campaign_id)
        assert (report.claimed, report.next_step, report.delay) == (0, campaign_batches.LATER, 3600)
        hold = campaign_batches.quiet_hold(db.session.get(Campaign, campaign_id), MORNING)
        assert (hold.held, hold.zone, hold.opens_local.strftime("%H:%M")) == (2, "Asia/Dubai", "09:00")

    clock.now = MORNING + timedelta(hours=1)  # Dubai opens; New York sleeps until 09:00 EST = 14:00 UTC
    with app.app_context():
        report = campaign_batches.send_batch(campaign_id)
    assert (report.claimed, report.sent, report.next_step, report.delay) == (1, 1, campaign_batches.LATER, 9 * 3600)
    assert messages(app, campaign_id)[NEW_YORK].status == S.PENDING

    clock.now = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    with app.app_context():
        report = campaign_batches.send_batch(campaign_id)
    assert (report.claimed, report.next_step) == (1, campaign_batches.IDLE)
    assert dispatch_support.campaign_row(app, campaign_id).status == C.COMPLETED


def test_batches_queued_while_everyone_is_held_wait_without_looking_again_for_a_while(app, sim, clock):
    save_contact(app, INDIA), save_contact(app, DUBAI)
    campaign_id = quiet_campaign(app)
    launch(app, campaign_id, run=False)
    india_message = messages(app, campaign_id)[INDIA].id
    with app.app_context():
        # A worker claims India's message, then dies mid-send.
        assert claim_of(campaign_id, 1, MORNING, Message.id == india_message) == [india_message]
        report = campaign_batches.send_batch(campaign_id)
        assert (report.claimed, report.next_step, report.delay) == (0, campaign_batches.LATER, 3600)
        dispatch_claim.release([india_message])  # the sweeper gives it back to pending

        report = campaign_batches.send_batch(campaign_id)  # e.g. queued by the sweeper a minute later
        assert (report.claimed, report.next_step, report.delay) == (0, campaign_batches.LATER, 3600)
        key = campaign_batches.HELD_UNTIL_KEY.format(campaign_id)
        assert 0 < app.extensions["redis"].ttl(key) <= campaign_batches.HELD_RECHECK_SECONDS

        app.extensions["redis"].delete(key)  # the recheck interval has passed
        report = campaign_batches.send_batch(campaign_id)
    assert (report.claimed, report.sent, report.next_step, report.delay) == (1, 1, campaign_batches.LATER, 3600)
    assert messages(app, campaign_id)[INDIA].status == S.SENT


def test_a_retry_due_before_any_window_opens_sets_the_next_batch(app, sim, clock):
    save_contact(app, INDIA), save_contact(app, DUBAI)
    campaign_id = quiet_campaign(app)
    launch(app, campaign_id, run=False)
    with app.app_context():
        retry_at = MORNING + timedelta(minutes=10)
        db.session.execute(Message.__table__.update().where(Message.campaign_id == campaign_id,
                                                            Message.recipient_zone == "Asia/Kolkata")
                           .values(next_attempt_at=retry_at))
        db.session.commit()
        report = campaign_batches.send_batch(campaign_id)
    assert (report.claimed, report.next_step, report.delay) == (0, campaign_batches.LATER, 600)


def test_a_campaign_without_quiet_hours_sends_to_everyone_at_any_hour(app, sim, clock):
    for phone in (INDIA, DUBAI, NEW_YORK):
        save_contact(app, phone)
    campaign_id = make_campaign(app, timezone="Asia/Kolkata")
    launch(app, campaign_id)
    assert statuses(app, campaign_id) == {S.SENT: 3}
    assert dispatch_support.campaign_row(app, campaign_id).status == C.COMPLETED
