"""Users: creation, passwords and authentication."""

from __future__ import annotations

import re
import secrets
from functools import cache

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import Role, User
from app.services.accounts import login_throttle, password_rules
from app.services.admin import audit
from app.services.errors import NotFound, ServiceError

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidCredentials(ServiceError):
    pass


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(email: str, password: str, role: str = Role.STAFF) -> User:
    """Create an active user; raises ServiceError for a bad email, role, password or a duplicate."""
    email = normalise_email(email)
    if not EMAIL_PATTERN.match(email):
        raise ServiceError("Enter a valid email address.", field="email")
    if role not in {r.value for r in Role}:
        raise ServiceError("Role must be admin or staff.", field="role")
    password_rules.check(password)
    if find_by_email(email):
        raise ServiceError(f"A user with email {email} already exists.", field="email")
    user = User(email=email, role=role, active=True)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


def set_password(email: str, password: str) -> User:
    """Replace a user's password and end their sessions."""
    user = find_by_email(email)
    if user is None:
        raise NotFound(f"No user with email {normalise_email(email)}.")
    password_rules.check(password)
    user.set_password(password)
    user.end_sessions()
    db.session.commit()
    return user


def authenticate(email: str, password: str) -> User:
    """Return the user for valid credentials of an active account, else raise InvalidCredentials."""
    user = find_by_email(email)
    # Hash even for unknown emails so response time does not reveal which accounts exist.
    valid = user.check_password(password) if user else _burn_hash_time(password)
    if not valid:
        raise InvalidCredentials("Wrong email or password.")
    if not user.active:
        raise InvalidCredentials("This account has been deactivated. Ask an administrator to reactivate it.")
    return user


@cache
def _dummy_hash() -> str:
    return generate_password_hash("timing-equaliser", method="scrypt")


def _burn_hash_time(password: str) -> bool:
    check_password_hash(_dummy_hash(), password)
    return False


def admin_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User).where(User.role == Role.ADMIN, User.active))


def ensure_first_admin(email: str | None, password: str | None) -> tuple[User, str | None] | None:
    """Create the first admin if none exists; returns (user, generated password or None), or None if one exists."""
    if admin_count():
        return None
    generated = None
    if not password:
        password = generated = generate_password()
    user = create_user(email or "admin@example.com", password, Role.ADMIN)
    return user, generated


def list_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.email)))


def _get(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("That user does not exist.")
    return user


def _guard_last_admin(user: User, becomes_admin: bool, stays_active: bool) -> None:
    """Someone must always be able to administer Broadcaster."""
    if user.is_admin and user.active and not (becomes_admin and stays_active) and admin_count() <= 1:
        raise ServiceError("This is the last active admin. Make someone else an admin first.")


def _check_current_password(user: User, current: str, ip: str) -> None:
    try:
        login_throttle.count_attempt(ip, user.email)
    except login_throttle.LoginThrottled as error:
        raise ServiceError(f"Too many wrong passwords. Please try again in {error.wait}.", field="current") from None
    if not user.check_password(current):
        raise ServiceError("Your current password is not right.", field="current")
    login_throttle.forgive(ip, user.email)


def invite(email: str, role: str) -> tuple[User, str]:
    """Create a user with a generated password that the admin passes on; returns (user, password)."""
    password = generate_password()
    user = create_user(email, password, role)
    audit.record("user.create", f"Created {role} {user.email}", target=user.email)
    db.session.commit()
    return user, password


def change_role(user_id: int, role: str) -> User:
    user = _get(user_id)
    if role not in {r.value for r in Role}:
        raise ServiceError("Role must be admin or staff.")
    _guard_last_admin(user, becomes_admin=role == Role.ADMIN, stays_active=user.active)
    old, user.role = user.role, role
    audit.record("user.role", f"Changed {user.email} from {old} to {role}", target=user.email)
    db.session.commit()
    return user


def set_active(user_id: int, active: bool) -> User:
    user = _get(user_id)
    _guard_last_admin(user, becomes_admin=user.is_admin, stays_active=active)
    user.active = active
    if not active:
        user.end_sessions()
    audit.record("user.activate" if active else "user.deactivate",
                 f"{'Reactivated' if active else 'Deactivated'} {user.email}", target=user.email)
    db.session.commit()
    return user


def reset_password(user_id: int) -> tuple[User, str]:
    """Give a user a new generated password (shown once to the admin) and end their sessions."""
    user = _get(user_id)
    password = generate_password()
    user.set_password(password)
    user.end_sessions()
    audit.record("user.reset_password", f"Reset the password of {user.email}", target=user.email)
    db.session.commit()
    return user, password


def change_own_password(user_id: int, current: str, new: str, repeat: str, ip: str) -> User:
    """Change the signed-in user's password; their other sessions end. Wrong current passwords count as failed
    sign-ins, so a borrowed session cannot be used to guess the password."""
    user = _get(user_id)
    _check_current_password(user, current, ip)
    if new != repeat:
        raise ServiceError("The two new passwords do not match. Please type them again.", field="repeat")
    if user.check_password(new):
        raise ServiceError("That is already your password. Please choose a new one.", field="new")
    password_rules.check(new)
    user.set_password(new)
    user.end_sessions()  # the caller signs this session in again under the new version
    audit.record("user.change_password", f"{user.email} changed their password", target=user.email)
    db.session.commit()
    return user
