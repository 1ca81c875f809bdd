"""Admin pages in a real browser: the admin menu, settings with test connection, system, users."""

from playwright.sync_api import expect

from app.models import Role
from app.whatsapp.sim_config import SimulatorConfig
from app.whatsapp.sim_server import SimulatorServer
from app.whatsapp.simulator import create_simulator
from tests.browser.conftest import screenshot, sign_in


def test_admin_menu_settings_connection_and_system(app, live_server, page, make_user):
    server = SimulatorServer(create_simulator(SimulatorConfig(access_token="tok")), "127.0.0.1", 0).start()
    app.config.update(WHATSAPP_API_BASE_URL=server.url, WHATSAPP_ACCESS_TOKEN="tok",
                      WHATSAPP_PHONE_NUMBER_ID="106540352242922", WHATSAPP_BUSINESS_ACCOUNT_ID="102290129340398")
    try:
        admin = make_user(Role.ADMIN)
        sign_in(page, live_server, admin.email)

        page.click("summary:has-text('Admin')")
        page.click(".navmenu >> text=Settings")
        page.wait_for_url(f"{live_server}/admin/settings")
        page.click("text=Test connection")
        expect(page.locator("#connection-result")).to_contain_text("Connected")
        page.fill("#default_region", "ZZ")
        page.click("text=Save settings")
        expect(page.locator(".field-error").first).to_contain_text("two-letter country code")
        screenshot(page, "admin-settings")

        page.click("summary:has-text('Admin')")
        page.click(".navmenu >> text=System")
        expect(page.locator("h2", has_text="Workers")).to_be_visible()
        screenshot(page, "admin-system")

        page.click("summary:has-text('Admin')")
        page.click(".navmenu >> text=Users")
        page.fill("#invite-email", "new.person@example.com")
        page.click("text=Create user")
        expect(page.locator("#new-password")).to_be_visible()
        page.click("summary:has-text('Admin')")
        page.click(".navmenu >> text=Audit log")
        screenshot(page, "admin-audit")
        expect(page.locator("#audit-results")).to_contain_text("Created staff new.person@example.com")
        screenshot(page, "admin-audit")
        assert page.js_errors == [], page.js_errors
    finally:
        server.shutdown()
