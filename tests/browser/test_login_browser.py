"""A real browser signs in through the login page and sees the dashboard."""

from app.models import Role
from tests.browser.conftest import screenshot, sign_in
from tests.conftest import TEST_PASSWORD


def test_sign_in_and_see_dashboard(live_server, page, make_user):
    admin = make_user(Role.ADMIN)
    page.goto(f"{live_server}/")
    assert page.url.startswith(f"{live_server}/login")
    screenshot(page, "login")

    page.fill("#email", "wrong@example.com")
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator(".flash-error").inner_text() == "Wrong email or password."

    page.fill("#email", admin.email)
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    assert page.locator("h1").inner_text() == "Dashboard"
    assert page.locator("text=System status").is_visible()
    # The status cards refresh over HTMX (with the CSRF header) without reloading the page.
    with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true" and r.status == 200,
                              timeout=8000) as refresh:
        pass
    assert refresh.value.request.headers.get("x-csrftoken")
    screenshot(page, "dashboard")
    assert page.js_errors == [], page.js_errors  # nothing blocked by the Content-Security-Policy


def test_sign_out_from_the_user_menu(live_server, page, make_user):
    user = make_user(Role.STAFF)
    sign_in(page, live_server, user.email)
    assert not page.locator("a[href='/admin/users']").count()  # staff see no admin navigation
    page.click(".usermenu summary")
    page.click("text=Sign out")
    page.wait_for_url(f"{live_server}/login")
    assert "You have been signed out." in page.content()


def test_phone_layout_has_no_horizontal_scroll(live_server, browser, make_user):
    user = make_user(Role.ADMIN)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(f"{live_server}/login")
    page.fill("#email", user.email)
    page.fill("#password", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/")
    width = page.evaluate("document.documentElement.scrollWidth")
    screenshot(page, "dashboard-phone")
    context.close()
    assert width <= 390
