"""Administration: users, the last-admin guard, own password, settings, audit log."""

import re

import pytest

from app.extensions import db
from app.models import AuditEntry, Role, Setting
from app.services.accounts import users
from app.services.admin import audit, settings
from tests.conftest import csrf_token_from

ADMIN_POSTS = ["/admin/users", "/admin/users/1/role", "/admin/users/1/deactivate", "/admin/users/1/reset-password",
               "/admin/settings", "/admin/settings/test-connection", "/admin/system/jobs/x/retry",
               "/admin/system/jobs/x/discard", "/admin/webhook-events/1/reprocess", "/admin/account-problems/1/dismiss"]


def _token(client, path="/"):
    return csrf_token_from(client.get(path).get_data(as_text=True))


def _audit(app, action=None):
    with app.app_context():
        statement = db.select(AuditEntry).order_by(AuditEntry.id)
        if action:
            statement = statement.where(AuditEntry.action == action)
        return [(entry.action, entry.actor, entry.summary) for entry in db.session.scalars(statement)]


@pytest.mark.parametrize("path", ADMIN_POSTS)
def test_staff_cannot_post_to_admin_actions(staff_client, path):
    assert staff_client.post(path, data={"csrf_token": _token(staff_client)}).status_code == 403


def test_admin_creates_a_user_and_sees_the_password_once(app, admin_client):
    response = admin_client.post("/admin/users", data={"csrf_token": _token(admin_client), "email": "New@Shop.in",
                                                       "role": "staff"})
    html = response.get_data(as_text=True)
    password = re.search(r'id="new-password">([^<]+)<', html).group(1)
    assert response.headers["Cache-Control"] == "no-store"  # never kept by the browser or a proxy
    with app.app_context():
        assert users.authenticate("new@shop.in", password).role == Role.STAFF
    assert ("user.create", "admin1@example.com", "Created staff new@shop.in") in _audit(app)


def test_creating_a_duplicate_user_explains(admin_client, make_user):
    existing = make_user()
    response = admin_client.post("/admin/users", data={"csrf_token": _token(admin_client), "email": existing.email,
                                                       "role": "staff"})
    assert response.status_code == 422 and "already exists" in response.get_data(as_text=True)


def test_last_admin_cannot_be_demoted_or_deactivated(app, client, auth, make_user):
    admin = make_user(Role.ADMIN)
    auth.login(admin.email)
    token = _token(client)
    attempts = [(f"/admin/users/{admin.id}/role", {"role": "staff"}), (f"/admin/users/{admin.id}/deactivate", {})]
    for path, data in attempts:
        response = client.post(path, data={"csrf_token": token, **data}, follow_redirects=True)
        assert "This is the last active admin" in response.get_data(as_text=True)
    with app.app_context():
        assert users.admin_count() == 1


def test_second_admin_makes_demotion_possible(app, admin_client, make_user):
    other = make_user(Role.ADMIN)
    token = _token(admin_client)
    admin_client.post(f"/admin/users/{other.id}/role", data={"csrf_token": token, "role": "staff"})
    with app.app_context():
        assert users.find_by_email(other.email).role == Role.STAFF
    assert _audit(app, "user.role")


def test_deactivated_user_is_signed_out_and_cannot_sign_in(app, admin_client, make_user):
    staff = make_user()
    admin_client.post(f"/admin/users/{staff.id}/deactivate", data={"csrf_token": _token(admin_client)})
    other = app.test_client()
    from tests.conftest import AuthActions

    response = AuthActions(other).login(staff.email)
    assert "deactivated" in response.get_data(as_text=True)


def test_reset_password_shows_a_new_one(app, admin_client, make_user):
    staff = make_user()
    response = admin_client.post(f"/admin/users/{staff.id}/reset-password", data={"csrf_token": _token(admin_client)})
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    password = re.search(r'id="new-password">([^<]+)<', html).group(1)
    with app.app_context():
        users.authenticate(staff.email, password)


