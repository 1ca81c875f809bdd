"""Contacts in a real browser: live search, URL state, bulk tagging."""

from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import screenshot, sign_in


def test_live_search_keeps_state_in_url_and_bulk_tags(live_server, page, make_user, make_contact):
    make_contact("+919876543210", "Asha Verma", tags=["VIP"], attributes={"city": "Mumbai"})
    make_contact("+919812345678", "Ravi Kumar", tags=["Delhi"])
    make_contact("+447911123456", "Sita Ram")
    sign_in(page, live_server, make_user(Role.STAFF).email)

    page.click("nav >> text=Contacts")
    page.wait_for_selector("text=Ravi Kumar")
    expect(page.locator("#match-count")).to_have_text("3 contacts match")
    screenshot(page, "contacts-list")

    page.fill("#q", "098123 45678")  # the way a person in India would type it
    expect(page.locator("#contact-results")).not_to_contain_text("Asha")
    assert page.locator("#contact-results").inner_text().count("Ravi Kumar") == 1
    assert "q=098123" in page.url  # the search is in the address bar

    page.reload()
    assert page.input_value("#q") == "098123 45678"
    assert "Asha Verma" not in page.locator("#contact-results").inner_text()

    page.check("input[aria-label='Select +91 98123 45678']")
    page.select_option("#bulk-action", "add_tag")
    page.fill("#bulk-tag", "Diwali")
    page.click("text=Apply to selected")
    page.wait_for_selector("text=Tag added: 1 contact changed.")
    assert "Diwali" in page.locator("#contact-results").inner_text()
    screenshot(page, "contacts-bulk-tagged")
    assert page.js_errors == [], page.js_errors


def test_contact_page_and_edit_form(live_server, page, make_user, make_contact):
    contact_id = make_contact("+919876543210", "Asha Verma", tags=["VIP"], attributes={"city": "Mumbai"})
    sign_in(page, live_server, make_user(Role.STAFF).email)
    page.goto(f"{live_server}/contacts/{contact_id}")
    assert page.locator("h1").inner_text() == "Asha Verma"
    page.click("text=Opt out")
    page.wait_for_selector("text=by a member of staff")
    screenshot(page, "contact-detail")
    page.click("text=Edit")
    page.fill("#phone", "12")
    page.click("text=Save changes")
    page.wait_for_selector(".flash-error")
    assert "12 has 2 digits; mobile numbers in India have 10" in page.locator(".flash-error").inner_text()
    screenshot(page, "contact-edit-error")
