"""API keys in a real browser: an admin creates a key from the admin menu, uses it, and revokes it."""

from pathlib import Path

import requests
from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import screenshot, sign_in

SHOTS = Path("/tmp/shots-apikeys")


def _shot(page, name: str, full_page: bool = True) -> None:
    screenshot(page, name)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def test_create_use_and_revoke_a_key(app, live_server, page, make_user):
    page.set_viewport_size({"width": 1366, "height": 900})
    admin = make_user(Role.ADMIN)
    sign_in(page, live_server, admin.email)
    page.click("summary:has-text('Admin')")
    page.click(".navmenu >> text=API keys")
    page.wait_for_url(f"{live_server}/admin/api-keys")
    expect(page.get_by_text("No keys yet.")).to_be_visible()

    page.click("text=Create key")  # nothing filled in: the page says what is missing
    expect(page.locator(".field-error")).to_contain_text("Give the key a name")
    page.fill("#key-name", "Shop orders")
    page.check("input[value='messages:write']")
    page.check("input[value='contacts:read']")
    _shot(page, "api-keys-form")
    page.click("text=Create key")
    secret = page.locator("#new-api-key").inner_text().strip()
    assert secret.startswith("bk_")
    _shot(page, "api-key-created")

    answer = requests.get(f"{live_server}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert answer.status_code == 200 and answer.json()["scopes"] == ["contacts:read", "messages:write"]

    page.click("text=Back to API keys")
    row = page.locator("tr", has_text="Shop orders")
    expect(row).to_contain_text("active")
    expect(page.locator("body")).not_to_contain_text(secret)
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".flash, [role=status], body").first).to_contain_text("Revoked “Shop orders”")
    expect(page.locator("tr", has_text="Shop orders")).to_contain_text("revoked")
    _shot(page, "api-keys-revoked")
    answer = requests.get(f"{live_server}/api/v1/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert answer.status_code == 401 and answer.headers["Content-Type"] == "application/problem+json"

    page.click("summary:has-text('Admin')")
    page.click(".navmenu >> text=Audit log")
    expect(page.locator("#audit-results")).to_contain_text("Revoked API key “Shop orders”")

    page.goto(f"{live_server}/api-reference")
    messages = page.locator("h3", has_text="POST /api/v1/messages")
    expect(messages).to_be_visible()
    _shot(page, "api-reference-top", full_page=False)
    messages.scroll_into_view_if_needed()
    _shot(page, "api-reference-messages", full_page=False)
    page.set_viewport_size({"width": 390, "height": 844})
    messages.scroll_into_view_if_needed()
    _shot(page, "api-reference-phone", full_page=False)
    page.goto(f"{live_server}/admin/api-keys")
    _shot(page, "api-keys-phone")
    assert page.js_errors == [], page.js_errors
