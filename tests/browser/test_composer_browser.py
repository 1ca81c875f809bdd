"""Templates and the campaign composer in a real browser: sync, compose with live count and preview, save."""

from datetime import UTC, datetime

from playwright.sync_api import expect

from tests.browser.conftest import screenshot as full_page_screenshot
from tests.browser.conftest import sign_in
from tests.factories.webhooks import post_template_verdict


def screenshot(page, name: str) -> None:
    """From the top, so the sticky top bar is not drawn over the middle of a long page."""
    page.mouse.wheel(0, -100_000)
    page.wait_for_timeout(100)
    full_page_screenshot(page, name)

pytest_plugins = ["tests.factories.composer"]


def test_sync_templates_then_compose_and_save_a_draft(live_server, page, sim, background_worker, quick_user,
                                                      make_contact):
    make_contact("+919876543210", "Asha Verma", tags=["VIP"], attributes={"order": "#1042", "city": "Pune"})
    make_contact("+919812345678", "Ravi Kumar", tags=["VIP", "Delhi"], attributes={"city": "Delhi"})
    make_contact("+919800000003", "Sita Ram", tags=["Delhi"])
    make_contact("+919800000004", "Opted Out", tags=["VIP"], opted_out_at=datetime(2026, 1, 1, tzinfo=UTC))
    sign_in(page, live_server, quick_user)

    page.click("nav >> text=Templates")
    expect(page.locator("#sync-status")).to_contain_text("Not synced yet")
    page.click("text=Sync now")
    expect(page.locator("#sync-status")).to_contain_text("Last synced", timeout=15_000)
    expect(page.locator("#template-table")).to_contain_text("festival_offer")
    expect(page.locator("#template-table tr", has_text="summer_clearance")).to_contain_text("Paused")
    screenshot(page, "templates-list")

    page.click("#template-table a:text-is('order_update') >> nth=0")
    expect(page.locator(".wa-bubble")).to_contain_text("has been shipped")
    screenshot(page, "template-detail")
    page.click("text=Use in a campaign")

    page.fill("#name", "Shipping update for VIPs")
    page.check("input[name=audience_mode][value=filter]")
    page.check("label.chip:has-text('VIP') >> input[name=tags]")
    expect(page.locator("#audience-count")).to_contain_text("3 contacts match")
    expect(page.locator("#audience-count")).to_contain_text("1 opted out and will be skipped")
    expect(page.locator("#audience-count")).to_contain_text("2 will receive it")

    page.select_option("select[name='var-body.1-source']", "name")
    page.fill("input[name='var-body.1-fallback']", "there")
    page.select_option("select[name='var-body.2-source']", "attribute")
    page.fill("input[name='var-body.2-field']", "order")
    expect(page.locator("#live-preview")).to_contain_text("1 recipient would get an empty value")
    expect(page.locator("#live-preview .wa-caption").first).to_have_text("To Asha Verma")
    expect(page.locator("#live-preview")).to_contain_text("Hi Asha Verma, your order #1042 has been shipped")
    screenshot(page, "campaign-composer-empty-values")

    page.fill("input[name='var-body.2-fallback']", "(your latest order)")
    expect(page.locator("#live-preview")).to_contain_text("Ready to launch")
    expect(page.locator("#live-preview")).to_contain_text("your order (your latest order) has been shipped")
    expect(page.locator("#estimated-cost")).to_have_text("₹0.23")  # 2 × ₹0.115 for a utility template
    screenshot(page, "campaign-composer")

    page.click("text=Save draft")
    expect(page.locator(".flash-success")).to_contain_text("Draft “Shipping update for VIPs” saved.")
    assert page.input_value("input[name='var-body.2-fallback']") == "(your latest order)"
    page.click("nav >> text=Campaigns")
    expect(page.locator("table")).to_contain_text("Shipping update for VIPs")
    expect(page.locator("table")).to_contain_text("Tagged VIP")
    screenshot(page, "campaign-list")
    assert page.js_errors == [], page.js_errors


