"""On a 390 × 844 phone: nothing spills sideways, table rows become cards, the menu folds behind a button,
and phone numbers read as people write them."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from app.models import Role
from tests.browser.conftest import screenshot, sign_in
from tests.factories import analytics as data

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone_page(browser):
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    yield page
    context.close()


def _campaign_with_failures(app, make_contact) -> int:
    asha = make_contact("+919876543210", "Asha Verma", tags=["VIP", "Mumbai", "Diwali 2025", "Wholesale"])
    others = data.add_contacts(app, 5)
    at = datetime.now(UTC) - timedelta(hours=1)
    campaign_id = data.make_campaign(app, name="Diwali offer 2026", started_at=at, finished_at=at)
    data.add_messages(app, campaign_id, [asha, *others[:2]], "delivered", at)
    data.add_messages(app, campaign_id, others[2:4], "failed", at, error_code=131026)
    data.add_messages(app, campaign_id, others[4:], "failed", at, error_code=131049)
    return campaign_id


def _fits_the_screen(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width} px wide"


def test_pages_fit_a_phone_and_the_menu_opens(app, live_server, phone_page, make_user, make_contact):
    campaign_id = _campaign_with_failures(app, make_contact)
    page = phone_page
    sign_in(page, live_server, make_user(Role.STAFF).email)

    pages = {"contacts": "/contacts/", "messages": "/messages/", "campaign": f"/campaigns/{campaign_id}"}
    for name, path in pages.items():
        page.goto(live_server + path)
        page.wait_for_load_state("networkidle")
        _fits_the_screen(page)
        screenshot(page, f"phone-{name}")

    # The campaign page with failures: the explanation table is a stack of cards inside the progress card.
    failures = page.locator(".run-failures tbody tr")
    expect(failures).to_have_count(2)
    card = page.locator("#campaign-progress").bounding_box()
    row = failures.first.bounding_box()
    assert row["x"] >= card["x"] and row["x"] + row["width"] <= card["x"] + card["width"]

    page.goto(f"{live_server}/contacts/")
    asha = page.locator("tr", has_text="Asha Verma")
    expect(asha).to_contain_text("+91 98765 43210")
    tags = asha.locator("[data-label=Tags]")
    expect(tags).to_be_visible()
    box = tags.bounding_box()
    assert box["x"] + box["width"] <= PHONE["width"]  # reachable without a sideways swipe
    assert asha.bounding_box()["height"] < 260  # four tags wrap in one cell, not one chip per line

    menu, links = page.locator("button.menu-toggle"), page.locator("#mainnav")
    expect(links).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    assert page.locator(".topbar").bounding_box()["height"] < 70
    menu.click()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(links.get_by_role("link", name="Messages")).to_be_visible()
    screenshot(page, "phone-menu-open")
    page.keyboard.press("Escape")
    expect(links).to_be_hidden()
    expect(menu).to_have_attribute("aria-expanded", "false")
    menu.click()
    links.get_by_role("link", name="Messages").click()
    page.wait_for_url(f"{live_server}/messages/")
    expect(page.locator(".message-table")).to_contain_text("+91 98765 43210")
    assert page.js_errors == [], page.js_errors


def test_desktop_shows_the_links_and_the_table(app, live_server, page, make_user, make_contact):
    make_contact("+919876543210", "Asha Verma", tags=["VIP"])
    sign_in(page, live_server, make_user(Role.STAFF).email)
    page.goto(f"{live_server}/contacts/")
    expect(page.locator("button.menu-toggle")).to_be_hidden()
    expect(page.locator("#mainnav").get_by_role("link", name="Messages")).to_be_visible()
    expect(page.locator(".contacts-table thead")).to_be_visible()
    expect(page.locator(".contacts-table")).to_contain_text("+91 98765 43210")