def test_user_changes_own_password(app, staff_client):
    token = _token(staff_client, "/account/password")
    wrong = staff_client.post("/account/password", data={"csrf_token": token, "current": "nope", "new": "x" * 12,
                                                         "repeat": "x" * 12})
    assert wrong.status_code == 422 and "current password is not right" in wrong.get_data(as_text=True)
    mismatch = staff_client.post("/account/password", data={"csrf_token": token, "current": "correct-horse-battery",
                                                            "new": "x" * 12, "repeat": "y" * 12})
    assert "do not match" in mismatch.get_data(as_text=True)
    ok = staff_client.post("/account/password", data={"csrf_token": token, "current": "correct-horse-battery",
                                                      "new": "a-new-long-password", "repeat": "a-new-long-password"})
    assert ok.status_code == 302
    with app.app_context():
        users.authenticate("staff1@example.com", "a-new-long-password")


def test_settings_page_shows_secrets_only_as_configured_or_missing(app, admin_client):
    app.config["WHATSAPP_APP_SECRET"] = "super-secret-value"
    html = admin_client.get("/admin/settings").get_data(as_text=True)
    assert "super-secret-value" not in html
    assert re.search(r"WHATSAPP_APP_SECRET</span><span class=\"badge badge-ok\">configured", html)


def test_settings_are_validated_and_nothing_is_saved_on_error(app, admin_client):
    token = _token(admin_client, "/admin/settings")
    response = admin_client.post("/admin/settings", data={
        "csrf_token": token, "default_region": "XX", "timezone": "Mars/Base", "quiet_hours_start": "25:00",
        "opt_out_keywords": "STOP", "retention_audit_days": "-1", "price_table": "MARKETING = lots"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    for message in ["two-letter country code", "timezone name", "HH:MM", "whole number of days", "MARKETING = 0.78"]:
        assert message in html
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Setting)) == 0


def test_settings_save_apply_and_are_audited(app, admin_client):
    token = _token(admin_client, "/admin/settings")
    response = admin_client.post("/admin/settings", data={
        "csrf_token": token, "default_region": "ae", "timezone": "Asia/Dubai",
        "opt_out_keywords": "stop\nरोकें\n  STOP  \nband karo", "price_table": "MARKETING = 1.5\nUTILITY=0.2"})
    assert response.status_code == 302
    with app.test_request_context():
        assert settings.get("default_region") == "AE"
        assert settings.get("opt_out_keywords") == ["STOP", "रोकें", "BAND KARO"]
        assert settings.get("price_table") == {"MARKETING": 1.5, "UTILITY": 0.2}
        assert settings.get("quiet_hours_start") == "21:00"  # untouched settings keep their default
    assert _audit(app, "settings.change")[0][2].startswith("Changed settings: Default country, Timezone")
    # The new default country is used when a number is typed without a country code.
    add = admin_client.post("/contacts/new", data={"csrf_token": token, "phone": "050 123 4567"},
                            follow_redirects=True)
    assert "+971501234567" in add.get_data(as_text=True)


def test_audit_entries_are_cut_to_their_columns_whatever_the_caller_passes(app):
    with app.test_request_context(environ_base={"REMOTE_ADDR": "1" * 1000}):
        audit.record("auth.login_failed", "s" * 10_000, target="t" * 10_000, actor="a" * 10_000)
        db.session.commit()
    with app.app_context():
        entry = db.session.scalar(db.select(AuditEntry))
        lengths = (len(entry.summary), len(entry.target), len(entry.actor), len(entry.ip_address))
    assert lengths == (500, 255, 255, 64)


def test_audit_log_records_sign_in_and_staff_opt_out(app, client, auth, make_user, make_contact):
    admin = make_user(Role.ADMIN)
    auth.login(admin.email, "wrong-password")
    auth.login(admin.email)
    contact_id = make_contact("+919876543210", "Asha")
    client.post(f"/contacts/{contact_id}/opt-out", data={"csrf_token": _token(client)})
    actions = [action for action, *_ in _audit(app)]
    assert actions == ["auth.login_failed", "auth.login", "contact.opt_out"]
    html = client.get("/admin/audit?q=919876543210").get_data(as_text=True)
    assert "Opted out +919876543210" in html and "signed in" not in html
    fragment = client.get("/admin/audit?action=auth.login", headers={"HX-Request": "true",
                                                                     "HX-Target": "audit-results"})
    assert "<html" not in fragment.get_data(as_text=True) and "signed in" in fragment.get_data(as_text=True)
