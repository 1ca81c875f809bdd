"""A real browser watches a customer's message arrive in the inbox, answers it, and sees the delivery ticks.

The simulator posts signed webhooks to the live server (the customer's message, then the statuses of our reply)
and a background worker runs the jobs, as in production.
"""

from __future__ import annotations

import pytest
import requests

from app.models import Role
from app.whatsapp.sim_config import SimulatorConfig, WebhookBehaviour
from app.whatsapp.sim_server import SimulatorServer
from app.whatsapp.simulator import create_simulator
from tests.browser.conftest import screenshot, sign_in
from tests.factories.inbox import conversation_of

TOKEN, SECRET, PHONE_NUMBER_ID, WABA_ID = "inbox-token", "inbox-app-secret", "106540352242922", "102290129340398"
ASHA = "919800000001"


@pytest.fixture
def sim_to_live(app, live_server):
    """A simulator whose webhooks go to the live server, with the app sending through it."""
    config = SimulatorConfig(access_token=TOKEN, app_secret=SECRET, phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID,
                             webhook_url=f"{live_server}/webhooks/whatsapp",
                             webhooks=WebhookBehaviour(enabled=True, sent_delay_ms=50, delivered_delay_ms=300,
                                                       delivered_probability=1.0, read_probability=0.0))
    simulator = create_simulator(config)
    server = SimulatorServer(simulator, "127.0.0.1", 0).start()
    app.config.update(WHATSAPP_APP_SECRET=SECRET, WHATSAPP_VERIFY_TOKEN="verify", WHATSAPP_API_BASE_URL=server.url,
                      WHATSAPP_ACCESS_TOKEN=TOKEN, WHATSAPP_PHONE_NUMBER_ID=PHONE_NUMBER_ID,
                      WHATSAPP_BUSINESS_ACCOUNT_ID=WABA_ID)
    yield server.url
    server.shutdown()
    simulator.close()


def test_a_customer_writes_staff_answer_and_see_it_delivered(app, live_server, sim_to_live, page, make_user,
                                                             background_worker):
    sign_in(page, live_server, make_user(Role.STAFF).email)
    page.goto(f"{live_server}/inbox/")
    assert "No conversations yet" in page.locator("#conversation-list").inner_text()

    injected = requests.post(f"{sim_to_live}/_sim/inbound", timeout=10,
                             json={"from": ASHA, "profile_name": "Asha Rao", "text": "Is the blue kurta in stock?"})
    assert injected.status_code == 200, injected.text
    row = page.locator(".inbox-row", has_text="Asha Rao")
    row.wait_for(timeout=15_000)  # the list polls itself
    assert row.locator(".inbox-unread").inner_text() == "1"
    screenshot(page, "inbox-message-arrived")
    page.reload()
    assert page.locator(".mainnav .badge").inner_text() == "1"  # the nav's unread badge, on each page load
    row = page.locator(".inbox-row", has_text="Asha Rao")

    row.click()
    page.wait_for_selector("text=Is the blue kurta in stock?")
    # Opening it posts (htmx, with the CSRF header) to mark it read: the nav badge and the list's count go at once.
    page.wait_for_selector("#nav-unread .badge", state="detached", timeout=5_000)
    page.wait_for_selector(".inbox-row.is-current .inbox-unread", state="detached", timeout=5_000)
    assert conversation_of(app, ASHA).unread == 0
    assert page.locator("[data-window=open]").count() == 1
    page.fill("#reply-body", "Yes! Size M and L are in stock.")
    page.click("#reply-form button[type=submit]")
    reply = page.locator(".chat-out", has_text="Size M and L are in stock.")
    reply.wait_for()
    page.wait_for_selector(".chat-out [data-status=delivered]", timeout=15_000)  # the thread polls itself
    assert reply.locator(".tick").inner_text() == "✓✓"
    assert page.locator(".inbox-row.is-current .inbox-unread").count() == 0
    screenshot(page, "inbox-reply-delivered")
    assert page.js_errors == [], page.js_errors


def test_outside_the_window_the_composer_offers_a_template(app, live_server, page, make_user, make_contact):
    from datetime import UTC, datetime, timedelta

    from app.extensions import db
    from app.models import Conversation, Message, MessageTemplate

    contact_id = make_contact(f"+{ASHA}", name="Asha Rao", tags=["VIP"])
    written = datetime.now(UTC) - timedelta(hours=30)
    with app.app_context():
        db.session.add_all([
            Message(contact_id=contact_id, direction="in", message_type="text", status="received",
                    body="Do you deliver to Pune?", created_at=written),
            Conversation(contact_id=contact_id, last_inbound_at=written, last_message_at=written, unread=1,
                         last_preview="Do you deliver to Pune?"),
            MessageTemplate(name="order_update", language="en_US", category="UTILITY", status="APPROVED",
                            components=[{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."}]),
        ])
        db.session.commit()
    sign_in(page, live_server, make_user(Role.ADMIN).email)
    page.goto(f"{live_server}/inbox/{contact_id}")
    assert "Free text is not possible now." in page.locator("#window-closed").inner_text()
    page.select_option("#template-id", label="order_update (en_US, utility)")
    page.wait_for_selector("input[name='var-body.2-text']")
    assert page.input_value("input[name='var-body.1-text']") == "Asha Rao"
    screenshot(page, "inbox-window-closed")
    page.goto(f"{live_server}/admin/auto-replies/")
    page.fill("#rule-name", "Prices")
    page.fill("#rule-keywords", "price, rate list")
    page.fill("#rule-reply", "Our price list: https://example.com/prices")
    page.click("#rule-form button[type=submit]")
    page.wait_for_selector("#rule-table >> text=Prices")
    screenshot(page, "auto-replies")
    assert page.js_errors == [], page.js_errors
