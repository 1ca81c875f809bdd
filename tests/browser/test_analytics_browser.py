"""A real browser sees the dashboard chart draw and refresh in place, a campaign's funnel, and the message log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.models import Role
from tests.browser.conftest import screenshot, sign_in
from tests.factories.analytics import C, add_contacts, add_messages, add_reply, make_campaign

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def seed(app) -> tuple[int, list[int]]:
    contacts = add_contacts(app, 120)
    for day in range(6, 0, -1):  # a week of daily sends, each a little better read
        campaign_id = make_campaign(app, f"Daily deals, day {7 - day}", started_at=NOW - timedelta(days=day),
                                    finished_at=NOW - timedelta(days=day, minutes=-12))
        # At least 27 hours back: "today" starts at the UTC hour holding local midnight (23:30 the day before in
        # Asia/Kolkata), so a message 24 hours back counts as today when the suite runs at 23:30-24:00 there.
        at = NOW - timedelta(days=day, hours=3 + day % 3)
        add_messages(app, campaign_id, contacts[:40 + day * 5], "read", at, replied=day % 2 == 0)
        add_messages(app, campaign_id, contacts[70:100], "delivered", at + timedelta(hours=1))
        add_messages(app, campaign_id, contacts[100:104 + day], "failed", at, error_code=131026)
        add_messages(app, campaign_id, contacts[115:117], "failed", at, error_code=131050)
    festival = make_campaign(app, "Festival offer", status=C.RUNNING, started_at=NOW)
    add_messages(app, festival, contacts[:60], "delivered", NOW)
    add_messages(app, festival, contacts[60:70], "read", NOW, replied=True)
    add_messages(app, festival, contacts[100:103], "failed", NOW, error_code=131026)
    add_messages(app, festival, contacts[103:120], "pending", NOW)
    add_reply(app, contacts[0], NOW + timedelta(minutes=5), "Is the offer valid in Pune?")
    return festival, contacts


def chart_size(page, canvas_id: str) -> dict:
    # Arrow functions, not expression strings: Playwright would eval() those, which our CSP rightly blocks.
    page.wait_for_function(f"() => window.Chart && window.Chart.getChart('{canvas_id}')", timeout=5000)
    return page.locator(f"#{canvas_id}").bounding_box()


def test_dashboard_campaign_analytics_and_message_log(app, live_server, page, make_user):
    festival, contacts = seed(app)
    sign_in(page, live_server, make_user(Role.STAFF).email)

    box = chart_size(page, "series-chart")
    assert box["width"] > 300 and box["height"] > 200
    assert page.locator("[data-figure=running]").inner_text() == "1"
    assert page.locator("[data-figure=today]").inner_text() == "70"
    assert page.locator("#dashboard-campaigns progress").get_attribute("value") == "81"  # 73 of 90
    page.evaluate("document.getElementById('series-chart').dataset.marker = 'first'")

    add_messages(app, festival, contacts[70:80], "delivered", datetime.now(UTC))  # ten more go out
    page.wait_for_function("() => document.querySelector('[data-figure=today]').textContent.trim() === '80'",
                           timeout=8000)
    page.wait_for_function("() => Chart.getChart('series-chart').data.datasets[0].data.at(-1) === 80", timeout=2000)
    # The numbers and the chart's data were swapped in; the canvas is the very element drawn at first.
    assert page.evaluate("document.getElementById('series-chart').dataset.marker") == "first"
    assert page.locator("#dashboard-campaigns progress").get_attribute("value") == "83"  # 83 of 100
    page.click("text=Show the numbers")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "analytics-dashboard")

    page.click(".period-tabs >> text=30 days")
    page.wait_for_url(f"{live_server}/?period=30d")
    assert chart_size(page, "series-chart")["height"] > 200

    page.click("#dashboard-campaigns >> text=Analytics")
    page.wait_for_url(f"{live_server}/campaigns/{festival}/analytics")
    assert chart_size(page, "funnel-chart")["height"] > 200
    assert "This number is not on WhatsApp" in page.locator("#campaign-failures").inner_text()
    screenshot(page, "analytics-campaign")

    page.click("text=See its messages")
    page.wait_for_url(f"{live_server}/messages/?campaign={festival}")
    assert page.locator(".message-table tbody tr").count() == 50
    page.select_option("#status", "failed")
    page.wait_for_url(lambda url: "status=failed" in url)  # the filters are in the address, ready to share
    page.wait_for_function("() => document.querySelectorAll('.message-table tbody tr').length === 3")
    screenshot(page, "analytics-message-log")
    assert page.js_errors == [], page.js_errors  # Chart.js and HTMX ran under the Content-Security-Policy
