"""What a new password must be, and how many guesses at the current one the account page allows."""

import pytest

from tests.conftest import TEST_PASSWORD, AuthActions, csrf_token_from


def _change(client, current=TEST_PASSWORD, new="a-brand-new-password", repeat=None):
    token = csrf_token_from(client.get("/account/password").get_data(as_text=True))
    return client.post("/account/password", data={"csrf_token": token, "current": current, "new": new,
                                                   "repeat": new if repeat is None else repeat})


@pytest.mark.parametrize(("new", "message"), [
    ("too-short", "at least 10 characters"),
    ("x" * 129, "too long"),
    ("aaaaaaaaaa", "one of the most common passwords"),
    ("Password123", "one of the most common passwords"),  # the list is compared without regard to case
    ("abababababab", "only a few different characters"),
    (TEST_PASSWORD, "That is already your password"),
])
def test_a_weak_new_password_is_refused_with_a_reason(staff_client, new, message):
    response = _change(staff_client, new=new)
    assert response.status_code == 422 and message in response.get_data(as_text=True)


def test_a_long_passphrase_is_fine(staff_client):
    assert _change(staff_client, new="the kettle is on and the cat is asleep " * 3).status_code == 302


def test_the_cli_refuses_a_common_password_too(app):
    result = app.test_cli_runner().invoke(args=["users", "create", "new@example.com", "--password", "1234567890"])
    assert result.exit_code != 0 and "one of the most common passwords" in result.output


def test_wrong_current_passwords_are_throttled_like_sign_ins(app, client, make_user):
    user = make_user()
    AuthActions(client).login(user.email)
    for number in range(app.config["LOGIN_MAX_ATTEMPTS_PER_ACCOUNT"]):
        assert "current password is not right" in _change(client, current=f"guess-{number}").get_data(as_text=True)
    response = _change(client)  # even the right one, while locked
    assert response.status_code == 422 and "Too many wrong passwords" in response.get_data(as_text=True)
    elsewhere = AuthActions(app.test_client()).login(user.email)
    assert "Too many failed sign-in attempts" in elsewhere.get_data(as_text=True)
