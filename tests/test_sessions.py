"""A session, and a "keep me signed in" cookie, ends at sign-out, password change, reset, deactivation and
"sign out everywhere", on every device it was copied to."""

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, Table, select

from app.extensions import db
from app.models import AuditEntry, Role, User
from tests.conftest import TEST_PASSWORD, AuthActions, csrf_token_from

BEFORE_SESSION_VERSIONS = "f3a1b2c4d5e6"


def _signed_in(client) -> bool:
    return client.get("/contacts/export.csv").status_code == 200


def _copy(app, client, *names: str):
    """Another browser holding copies of `names` cookies (a stolen cookie, or the same account on a laptop)."""
    other = app.test_client()
    for name in names:
        other.set_cookie(name, client.get_cookie(name).value)
    return other


def _token(client, path="/"):
    return csrf_token_from(client.get(path).get_data(as_text=True))


def _change_password(client, new="a-brand-new-password"):
    return client.post("/account/password", data={"csrf_token": _token(client, "/account/password"),
                                                   "current": TEST_PASSWORD, "new": new, "repeat": new})


def test_a_copied_session_cookie_is_refused_after_sign_out(app, client, auth, make_user):
    auth.login(make_user().email)
    copied = _copy(app, client, "session")
    assert _signed_in(copied)
    auth.logout()
    assert not _signed_in(copied) and not _signed_in(client)


def test_a_password_change_ends_other_sessions_and_remember_cookies_but_keeps_this_one(app, client, auth,
                                                                                        make_user):
    user = make_user()
    auth.login(user.email, remember=True)
    remembered = _copy(app, client, "remember_token")
    laptop = app.test_client()
    AuthActions(laptop).login(user.email)
    assert _signed_in(remembered) and _signed_in(laptop)
    assert _change_password(client).status_code == 302
    assert not _signed_in(remembered) and not _signed_in(laptop)
    assert _signed_in(client)
    assert _signed_in(_copy(app, client, "remember_token"))  # this device's cookie was renewed


def test_an_admins_reset_ends_the_users_sessions(app, admin_client, make_user):
    staff = make_user()
    phone = app.test_client()
    AuthActions(phone).login(staff.email, remember=True)
    remembered = _copy(app, phone, "remember_token")
    admin_client.post(f"/admin/users/{staff.id}/reset-password", data={"csrf_token": _token(admin_client)})
    assert not _signed_in(phone) and not _signed_in(remembered)


def test_deactivation_ends_the_users_sessions(app, admin_client, make_user):
    staff = make_user()
    phone = app.test_client()
    AuthActions(phone).login(staff.email, remember=True)
    remembered = _copy(app, phone, "remember_token")
    admin_client.post(f"/admin/users/{staff.id}/deactivate", data={"csrf_token": _token(admin_client)})
    assert not _signed_in(phone) and not _signed_in(remembered)


def test_sign_out_everywhere_from_the_account_page(app, client, auth, make_user):
    user = make_user(Role.ADMIN)
    auth.login(user.email)
    laptop = app.test_client()
    AuthActions(laptop).login(user.email, remember=True)
    remembered = _copy(app, laptop, "remember_token")
    page = client.get("/account/password").get_data(as_text=True)
    assert "Sign out everywhere" in page
    response = client.post("/account/sign-out-everywhere", data={"csrf_token": csrf_token_from(page)},
                           follow_redirects=True)
    assert "signed out on every device" in response.get_data(as_text=True)
    assert not _signed_in(client) and not _signed_in(laptop) and not _signed_in(remembered)


def test_a_session_from_before_session_versions_is_asked_to_sign_in_again(client, make_user):
    user = make_user()
    for identity in (str(user.id), f"{user.id}:x", "nonsense"):
        with client.session_transaction() as session:
            session["_user_id"] = identity
        assert client.get("/").status_code == 302


def test_keep_me_signed_in_lasts_30_days(auth, make_user):
    response = auth.login(make_user().email, remember=True)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("remember_token="))
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(hours=1)


def test_the_migration_keeps_users_and_what_refers_to_them(app):
    with app.app_context():
        db.session.remove()
        downgrade(revision=BEFORE_SESSION_VERSIONS)
        try:
            with db.engine.begin() as connection:
                users_table = Table("users", MetaData(), autoload_with=connection)
                audit_table = Table("audit_entries", MetaData(), autoload_with=connection)
                user_id = connection.execute(users_table.insert().values(
                    email="asha@example.com", password_hash="x", role="admin", active=True,
                    created_at=datetime.now(UTC))).inserted_primary_key[0]
                connection.execute(audit_table.insert().values(
                    created_at=datetime.now(UTC), user_id=user_id, actor="asha@example.com", action="auth.login",
                    summary="signed in", details={}))
            upgrade()
            version = db.session.scalar(select(User.session_version).where(User.id == user_id))
            audited = db.session.scalar(select(AuditEntry.user_id))
        finally:
            db.session.remove()
            upgrade()
    assert (version, audited) == (0, user_id)  # rebuilding users (SQLite) set no reference to NULL
