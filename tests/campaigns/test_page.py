"""The campaign page: the whole page for a visit, the live fragment for HTMX, launch checks, and the controls."""

import re
import time
from datetime import UTC, datetime

from app.models import CampaignStatus, MessageStatus
from app.services.campaigns import batches, send_rate
from tests.conftest import csrf_token_from, run_jobs
from tests.factories import campaigns as support
from tests.factories.campaigns import (
    add_contacts,
    assert_counters_match,
    campaign_row,
    launch,
    make_campaign,
    make_template,
    phone,
    report_failures,
    statuses,
)

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures
S, C = MessageStatus, CampaignStatus
HTMX = {"HX-Request": "true"}


def post(client, campaign_id: int, action: str, headers=None):
    token = csrf_token_from(client.get(f"/campaigns/{campaign_id}").get_data(as_text=True))
    return client.post(f"/campaigns/{campaign_id}/{action}", data={"csrf_token": token}, headers=headers or {})


def test_a_draft_page_shows_the_audience_and_launches_from_its_button(app, sim, staff_client):
    add_contacts(app, 3)
    add_contacts(app, 1, start=9, opted_out_at=datetime(2025, 1, 2, tzinfo=UTC))
    campaign_id = make_campaign(app)
    page = staff_client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "<html" in page and "Diwali offer" in page and "hello_world" in page
    assert "4 contacts match today" in page and "3 would receive it, 1 opted out" in page
    assert 'id="launch-button"' in page and "disabled" not in page.split('id="launch-button"')[1].split(">")[0]
    assert "hx-trigger" not in page  # a draft does not poll

    response = post(staff_client, campaign_id, "launch")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/campaigns/{campaign_id}")
    page = staff_client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Launched: sending has started." in page and 'hx-trigger="every 2s"' in page
    run_jobs(app)
    assert campaign_row(app, campaign_id).status == C.COMPLETED and sim.ledger()["accepted"] == 3


def test_the_page_names_the_audience_s_tags_as_staff_wrote_them(app, sim, staff_client, make_contact):
    make_contact("+919800000001", "Asha", tags=["VIP Mumbai"])
    campaign_id = make_campaign(app, audience={"tags_any": ["vip mumbai"]})
    page = staff_client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Tagged VIP Mumbai" in page


def test_launch_problems_are_shown_and_the_button_is_disabled(app, sim, staff_client):
    template_id = make_template(app, "order_update")  # its two variables are not mapped
    campaign_id = make_campaign(app, template_id)
    page = staff_client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "This campaign cannot start yet" in page and "No contacts match this audience." in page
    assert "Choose what fills" in page
    assert re.search(r'id="launch-button"[^>]*disabled', page)
    response = post(staff_client, campaign_id, "launch")
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "No contacts match this audience." in page and campaign_row(app, campaign_id).status == C.DRAFT


def test_the_live_fragment_polls_while_sending_and_stops_when_done(app, sim, staff_client):
    add_contacts(app, 4)
    sim.configure(fixed_outcomes={phone(2)[1:]: 131026})  # accepted, then failed by webhook
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)

    fragment = staff_client.get(f"/campaigns/{campaign_id}", headers=HTMX).get_data(as_text=True)
    assert fragment.lstrip().startswith("<section") and "<html" not in fragment
    assert 'id="campaign-progress"' in fragment and 'hx-trigger="every 2s"' in fragment
    assert 'value="0"' in fragment and "Sending" in fragment and 'data-action="pause"' in fragment

    run_jobs(app)
    assert report_failures(app, sim) == 1
    fragment = staff_client.get(f"/campaigns/{campaign_id}", headers=HTMX).get_data(as_text=True)
    assert "hx-trigger" not in fragment and 'value="100"' in fragment and "Completed" in fragment
    assert re.search(r'data-counter="sent">3<', fragment) and re.search(r'data-counter="failed">1<', fragment)
    assert "Why messages failed" in fragment and "code 131026" in fragment
    assert "This number is not on WhatsApp or cannot receive messages from businesses." in fragment
    assert 'data-action="pause"' not in fragment
    page = staff_client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Frozen at launch: 4 contacts" in page and 'style="' not in page  # the CSP forbids inline styles
    assert_counters_match(app, campaign_id)


def test_the_current_send_rate_comes_from_samples_of_the_counters_over_the_last_seconds(app):
    with app.app_context():
        assert send_rate.sample(7, attempted=0, now=1000.0) is None  # a first look says nothing yet
        assert send_rate.sample(7, attempted=10, now=1001.0) is None  # too soon after it to tell
        assert send_rate.sample(7, attempted=400, now=1005.0) == 80.0  # 400 in the 5 s since the first sample
        assert send_rate.sample(7, attempted=1600, now=1025.0) == 60.0  # from 1005: older samples are dropped
        assert send_rate.sample(8, attempted=5, now=1025.0) is None  # each campaign has its own


def test_the_live_fragment_shows_the_measured_rate_and_the_time_left_at_it(app, sim, staff_client, monkeypatch):
    add_contacts(app, 30)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    looked_at = time.time()
    with app.app_context():
        send_rate.sample(campaign_id, attempted=0, now=looked_at)  # a look before any send
        batches.send_batch(campaign_id)  # 10 go out
    monkeypatch.setattr(send_rate, "clock", lambda: looked_at + 8)  # the next look, 8 s later
    fragment = staff_client.get(f"/campaigns/{campaign_id}", headers=HTMX).get_data(as_text=True)
    text = " ".join(re.sub(r"<[^>]+>", " ", fragment).split())
    assert "10 of 30 done · 1.2 messages a second now · less than a minute left" in text, text[:300]


def test_pause_resume_and_cancel_buttons_swap_the_fragment(app, sim, staff_client):
    add_contacts(app, 3)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)

    fragment = post(staff_client, campaign_id, "pause", HTMX).get_data(as_text=True)
    assert "Paused: no new batch will start." in fragment and "Paused by staff" in fragment
    assert 'data-action="resume"' in fragment and "hx-trigger" not in fragment
    run_jobs(app)
    assert sim.ledger()["accepted"] == 0

    fragment = post(staff_client, campaign_id, "resume", HTMX).get_data(as_text=True)
    assert "Resumed: sending again." in fragment and 'hx-trigger="every 2s"' in fragment
    fragment = post(staff_client, campaign_id, "resume", HTMX).get_data(as_text=True)
    assert "Only a paused campaign can be resumed" in fragment

    response = post(staff_client, campaign_id, "cancel")  # without JavaScript: a redirect and a flash
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Cancelled: messages not yet sent will not be sent." in page
    assert "3 messages were not sent because the campaign was cancelled." in page
    run_jobs(app)
    assert statuses(app, campaign_id) == {S.CANCELLED: 3} and sim.ledger()["accepted"] == 0


def test_an_unknown_campaign_is_a_404(app, staff_client):
    assert staff_client.get("/campaigns/999").status_code == 404
    assert post_without_page(staff_client, "/campaigns/999/pause").status_code == 404


def post_without_page(client, url: str):
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token})


def test_the_page_needs_a_signed_in_user(app, client):
    response = client.get("/campaigns/1")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
