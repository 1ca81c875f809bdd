"""One campaign's analytics page: funnel, rates, failure reasons with explanations, timing, live refresh."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from app.models import Role
from tests.factories.analytics import (
    HTMX,
    C,
    add_contacts,
    add_messages,
    chart_json,
    figure,
    make_campaign,
    utc,
)

START = utc(2025, 11, 1, 10, 0)


def seed(app, status: str = C.COMPLETED) -> int:
    """10 targeted: 1 skipped, 3 failed (2 × 131026, 1 × 131050), 6 sent, 5 delivered, 3 read, 2 replied."""
    contacts = add_contacts(app, 10)
    finished = START + timedelta(minutes=9) if status == C.COMPLETED else None
    campaign_id = make_campaign(app, "Diwali offer", status=status, started_at=START, finished_at=finished)
    add_messages(app, campaign_id, contacts[0:1], "skipped", START)
    add_messages(app, campaign_id, contacts[1:3], "failed", START, error_code=131026)
    add_messages(app, campaign_id, contacts[3:4], "failed", START, error_code=131050)
    add_messages(app, campaign_id, contacts[4:5], "sent", START)
    add_messages(app, campaign_id, contacts[5:7], "delivered", START)
    add_messages(app, campaign_id, contacts[7:8], "read", START)
    add_messages(app, campaign_id, contacts[8:10], "read", START, replied=True)
    return campaign_id


def step(html: str, key: str) -> list[str]:
    row = re.search(rf'<tr data-step="{key}">(.*?)</tr>', html, re.S).group(1)
    return [cell.strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]


def test_the_funnel_and_rates_come_from_the_counters(app, staff_client):
    campaign_id = seed(app)
    html = staff_client.get(f"/campaigns/{campaign_id}/analytics").get_data(as_text=True)
    assert "<h1>Diwali offer</h1>" in html and 'style="' not in html
    assert step(html, "targeted") == ["Targeted", "10", "100%", ""]
    assert step(html, "sent") == ["Sent", "6", "60%", "60%"]
    assert step(html, "delivered") == ["Delivered", "5", "50%", "83.3%"]
    assert step(html, "read") == ["Read", "3", "30%", "60%"]
    assert step(html, "replied") == ["Replied", "2", "20%", "66.7%"]
    assert step(html, "failed") == ["Failed", "3", "30%", ""]
    assert step(html, "skipped") == ["Skipped", "1", "10%", ""]
    assert figure(html, "rate", "delivery") == "83.3%" and figure(html, "rate", "read") == "50%"
    assert figure(html, "rate", "reply") == "33.3%" and figure(html, "rate", "failure") == "33.3%"
    data = chart_json(html, "funnel-json")
    assert data["kind"] == "funnel" and data["labels"][:5] == ["Targeted", "Sent", "Delivered", "Read", "Replied"]
    assert data["datasets"][0]["data"] == [10, 6, 5, 3, 2, 3, 1]
    assert '<canvas id="funnel-chart"' in html and "Show the numbers" in html


def test_failures_are_grouped_by_code_with_our_explanation_and_a_link_to_the_messages(app, staff_client):
    campaign_id = seed(app)
    contacts = add_contacts(app, 1, start=50)
    add_messages(app, campaign_id, contacts, "failed", START, error_code=139999)  # a code we do not know
    html = staff_client.get(f"/campaigns/{campaign_id}/analytics").get_data(as_text=True)
    rows = re.findall(r'<tr data-error-code="(\d*)">(.*?)</tr>', html, re.S)
    assert [code for code, _ in rows] == ["131026", "131050", "139999"]  # most recipients first
    first = rows[0][1]
    assert "Message undeliverable" in first and ">2<" in first
    assert "This number is not on WhatsApp or cannot receive messages from businesses." in first
    assert "This customer has turned off marketing messages from your business in WhatsApp." in rows[1][1]
    assert "WhatsApp reported that this message could not be delivered." in rows[2][1]
    assert f"/messages/?campaign={campaign_id}&amp;status=failed&amp;error=131026" in first


def test_timing_shows_start_finish_duration_and_speed(app, staff_client):
    campaign_id = seed(app)
    html = staff_client.get(f"/campaigns/{campaign_id}/analytics").get_data(as_text=True)
    assert "01 Nov 2025, 15:30" in html and "01 Nov 2025, 15:39" in html  # Asia/Kolkata
    assert figure(html, "figure", "duration") == "9 min 0 s"
    assert figure(html, "figure", "speed") == "1 message a minute"  # 9 handled in 9 minutes


@pytest.mark.parametrize(("seconds", "shown"), [
    (1.6, "2 s"), (2.0, "2 s"), (2.4, "2 s"), (0.9, "under a second"), (0.0, "under a second"), (59.6, "1 min 0 s"),
])
def test_a_quick_campaign_shows_its_duration_rounded_to_the_second(app, staff_client, seconds, shown):
    contacts = add_contacts(app, 40)
    campaign_id = make_campaign(app, "Flash sale", status=C.COMPLETED, started_at=START,
                                finished_at=START + timedelta(seconds=seconds))
    add_messages(app, campaign_id, contacts, "delivered", START)
    html = staff_client.get(f"/campaigns/{campaign_id}/analytics").get_data(as_text=True)
    assert figure(html, "figure", "duration") == shown


def test_a_running_campaign_refreshes_itself_and_stops_when_done(app, staff_client):
    campaign_id = seed(app, status=C.RUNNING)
    page = staff_client.get(f"/campaigns/{campaign_id}/analytics").get_data(as_text=True)
    assert re.search(r'id="analytics-poll"[^>]*hx-trigger="every 5s"', page) and "Still sending" in page
    fragment = staff_client.get(f"/campaigns/{campaign_id}/analytics", headers=HTMX).get_data(as_text=True)
    assert "<html" not in fragment and "<canvas" not in fragment and fragment.count('hx-swap-oob="true"') == 4
    assert chart_json(fragment, "funnel-json") == chart_json(page, "funnel-json")

    with app.app_context():
        from app.extensions import db
        from app.models import Campaign
        db.session.get(Campaign, campaign_id).status = C.COMPLETED
        db.session.commit()
    fragment = staff_client.get(f"/campaigns/{campaign_id}/analytics", headers=HTMX).get_data(as_text=True)
    assert 'id="analytics-poll" hx-swap-oob="true" data-live="no"' in fragment and "hx-trigger" not in fragment


def test_a_campaign_without_failures_or_start_says_so(app, staff_client):
    campaign_id = make_campaign(app, "Draft idea", status=C.DRAFT)
    html = staff_client.get(f"/campaigns/{campaign_id}/analytics").get_data(as_text=True)
    assert "Nothing sent yet, so nothing has failed." in html and "Not started yet" in html
    assert figure(html, "rate", "delivery") == "—" and "hx-trigger" not in html


def test_unknown_campaign_is_404_and_staff_need_a_login(app, client, auth, make_user):
    campaign_id = seed(app)
    assert client.get(f"/campaigns/{campaign_id}/analytics").headers["Location"].startswith("/login")
    auth.login(make_user(Role.STAFF).email)
    assert client.get(f"/campaigns/{campaign_id}/analytics").status_code == 200
    assert client.get("/campaigns/999999/analytics").status_code == 404
