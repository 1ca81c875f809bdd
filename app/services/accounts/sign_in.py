"""Signing in: throttling, authentication and the audit trail in one place."""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import utcnow
from app.extensions import db
from app.models import User
from app.services.accounts import login_throttle, users
from app.services.admin import audit


@dataclass(frozen=True)
class SignedIn:
    user: User
    first_time: bool  # the user's first sign-in ever: the dashboard greets them with "Welcome", not "Welcome back"


def sign_in(email: str, password: str, ip: str) -> SignedIn:
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
    first_time, user.last_login_at = user.last_login_at is None, utcnow()
    audit.record("auth.login", f"{user.email} signed in", target=user.email, actor=user.email, user_id=user.id)
    db.session.commit()
    return SignedIn(user, first_time)


def signed_in_user(login_id: str) -> User | None:
    """The user a session or remember cookie names ("user id:session version"), unless that session has ended."""
    user_id, _, version = login_id.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None  # also a cookie from before session versions: its holder signs in again
    user = db.session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def sign_out(user: User) -> None:
    """End the session, and every copy of it: the session version goes up, so this user's other sessions end too."""
    user.end_sessions()
    audit.record("auth.logout", f"{user.email} signed out", target=user.email, actor=user.email, user_id=user.id)
    db.session.commit()


def sign_out_everywhere(user: User) -> None:
    """End every session and remember cookie of this user, on every device."""
    user.end_sessions()
    audit.record("auth.logout_everywhere", f"{user.email} signed out on every device", target=user.email,
                 actor=user.email, user_id=user.id)
    db.session.commit()