def test_write_a_template_with_live_preview_and_submit_it(app, live_server, page, sim, background_worker, quick_user,
                                                         monkeypatch):
    sign_in(page, live_server, quick_user)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server}/templates/new")
    # The rules are checked as it is typed, with the sentences a submit would give, beside each field.
    page.fill("#name", "Back In Stock!")
    page.fill("#body", "{{1}}, the {{2}} you liked is back")
    expect(page.locator("#name-error")).to_have_text(
        "Use only lowercase letters, digits and underscores, e.g. diwali_offer_2025.")
    expect(page.locator("#body-error")).to_contain_text("The message can't start with a variable")
    expect(page.locator("#example-body-1-error")).to_be_empty()  # an example not typed yet is not an error yet
    shots(page, "template-new-live-check")
    page.fill("#name", "back_in_stock")
    expect(page.locator("#name-error")).to_be_empty()
    page.fill("#header_text", "Back in stock")
    page.fill("#body", "Hi {{1}}, the {{2}} you liked is back in stock. Reply YES to reserve one!")
    expect(page.locator("#body-error")).to_be_empty()
    expect(page.locator("#example-body\\.2")).to_be_visible()
    page.fill("#example-body\\.1", "Asha")
    expect(page.locator("#draft-preview .wa-body")).to_contain_text("Hi Asha, the {{2}} you liked")
    page.fill("#example-body\\.2", "blue kurta")
    page.click("text=+ Add button")
    page.fill("input[name=button_text]", "Reserve one")
    expect(page.locator("#draft-preview .wa-button")).to_contain_text("Reserve one")
    expect(page.locator("#draft-preview .wa-body")).to_contain_text("Hi Asha, the blue kurta you liked")
    expect(page.locator("#example-body\\.2")).to_have_value("blue kurta")  # typed while the check ran: kept
    shots(page, "template-new")

    page.click("text=Submit for review")
    expect(page.locator(".flash-success")).to_contain_text("Submitted “back_in_stock” to WhatsApp for review")
    expect(page.locator("#template-detail .badge").first).to_have_text("In review")
    assert sim.simulator.templates.get("back_in_stock", "en_US").data["status"] == "PENDING"
    shots(page, "template-in-review")
    post_template_verdict(app, monkeypatch, "back_in_stock")
    expect(page.locator("#template-detail .badge").first).to_have_text("Approved", timeout=12_000)  # no reload
    expect(page.locator("text=Use in a campaign")).to_be_visible()
    assert page.locator("#template-detail[hx-trigger]").count() == 0  # decided: the polling stopped
    assert page.js_errors == [], page.js_errors


def shots(page, name: str) -> None:
    """A desktop and a phone screenshot of the page as it is now."""
    screenshot(page, name)
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, f"{name}-phone")
    page.set_viewport_size({"width": 1366, "height": 900})


def test_repeat_weekly_with_an_end_date_and_the_errors_next_to_the_fields(live_server, page, sim, quick_user,
                                                                          make_template, make_contact):
    make_template()
    make_contact("+919876543210", "Asha Verma", attributes={"order": "#1042"})
    sign_in(page, live_server, quick_user)
    page.goto(f"{live_server}/campaigns/new")
    page.fill("#name", "Weekly restock")
    page.check("input[name=schedule_kind][value=cron]")
    expect(page.locator("#repeat_time")).to_be_visible()
    expect(page.locator("#repeat_weekday")).to_be_hidden()  # daily by default
    expect(page.locator("#cron")).to_be_hidden()
    page.check("input[name=repeat][value=weekly]")
    page.select_option("#repeat_weekday", "5")
    page.fill("#repeat_time", "18:30")
    expect(page.locator("#live-preview")).to_contain_text("Repeats; next runs Fri")
    page.fill("#ends_on", "2020-01-31")
    page.fill("#max_rate", "500")
    page.fill("#quiet_hours_start", "09:00")
    page.fill("#quiet_hours_end", "09:00")
    page.click("text=Save draft")

    expect(page.locator(".flash-error")).to_contain_text("The campaign was not saved")
    expect(page.locator("#ends_on + .field-error")).to_have_text(
        "That end date has already passed; choose a later date or leave it empty.")
    expect(page.locator("#max_rate + .field-error")).to_contain_text("between 0.1 and 80 (your number's sending rate)")
    expect(page.locator(".schedule-card")).to_contain_text("Quiet hours cannot start and end at the same time")
    expect(page.locator("#repeat_weekday")).to_have_value("5")  # what was typed is kept
    screenshot(page, "campaign-composer-schedule-errors")

    page.fill("#ends_on", "2099-12-31")
    page.fill("#max_rate", "")
    page.fill("#quiet_hours_end", "08:00")
    page.click("text=Save draft")
    expect(page.locator(".flash-success")).to_contain_text("Draft “Weekly restock” saved.")
    expect(page.locator("input[name=repeat][value=weekly]")).to_be_checked()
    expect(page.locator("#live-preview")).to_contain_text("none after 31 Dec 2099")
    screenshot(page, "campaign-composer-schedule")
    assert page.js_errors == [], page.js_errors
