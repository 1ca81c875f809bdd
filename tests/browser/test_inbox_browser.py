"""A real browser watches a customer's message arrive in the inbox, answers it, and sees the delivery ticks.

The simulator posts signed webhooks to the live server (the customer's message, then the statuses of our reply)
and a background worker runs the jobs, as in production.
"""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from app.models import Role
from app.whatsapp.sim_config import SimulatorConfig, WebhookBehaviour
from app.whatsapp.sim_server import SimulatorServer
from app.whatsapp.simulator import create_simulator
from tests.browser.conftest import screenshot, sign_in
from tests.factories import webhooks as support
from tests.factories.inbox import conversation_of

TOKEN, SECRET, PHONE_NUMBER_ID, WABA_ID = "inbox-token", "inbox-app-secret", "106540352242922", "102290129340398"
ASHA = "919800000001"
hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver


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


def test_rarer_messages_read_as_a_person_would_say_them(app, live_server, page, make_user, hooks):
    """Edits, deletions, a flow's answers, a call-permission answer, a skipped campaign and a changed number, in a
    real browser at a laptop's and a phone's width; the unread badge follows the list without a reload."""
    import re
    from pathlib import Path

    from tests.factories import campaigns as campaign_support
    from tests.factories.inbox import RAVI, contact_id, writes
    from tests.factories.webhooks import inbound_body, text

    writes(hooks, ASHA, "STOP", ago_hours=2)
    campaign_support.add_contacts(app, 1, start=7)  # someone the campaign does reach
    campaign_support.launch(app, campaign_support.make_campaign(app, name="Diwali offer"), run=False)
    original = writes(hooks, ASHA, "Size M please", ago_hours=1)
    hooks.deliver(inbound_body(text(ASHA, "", kind="edit", seconds=_now(-3500), edit={
        "original_message_id": original, "message": {"type": "text", "text": {"body": "Size L please"}}})))
    secret = writes(hooks, ASHA, "My card number is 4111 1111", ago_hours=0.5)
    hooks.deliver(inbound_body(text(ASHA, "", kind="revoke", seconds=_now(-1700),
                                    revoke={"original_message_id": secret})))
    writes(hooks, ASHA, "", kind="interactive", interactive={"type": "nfm_reply", "nfm_reply": {
        "name": "flow", "body": "Sent", "response_json": '{"flow_token": "t1", "screen_0_Delivery_date_0": '
                                                         '"2026-12-10", "screen_0_Size_1": "L"}'}})
    writes(hooks, ASHA, "", kind="interactive", interactive={"type": "call_permission_reply", "call_permission_reply": {
        "response": "accept", "response_source": "user_action"}})
    writes(hooks, ASHA, "", kind="system", name=None, system={
        "body": f"User A changed from {ASHA} to 919800000011", "wa_id": "919800000011",
        "type": "user_changed_number"})
    writes(hooks, ASHA, "STOP")
    shots = Path("/tmp/shots-inboxmsgs")
    shots.mkdir(exist_ok=True)

    sign_in(page, live_server, make_user(Role.STAFF).email)
    page.set_viewport_size({"width": 1366, "height": 900})
    asha = contact_id(app, ASHA)
    page.goto(f"{live_server}/inbox/{asha}")
    thread = page.locator("#thread")
    assert re.search(r"Diwali offer · Not sent: opted out on \d+\s\w{3}", thread.inner_text())
    assert "Size L please" in thread.inner_text() and "edited" in thread.inner_text()
    assert "Deleted by the customer" in thread.inner_text() and "4111" not in page.content()
    assert "Delivery date: 2026-12-10" in thread.inner_text() and "Allowed calls" in thread.inner_text()
    time = page.locator(".inbox-row .inbox-time").first
    assert re.fullmatch(r"\d\d:\d\d", time.inner_text())
    row = page.locator(".inbox-row").first.bounding_box()
    box = time.bounding_box()
    assert box["x"] + box["width"] <= row["x"] + row["width"]  # the whole time shows
    stop = page.locator(".chat-in .chat-bubble", has_text="STOP").last
    expect(stop.locator(".chat-meta")).to_be_visible()  # the thread's poll may be mid-swap
    bubble, meta = stop.bounding_box(), stop.locator(".chat-meta").bounding_box()
    assert meta["x"] >= bubble["x"] and meta["x"] + meta["width"] <= bubble["x"] + bubble["width"] + 0.5
    page.locator("#thread .inbox-thread").evaluate("el => el.scrollTop = -el.scrollHeight / 2")
    page.screenshot(path=str(shots / "thread-desktop.png"))
    screenshot(page, "inbox-rarer-messages")

    writes(hooks, RAVI, "Hello?", name="Ravi Kumar")  # the badge follows the list's poll, no reload
    page.wait_for_selector(".inbox-row >> text=Ravi Kumar", timeout=10_000)
    page.wait_for_function("document.querySelector('#nav-unread').innerText.trim() === '1'", timeout=10_000)

    page.locator("#thread .inbox-thread").evaluate("el => el.scrollTop = 0")  # the newest, with the offer
    page.screenshot(path=str(shots / "thread-desktop-newest.png"))
    page.click("text=Use the new number +919800000011")
    page.wait_for_selector("text=Asha Rao now has the number +919800000011.")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(shots / "thread-phone.png"), full_page=True)
    assert page.js_errors == [], page.js_errors


def _now(offset: int) -> int:
    from tests.factories.inbox import now_seconds

    return now_seconds() + offset
