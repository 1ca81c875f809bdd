"""Outbound webhooks in a real browser: add an endpoint, send a test event, watch it arrive in the delivery log,
delete the endpoint after the confirm dialog."""

from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import screenshot, sign_in
from tests.factories import outbound

receiver = outbound.receiver  # fixture


def test_add_an_endpoint_and_see_a_delivery_in_its_log(app, live_server, page, make_user, receiver,
                                                       background_worker):
    sign_in(page, live_server, make_user(Role.ADMIN).email)
    page.click("summary:has-text('Admin')")
    page.click(".navmenu >> text=Outbound webhooks")
    expect(page.locator("h1")).to_have_text("Outbound webhooks")

    page.fill("#url", "ftp://example.com/hooks")
    page.check("input[value='message.delivered']")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator(".field-error")).to_contain_text("must start with http:// or https://")

    page.fill("#url", receiver.url)
    page.check("input[value='contact.opted_out']")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator(".flash-success")).to_contain_text("Added the endpoint")
    page.click("summary:has-text('Show the signing secret')")
    receiver.secret = page.locator("#endpoint-secret").inner_text()

    page.get_by_role("button", name="Send a test event").click()
    log = page.locator("#delivery-log")
    expect(log).to_contain_text("delivered", timeout=15_000)  # the log refreshes itself until then
    expect(log).to_contain_text("200")
    [got] = receiver.received
    assert got.signature_ok and got.json["type"] == "ping"
    screenshot(page, "outbound-webhook-endpoint")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete endpoint").click()
    expect(page.locator(".flash-success")).to_contain_text("Deleted the endpoint")
    expect(page.locator("table")).to_contain_text("No endpoints yet")
    assert page.js_errors == [], page.js_errors
