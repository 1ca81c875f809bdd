"""`flask users …` commands."""

from app.extensions import db
from app.models import Role
from app.services.accounts import users


def test_create_user_with_generated_password(app):
    result = app.test_cli_runner().invoke(args=["users", "create", "Ops@Example.com", "--role", "admin",
                                                "--generate-password"])
    assert result.exit_code == 0, result.output
    password = result.output.split("Password: ")[1].strip()
    with app.app_context():
        user = users.authenticate("ops@example.com", password)
        assert user.role == Role.ADMIN


def test_create_user_asks_for_password(app):
    result = app.test_cli_runner().invoke(args=["users", "create", "staff@example.com"],
                                          input="a-long-password\na-long-password\n")
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert users.authenticate("staff@example.com", "a-long-password").role == Role.STAFF


def test_create_user_rejects_duplicates_and_short_passwords(app, make_user):
    existing = make_user()
    runner = app.test_cli_runner()
    duplicate = runner.invoke(args=["users", "create", existing.email, "--password", "long-enough-pw"])
    assert duplicate.exit_code != 0 and "already exists" in duplicate.output
    short = runner.invoke(args=["users", "create", "new@example.com", "--password", "short"])
    assert short.exit_code != 0 and "at least 10 characters" in short.output


def test_set_password(app, make_user):
    user = make_user()
    result = app.test_cli_runner().invoke(args=["users", "set-password", user.email, "--password", "brand-new-pass"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        users.authenticate(user.email, "brand-new-pass")


def test_set_password_for_unknown_user(app):
    result = app.test_cli_runner().invoke(args=["users", "set-password", "ghost@example.com", "--password", "x" * 12])
    assert result.exit_code != 0 and "No user" in result.output


def test_ensure_admin_generates_once(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["users", "ensure-admin", "--email", "boss@example.com"])
    assert "Created the first admin: boss@example.com" in first.output
    assert "Password: " in first.output
    second = runner.invoke(args=["users", "ensure-admin", "--email", "boss@example.com"])
    assert second.exit_code == 0 and second.output == ""
    with app.app_context():
        assert users.admin_count() == 1


def test_ensure_admin_uses_given_password(app):
    result = app.test_cli_runner().invoke(args=["users", "ensure-admin", "--email", "a@example.com",
                                                "--password", "given-password-1"])
    assert "Password:" not in result.output
    with app.app_context():
        assert users.authenticate("a@example.com", "given-password-1").is_admin
        db.session.remove()
