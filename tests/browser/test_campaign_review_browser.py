"""A real browser composes a campaign, reviews it before launch (counts, skipped with reasons, cost, sending time),
sends a test to the simulator, then duplicates the draft and deletes the copy through the confirm dialog; and reviews
a campaign after midnight, when quiet hours hold everyone, and changes its quiet hours from the review."""

from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import expect

from app.extensions import db
from app.models import Contact, Message, Setting
from tests.browser.conftest import ARTIFACTS, sign_in
from tests.browser.conftest import screenshot as full_page_screenshot
from tests.factories.campaigns import make_campaign

pytest_plugins = ["tests.factories.composer"]

ORDER_UPDATE = [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} has been shipped and will reach you soon.",
                 "example": {"body_text": [["Asha", "#1042"]]}},
                {"type": "FOOTER", "text": "Thank you for shopping with us"}]
WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def screenshot(page, name: str) -> None:
    """From the top, so the sticky top bar is not drawn over the middle of a long page."""
    page.mouse.wheel(0, -100_000)
    page.wait_for_timeout(100)
    full_page_screenshot(page, name)


def _gold_customers(app) -> None:
    """240 gold customers who will get it, 3 who opted out, 1 deleted, and 15 silver ones outside the audience who
    were messaged today: with a limit of 250 customers a day, 235 remain."""
    with app.app_context():
        rows = [Contact(phone=f"+9198{n:08d}", wa_id=f"9198{n:08d}", name=f"Customer {n}",
                        attributes={"segment": "gold", "order": f"#{1000 + n}"}) for n in range(1, 241)]
        rows += [Contact(phone=f"+9197{n:08d}", wa_id=f"9197{n:08d}", name=f"Opted {n}", opted_out_at=WHEN,
                         attributes={"segment": "gold"}) for n in range(3)]
        rows += [Contact(phone="+919600000001", wa_id="919600000001", name="Gone", deleted_at=WHEN,
                         attributes={"segment": "gold"})]
        silver = [Contact(phone=f"+9195{n:08d}", wa_id=f"9195{n:08d}", name=f"Silver {n}",
                          attributes={"segment": "silver"}) for n in range(15)]
        db.session.add_all(rows + silver + [Setting(key="messaging_limit_tier", value="250")])
        db.session.flush()
        db.session.add_all(Message(contact_id=contact.id, direction="out", message_type="template", status="sent",
                                   sent_at=datetime.now(UTC)) for contact in silver)
        db.session.commit()


def test_review_a_composed_campaign_and_send_a_test(app, live_server, page, sim, quick_user, make_template):
    make_template("order_update", ORDER_UPDATE, category="UTILITY")
    _gold_customers(app)
    sign_in(page, live_server, quick_user)

    page.goto(f"{live_server}/campaigns/new")
    page.fill("#name", "Gold shipping update")
    page.select_option("#template_id", label="order_update · en_US · Utility")
    expect(page.locator("select[name='var-body.2-source']")).to_be_visible()
    page.check("input[name=audience_mode][value=filter]")
    page.click("text=+ Add condition")
    page.fill("input[name=rule_key]", "segment")
    page.select_option("select[name=rule_op]", "equals")
    page.fill("input[name=rule_value]", "gold")
    expect(page.locator("#audience-count")).to_contain_text("243 contacts match")
    expect(page.locator("#audience-count")).to_contain_text("3 opted out and will be skipped")
    page.select_option("select[name='var-body.1-source']", "name")
    page.fill("input[name='var-body.1-fallback']", "there")
    page.select_option("select[name='var-body.2-source']", "attribute")
    page.fill("input[name='var-body.2-field']", "order")
    page.fill("#max_rate", "1")
    expect(page.locator("#live-preview")).to_contain_text("Ready to launch")
    expect(page.locator("#estimated-duration")).to_contain_text("Sending takes about 4 min at 1 message a second")
    expect(page.locator("#live-preview")).to_contain_text("No messages between 21:00 and 09:00 in each recipient's")
    page.click("text=Save draft")
    expect(page.locator(".flash-success")).to_contain_text("Draft “Gold shipping update” saved.")

    page.click("text=Review & launch")
    review = page.locator("#review")
    expect(review.locator("[data-review=recipients]")).to_have_text("240")
    expect(review.locator("[data-review=skipped]")).to_have_text("3")
    expect(review.locator("[data-review=cost]")).to_have_text("₹27.60")  # 240 × ₹0.115 for a utility template
    expect(review.locator("[data-review=duration]")).to_have_text("about 4 min")  # 240 at 1 a second
    expect(review).to_contain_text("3 opted out of messages.")
    expect(review).to_contain_text("Deleted contacts are never included.")
    expect(review).to_contain_text("240 × ₹0.115 per utility message = ₹27.60")
    expect(review.locator("#limit-warning")).to_contain_text(
        "240 of these recipients would start a new conversation today, but your number can reach only 235 more "
        "customers in the next 24 hours (limit 250, 15 already messaged in the last 24 hours).")
    expect(page.locator("#launch-button")).to_contain_text("Launch now to 240 contacts")
    expect(page.locator(".try-card .wa-caption")).to_have_text("As Customer 1 gets it")
    expect(page.locator(".try-card .wa-body")).to_have_text(
        "Hi Customer 1, your order #1001 has been shipped and will reach you soon.")
    share = page.locator("#share-link")
    expect(share).to_have_attribute("target", "_blank")
    expect(share).to_have_attribute("rel", "noopener noreferrer")
    assert share.get_attribute("href").startswith("https://wa.me/?text=Hi%20Customer%201%2C%20your%20order%20%231001")

    page.fill("#test_phone", "98765")
    page.click("#test-send-button")
    expect(page.locator("#test-phone-error")).to_contain_text("Type the number with its country code")
    page.locator(".try-card").screenshot(path=str(ARTIFACTS / "campaign-review-test-error.png"))
    page.fill("#test_phone", "+91 98765 43210")
    page.click("#test-send-button")
    expect(page.locator("#test-result")).to_have_text("Test sent to +919876543210. It should arrive within a minute.")
    screenshot(page, "campaign-review")
    recent = sim.simulator.ledger.snapshot(detail=True)["recent"]
    assert [(send["to"], send["template"]) for send in recent] == [("919876543210", "order_update")]
    assert page.js_errors == [], page.js_errors

    page.click("[data-action=duplicate]")
    expect(page.locator(".flash-success")).to_contain_text("Copied into the new draft “Copy of Gold shipping update”")
    page.click("nav >> text=Campaigns")
    row = page.locator("tr", has_text="Copy of Gold shipping update")
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action=delete]").click()
    expect(page.locator(".flash-success")).to_contain_text("Deleted the draft “Copy of Gold shipping update”.")
    expect(page.locator("table")).to_contain_text("Gold shipping update")
    expect(page.locator("table")).not_to_contain_text("Copy of")
    screenshot(page, "campaign-list-actions")
    assert page.js_errors == [], page.js_errors


