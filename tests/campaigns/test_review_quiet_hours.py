"""Quiet hours in the review before launch: who is inside them at the start (now, or the scheduled start), when
sending starts and ends, and the one-click change of a draft's quiet hours, which re-renders the review."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Campaign
from app.services.campaigns import batches, lifecycle
from app.services.contacts import edits
from tests.conftest import csrf_token_from
from tests.factories import campaigns as support
from tests.factories.campaigns import add_contacts, campaign_row, make_campaign

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures
INDIA, DUBAI, NEW_YORK = "+919876543210", "+971501234567", "+12125551234"
AFTER_MIDNIGHT_IST = datetime(2026, 12, 7, 19, 3, tzinfo=UTC)  # 00:33 on 8 Dec in India
LATE_EVENING_IST = datetime(2026, 12, 7, 17, 40, tzinfo=UTC)  # 23:10 on 7 Dec in India
# 09:30 in India (open), 08:00 in Dubai (quiet until 10:30 IST), 23:00 the night before in New York (until 19:30 IST).
INDIAN_MORNING = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)
NOON_IST = datetime(2026, 12, 8, 6, 30, tzinfo=UTC)
HTMX = {"HX-Request": "true"}


def _quiet_campaign(app, **fields) -> int:
    return make_campaign(app, timezone="Asia/Kolkata", quiet_hours_start="21:00", quiet_hours_end="09:00", **fields)


def _page(client, campaign_id: int) -> str:
    return client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)


def _quiet_text(html: str) -> str:
    """The review's quiet-hours note, as one line of text."""
    match = re.search(r'<div class="flash flash-warning quiet-start"[^>]*>\s*<p>(.*?)</p>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", "", match.group(1)).split()) if match else ""


def _save_contact(app, phone: str) -> None:
    with app.app_context():
        edits.save_contact(None, phone, "Customer", "", {}, "IN")


def test_after_midnight_the_review_says_everyone_waits_until_nine(app, sim, staff_client, clock):
    clock.now = AFTER_MIDNIGHT_IST
    app.config["SEND_RATE_PER_SECOND"] = 0.5
    add_contacts(app, 40)  # numbers without a timezone of their own follow the campaign's, Asia/Kolkata
    html = _page(staff_client, _quiet_campaign(app))
    assert _quiet_text(html) == ("Quiet hours. Right now, all 40 recipients are inside quiet hours (21:00–09:00 in "
                                 "their own time), so sending starts at 09:00 today and takes about 2 min.")
    assert re.search(r"to send, from <span data-review-starts>09:00 today</span>", html)
    assert re.search(r"Launch now to 40 contacts, sending from 09:00 today\s*</button>", html)
    assert "so it may take longer" not in html  # the note says exactly when instead


def test_late_in_the_evening_sending_starts_tomorrow(app, sim, staff_client, clock):
    clock.now = LATE_EVENING_IST
    app.config["SEND_RATE_PER_SECOND"] = 1
    add_contacts(app, 40)
    assert _quiet_text(_page(staff_client, _quiet_campaign(app))).endswith(
        "so sending starts at 09:00 tomorrow and takes under a minute.")


def test_the_review_agrees_with_what_the_engine_holds_after_launch(app, sim, staff_client, clock):
    clock.now = AFTER_MIDNIGHT_IST
    add_contacts(app, 3)
    campaign_id = _quiet_campaign(app)
    assert "sending starts at 09:00 today" in _quiet_text(_page(staff_client, campaign_id))
    with app.app_context():
        lifecycle.launch(campaign_id, None)
        hold = batches.quiet_hold(db.session.get(Campaign, campaign_id), clock.now)
    assert (hold.held, hold.opens_local.strftime("%H:%M"), hold.zone) == (3, "09:00", "Asia/Kolkata")
    assert hold.opens_at == datetime(2026, 12, 8, 3, 30, tzinfo=UTC)


def test_mixed_timezones_say_how_many_go_now_and_when_each_of_the_rest_start(app, sim, staff_client, clock):
    clock.now = INDIAN_MORNING
    for phone in (INDIA, DUBAI, NEW_YORK):
        _save_contact(app, phone)
    html = _page(staff_client, _quiet_campaign(app))
    assert _quiet_text(html) == (
        "Quiet hours. Right now, 2 of the 3 recipients are inside quiet hours (21:00–09:00 in their own time). "
        "1 can go now; the other 2 start as their quiet hours end (1 at 10:30 today, 1 at 19:30 today). "
        "Sending should be done around 19:30 today.")
    assert "data-review-starts" not in html and re.search(r"Launch now to 3 contacts\s*</button>", html)


def test_one_zone_held_says_when_it_starts(app, sim, staff_client, clock):
    clock.now = INDIAN_MORNING
    for phone in (INDIA, DUBAI):
        _save_contact(app, phone)
    html = _page(staff_client, _quiet_campaign(app))
    assert "1 can go now; the other one starts at 10:30 today." in _quiet_text(html)


@pytest.mark.parametrize("schedule", [
    {"schedule_kind": "at", "scheduled_at": datetime(2026, 12, 8, 17, 30, tzinfo=UTC)},
    {"schedule_kind": "cron", "cron": "0 23 * * *"},  # a repeating campaign: its first run
])
def test_a_scheduled_campaign_is_checked_at_its_scheduled_start(app, sim, staff_client, clock, schedule):
    clock.now = NOON_IST  # outside quiet hours now, but the campaign starts at 23:00
    add_contacts(app, 5)
    campaign_id = _quiet_campaign(app, **schedule)
    assert _quiet_text(_page(staff_client, campaign_id)) == (
        "Quiet hours. At the scheduled start (23:00 today), all 5 recipients are inside quiet hours (21:00–09:00 in "
        "their own time), so sending starts at 09:00 tomorrow and takes under a minute.")


def test_a_long_send_that_runs_into_quiet_hours_says_when_it_ends(app, sim, staff_client, clock):
    clock.now = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)  # 20:30 IST: half an hour of sending left today
    app.config["SEND_RATE_PER_SECOND"] = 1
    add_contacts(app, 2400)  # 40 minutes of sending
    campaign_id = _quiet_campaign(app, schedule_kind="at", scheduled_at=datetime(2026, 12, 8, 15, 10, tzinfo=UTC))
    assert _quiet_text(_page(staff_client, campaign_id)) == ""  # 20:40 is outside quiet hours: nothing extra
    campaign_id = _quiet_campaign(app, schedule_kind="at", scheduled_at=datetime(2026, 12, 8, 15, 40, tzinfo=UTC))
    assert _quiet_text(_page(staff_client, campaign_id)) == (
        "Quiet hours. At the scheduled start (21:10 today), all 2,400 recipients are inside quiet hours (21:00–09:00 "
        "in their own time), so sending starts at 09:00 tomorrow and takes about 40 min.")


