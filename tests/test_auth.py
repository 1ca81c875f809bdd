"""Signing in and out."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Role
from tests.conftest import TEST_PASSWORD, csrf_token_from


def test_login_page_renders(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert "Sign in" in response.get_data(as_text=True)


def test_login_then_dashboard_then_logout(client, auth, make_user):
    user = make_user(Role.STAFF)
    response = auth.login(user.email)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert user.email in client.get("/").get_data(as_text=True)

    response = auth.logout()
    assert response.headers["Location"] == "/login"
    assert client.get("/").headers["Location"].startswith("/login")


def _greeting(client) -> str:
    html = client.get("/").get_data(as_text=True)
    return html.split('id="greeting">', 1)[1].split("</p>", 1)[0]


def test_the_first_sign_in_ever_says_welcome_and_later_ones_welcome_back(app, client, auth, make_user):
    user = make_user(Role.STAFF)
    auth.login(user.email)
    assert _greeting(client) == f"Welcome, {user.email}."
    assert _greeting(client) == f"Welcome, {user.email}."  # for the whole of that first visit
    auth.logout()
    auth.login(user.email)
    assert _greeting(client) == f"Welcome back, {user.email}."
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "auth.login")) == 2


def test_a_failed_sign_in_does_not_use_up_the_first_welcome(client, auth, make_user):
    user = make_user(Role.STAFF)
    auth.login(user.email, "not-the-password")
    auth.login(user.email)
    assert _greeting(client) == f"Welcome, {user.email}."


def test_a_form_token_from_before_sign_in_stops_working_after_it(client, make_user):
    user = make_user()
    before = csrf_token_from(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": before})
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    assert client.get("/").status_code == 200  # still signed in


def test_a_form_token_from_before_sign_out_stops_working_after_it(client, auth, make_user):
    user = make_user()
    auth.login(user.email)
    signed_in = csrf_token_from(client.get("/").get_data(as_text=True))
    auth.logout()
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": signed_in})
    assert response.status_code == 400


def test_email_is_case_insensitive(client, auth, make_user):
    user = make_user()
    assert auth.login(user.email.upper()).status_code == 302


def test_wrong_password_shows_message(auth, make_user):
    user = make_user()
    response = auth.login(user.email, "not-the-password")
    assert response.status_code == 200
    assert "Wrong email or password." in response.get_data(as_text=True)


def test_unknown_email_gets_the_same_message(auth):
    response = auth.login("nobody@example.com", TEST_PASSWORD)
    assert "Wrong email or password." in response.get_data(as_text=True)


def test_an_overlong_email_is_refused_before_anything_is_recorded(app, client):
    email = "a" * 200_000 + "@example.com"
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": email, "password": "whatever-it-is", "csrf_token": token})
    assert response.status_code == 200 and "too long for an email address" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_inactive_user_cannot_log_in(client, auth, make_user):
    user = make_user(active=False)
    response = auth.login(user.email)
    assert response.status_code == 200
    assert "deactivated" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_redirects_to_next_page_but_not_offsite(client, auth, make_user):
    user = make_user(Role.ADMIN)
    token_page = client.get("/login?next=/admin/users")
    assert token_page.status_code == 200
    token = csrf_token_from(token_page.get_data(as_text=True))
    response = client.post("/login?next=/admin/users",
                           data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/admin/users"
    auth.logout()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=//evil.example/x",
                           data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/contacts%0D%0ASet-Cookie:%20x=1", "/contacts%0A"])
def test_login_ignores_a_next_page_with_a_line_break(client, make_user, target):
    user = make_user()
    token = csrf_token_from(client.get("/login").get_data(as_text=True))
    response = client.post(f"/login?next={target}",
                           data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_remember_me_sets_a_persistent_cookie(client, auth, make_user):
    response = auth.login(make_user().email, remember=True)
    cookies = response.headers.getlist("Set-Cookie")
    remember = [c for c in cookies if c.startswith("remember_token=")]
    assert remember and "HttpOnly" in remember[0] and "Expires=" in remember[0]


def test_session_cookie_is_httponly_and_lax(auth, make_user):
    response = auth.login(make_user().email)
    session_cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie


def test_login_is_rate_limited_per_account(app, client, auth, make_user):
    user = make_user()
    for _ in range(app.config["LOGIN_MAX_ATTEMPTS_PER_ACCOUNT"]):
        assert "Wrong email or password." in auth.login(user.email, "wrong-password").get_data(as_text=True)
    response = auth.login(user.email)  # even the right password is refused while locked
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_is_rate_limited_per_ip(app, auth, make_user):
    app.config["LOGIN_MAX_ATTEMPTS_PER_IP"] = 3
    victim = make_user()
    for number in range(3):
        auth.login(f"guess{number}@example.com", "wrong-password")
    response = auth.login(victim.email)
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)


def test_parallel_guesses_never_get_past_the_limit(app, make_user):
    """The limit holds when guesses arrive together: each is counted before its password is checked."""
    user = make_user()
    guesses = 40
    clients = [app.test_client() for _ in range(guesses)]
    tokens = [csrf_token_from(each.get("/login").get_data(as_text=True)) for each in clients]
    start = threading.Barrier(guesses)

    def guess(number: int) -> str:
        start.wait()
        return clients[number].post("/login", data={"email": user.email, "password": f"wrong-{number}",
                                                    "csrf_token": tokens[number]}).get_data(as_text=True)

    with ThreadPoolExecutor(guesses) as pool:
        pages = list(pool.map(guess, range(guesses)))
    checked = sum("Wrong email or password." in page for page in pages)
    assert checked == app.config["LOGIN_MAX_ATTEMPTS_PER_ACCOUNT"]
    assert sum("Too many failed sign-in attempts" in page for page in pages) == guesses - checked


def test_successful_sign_ins_do_not_use_up_the_ip_limit(app, auth, make_user):
    app.config["LOGIN_MAX_ATTEMPTS_PER_IP"] = 3
    user = make_user()
    for _ in range(5):  # an office behind one address signs in all morning
        assert auth.login(user.email).status_code == 302
        auth.logout()


def test_successful_login_resets_the_account_counter(app, auth, make_user):
    user = make_user()
    limit = app.config["LOGIN_MAX_ATTEMPTS_PER_ACCOUNT"]
    for _ in range(limit - 1):
        auth.login(user.email, "wrong-password")
    assert auth.login(user.email).status_code == 302
    auth.logout()
    for _ in range(limit - 1):
        auth.login(user.email, "wrong-password")
    assert auth.login(user.email).status_code == 302
