"""Signing in: throttling, authentication and the audit trail in one place."""

from __future__ import annotations

from app.extensions import db
from app.models import User
from app.services.accounts import login_throttle, users
from app.services.admin import audit


def sign_in(email: str, password: str, ip: str) -> User:
    """The user for valid credentials; raises LoginThrottled or InvalidCredentials with a message to show."""
    email = users.normalise_email(email)
    login_throttle.count_attempt(ip, email)
    try:
        user = users.authenticate(email, password)
    except users.InvalidCredentials as error:
        audit.record("auth.login_failed", f"Failed sign-in for {email}: {error.message}", target=email,
                     actor=email)
        db.session.commit()
        raise
    login_throttle.forgive(ip, email)
    audit.record("auth.login", f"{user.email} signed in", target=user.email, actor=user.email, user_id=user.id)
    db.session.commit()
    return user


def sign_out(user: User) -> None:
    audit.record("auth.logout", f"{user.email} signed out", target=user.email, actor=user.email, user_id=user.id)
    db.session.commit()