def test_a_window_closing_mid_send_holds_the_rest_until_morning(app, sim, staff_client, clock):
    clock.now = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)  # 20:30 in India, 00:00 in Tokyo
    app.config["SEND_RATE_PER_SECOND"] = 1
    add_contacts(app, 2400)  # 1,800 go before 21:00; the last 600 from 09:00, after Tokyo's 09:00 (05:30 here)
    _save_contact(app, "+81312345678")
    assert _quiet_text(_page(staff_client, _quiet_campaign(app))) == (
        "Quiet hours. Right now, 1 of the 2,401 recipients is inside quiet hours (21:00–09:00 in their own time). "
        "2,400 can go now; the other one starts at 05:30 tomorrow. Sending should be done around 09:10 tomorrow.")


def test_nothing_extra_outside_quiet_hours_or_without_them(app, sim, staff_client, clock):
    clock.now = NOON_IST
    add_contacts(app, 4)
    html = _page(staff_client, _quiet_campaign(app))
    assert 'id="quiet-start"' not in html and "inside quiet hours" not in html
    assert "No messages between 21:00 and 09:00 in each recipient's local time, so it may take longer." in html
    clock.now = AFTER_MIDNIGHT_IST
    html = _page(staff_client, make_campaign(app, timezone="Asia/Kolkata"))
    assert 'id="quiet-start"' not in html and "No quiet hours: sends around the clock." in html


def _post_quiet(client, campaign_id: int, **fields):
    token = csrf_token_from(_page(client, campaign_id))
    return client.post(f"/campaigns/{campaign_id}/quiet-hours", data={"csrf_token": token, **fields}, headers=HTMX)


