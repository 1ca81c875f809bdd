"""A real browser launches a campaign and watches it send to the simulator until the progress bar is full."""

from datetime import UTC, datetime

from app.models import Role
from tests.browser.conftest import screenshot, sign_in
from tests.factories import campaigns as support
from tests.factories.campaigns import (
    add_contacts,
    assert_counters_match,
    campaign_row,
    make_campaign,
    messages,
    phone,
)
from tests.factories.webhooks import wait_until

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures


def test_launch_a_campaign_and_watch_it_reach_100_percent(app, sim, live_server, page, make_user, background_worker):
    app.config.update(SEND_RATE_PER_SECOND=30, SEND_BATCH_SIZE=15)  # about three seconds of sending
    add_contacts(app, 90)
    add_contacts(app, 2, start=200, opted_out_at=datetime(2025, 10, 20, tzinfo=UTC))
    # As Meta does, the simulator accepts the send to 7 and then posts a signed failed status to the served app.
    sim.configure(fixed_outcomes={phone(7)[1:]: 131026}, webhook_url=f"{live_server}/webhooks/whatsapp",
                  app_secret=support.APP_SECRET, webhooks={"enabled": True, "delivered_probability": 0})
    campaign_id = make_campaign(app, name="Diwali offer 2026")
    sign_in(page, live_server, make_user(Role.STAFF).email)

    page.goto(f"{live_server}/campaigns/{campaign_id}")
    assert "92 contacts match today" in page.locator(".run-layout").inner_text()
    screenshot(page, "campaign-run-draft")
    page.click("#launch-button")
    page.wait_for_selector("text=Launched: sending has started.")
    page.wait_for_function("() => { const bar = document.querySelector('progress.run-bar');"
                           " return bar && bar.value > 0 && bar.value < 100; }", timeout=10_000)
    screenshot(page, "campaign-run-sending")
    assert page.locator("#campaign-progress[hx-trigger]").count() == 1

    page.wait_for_selector("progress.run-bar[value='100']", timeout=30_000)
    progress = page.locator("#campaign-progress")
    assert progress.locator(".badge").inner_text() == "Completed"
    assert page.locator("#campaign-progress[hx-trigger]").count() == 0  # finished: polling stopped
    wait_until(lambda: messages(app, campaign_id)[phone(7)].status == "failed")  # the webhook, processed
    page.reload()
    progress = page.locator("#campaign-progress")
    assert progress.locator("[data-counter=sent]").inner_text() == "89"
    assert progress.locator("[data-counter=skipped]").inner_text() == "2"
    # A webhook failure shows Meta's title ("Message Undeliverable") and our explanation (statuses._record_failure).
    assert "This number is not on WhatsApp or cannot receive messages from businesses." in progress.inner_text()
    screenshot(page, "campaign-run-done")
    assert page.js_errors == [], page.js_errors
    assert campaign_row(app, campaign_id).status == "completed"
    assert_counters_match(app, campaign_id)
    assert sim.ledger()["duplicates"] == 0