AFTER_MIDNIGHT_IST = datetime(2026, 12, 7, 19, 3, tzinfo=UTC)  # 00:33 on 8 Dec in India, 23:03 on 7 Dec in Dubai
SHOTS = Path("/tmp/shots-review")


def _night_audience(app) -> int:
    """38 customers whose numbers have no timezone (they follow the campaign's, Asia/Kolkata) and 2 in Dubai."""
    with app.app_context():
        db.session.add_all(Contact(phone=f"+9198{n:08d}", wa_id=f"9198{n:08d}", name=f"Customer {n}")
                           for n in range(1, 39))
        db.session.add_all(Contact(phone=f"+97150{n:07d}", wa_id=f"97150{n:07d}", name=f"Dubai {n}",
                                   timezone="Asia/Dubai") for n in range(1, 3))
        db.session.commit()
    return make_campaign(app, name="Winter sale", timezone="Asia/Kolkata", quiet_hours_start="21:00",
                         quiet_hours_end="09:00")


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    for width, height in ((1366, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.locator("#review").screenshot(path=str(SHOTS / f"{name}-{width}.png"))
        overflowing = page.evaluate("[...document.querySelectorAll('#review *')]"
                                    ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.className)")
        assert overflowing == [], f"text wider than its box at {width}: {overflowing}"
    page.set_viewport_size({"width": 1366, "height": 900})


def test_review_after_midnight_says_when_sending_starts_and_sends_now_in_one_click(app, live_server, page, clock,
                                                                                    quick_user):
    clock.now = AFTER_MIDNIGHT_IST
    app.config["SEND_RATE_PER_SECOND"] = 1
    campaign_id = _night_audience(app)
    sign_in(page, live_server, quick_user)
    page.goto(f"{live_server}/campaigns/{campaign_id}")
    note = page.locator("#quiet-start")
    expect(note).to_contain_text("Right now, all 40 recipients are inside quiet hours (21:00–09:00 in their own "
                                 "time), so sending starts at 09:00 today.")
    expect(note).to_contain_text("Sending should be done around 10:30 today.")  # Dubai's 09:00 is 10:30 here
    expect(page.locator("#launch-button")).to_contain_text("Launch now to 40 contacts, sending from 09:00 today")
    _shoot(page, "review-quiet")

    page.click("#ignore-quiet-hours")
    expect(page.locator("#quiet-notice")).to_have_text("Quiet hours are off for this campaign: it sends around the "
                                                       "clock.")
    expect(page.locator("#quiet-start")).to_have_count(0)
    expect(page.locator("#summary-quiet")).to_have_text("None: it sends around the clock")
    expect(page.locator("#launch-button")).to_have_text("Launch now to 40 contacts")
    expect(page.locator("[data-review=duration]")).to_have_text("under a minute")
    _shoot(page, "review-quiet-off")

    page.click("#quiet-edit summary")
    page.fill("#review_quiet_start", "22:00")
    page.fill("#review_quiet_end", "06:00")
    page.click("#save-quiet-hours")
    expect(page.locator("#quiet-start")).to_contain_text("so sending starts at 06:00 today")
    expect(page.locator("#summary-quiet")).to_contain_text("No messages between 22:00 and 06:00")
    page.click("#quiet-edit summary")
    page.fill("#review_quiet_end", "22:00")
    page.click("#save-quiet-hours")
    expect(page.locator("#quiet-error")).to_have_text(
        "Quiet hours cannot start and end at the same time; leave both empty to send around the clock.")
    _shoot(page, "review-quiet-error")
    assert page.js_errors == [], page.js_errors