def test_send_now_anyway_turns_quiet_hours_off_and_re_renders_the_review(app, sim, staff_client, clock):
    clock.now = AFTER_MIDNIGHT_IST
    add_contacts(app, 40)
    campaign_id = _quiet_campaign(app)
    response = _post_quiet(staff_client, campaign_id, quiet_action="ignore")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and html.lstrip().startswith('<section class="card run-launch review-card"')
    assert "Quiet hours are off for this campaign: it sends around the clock." in html
    assert 'id="quiet-start"' not in html and re.search(r"Launch now to 40 contacts\s*</button>", html)
    assert '<dd id="summary-quiet" hx-swap-oob="true">None: it sends around the clock</dd>' in html
    campaign = campaign_row(app, campaign_id)
    assert (campaign.quiet_hours_start, campaign.quiet_hours_end, campaign.status) == (None, None, "draft")
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "campaign.quiet_hours"))
        assert entry.summary == "Changed the quiet hours of “Diwali offer” off: it sends around the clock"


def test_changing_quiet_hours_updates_the_figures(app, sim, staff_client, clock):
    clock.now = AFTER_MIDNIGHT_IST
    add_contacts(app, 10)
    campaign_id = _quiet_campaign(app)
    html = _post_quiet(staff_client, campaign_id, quiet_hours_start="22:00", quiet_hours_end="06:00").get_data(
        as_text=True)
    assert "sending starts at 06:00 today" in _quiet_text(html)
    assert "Quiet hours for this campaign are now 22:00–06:00 in each recipient&#39;s own time." in html
    html = _post_quiet(staff_client, campaign_id, quiet_hours_start="01:00", quiet_hours_end="06:00").get_data(
        as_text=True)
    assert _quiet_text(html) == ""  # 00:33 is before these quiet hours begin
    assert (campaign_row(app, campaign_id).quiet_hours_start, campaign_row(app, campaign_id).quiet_hours_end) == \
        ("01:00", "06:00")


def test_a_bad_change_is_explained_and_changes_nothing(app, sim, staff_client, clock):
    clock.now = AFTER_MIDNIGHT_IST
    add_contacts(app, 2)
    campaign_id = _quiet_campaign(app)
    html = _post_quiet(staff_client, campaign_id, quiet_hours_start="09:00", quiet_hours_end="09:00").get_data(
        as_text=True)
    assert re.search(r'<p class="field-error" role="alert" id="quiet-error">Quiet hours cannot start and end at the '
                     r"same time; leave both empty to send around the clock.</p>", html)
    assert '<details class="quiet-edit" id="quiet-edit" open>' in html and "sending starts at 09:00 today" in html
    assert re.search(r'name="quiet_hours_start" value="09:00"', html)  # as typed, to correct
    assert campaign_row(app, campaign_id).quiet_hours_start == "21:00"


def test_the_change_needs_a_csrf_token_and_a_draft(app, sim, staff_client, clock):
    clock.now = AFTER_MIDNIGHT_IST
    add_contacts(app, 2)
    campaign_id = _quiet_campaign(app)
    response = staff_client.post(f"/campaigns/{campaign_id}/quiet-hours", data={"quiet_action": "ignore"},
                                 headers=HTMX)
    assert response.status_code == 400 and campaign_row(app, campaign_id).quiet_hours_start == "21:00"
    token = csrf_token_from(_page(staff_client, campaign_id))
    with app.app_context():
        lifecycle.launch(campaign_id, None)
    response = staff_client.post(f"/campaigns/{campaign_id}/quiet-hours",
                                 data={"csrf_token": token, "quiet_action": "ignore"})
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/campaigns/{campaign_id}")
    assert "Only drafts can be edited; this campaign is running." in _page(staff_client, campaign_id)
    assert campaign_row(app, campaign_id).quiet_hours_start == "21:00"


@pytest.mark.parametrize("fields", [{"quiet_action": "ignore"}, {"quiet_hours_start": "", "quiet_hours_end": ""}])
def test_without_htmx_the_change_goes_back_to_the_page(app, sim, staff_client, clock, fields):
    clock.now = AFTER_MIDNIGHT_IST
    add_contacts(app, 2)
    campaign_id = _quiet_campaign(app)
    token = csrf_token_from(_page(staff_client, campaign_id))
    response = staff_client.post(f"/campaigns/{campaign_id}/quiet-hours", data={"csrf_token": token, **fields},
                                 follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Quiet hours are off for this campaign: it sends around the clock." in html
    assert 'id="quiet-start"' not in html and campaign_row(app, campaign_id).quiet_hours_start is None
