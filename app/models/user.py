"""Dashboard users: staff and admins."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from app.clock import utcnow
from app.extensions import db
from app.models.base import UTCDateTime


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.STAFF)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Part of the identity in sessions and remember cookies: raising it ends every one of them (sign-out, password
    # change or reset, deactivation), including copies a thief made.
    session_version: Mapped[int] = mapped_column(default=0)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    def get_id(self) -> str:
        """What Flask-Login keeps in the session and the remember cookie: "user id:session version"."""
        return f"{self.id}:{self.session_version}"

    def end_sessions(self) -> None:
        """Sign this user out everywhere: sessions and remember cookies of the old version are refused."""
        self.session_version += 1

    @property
    def is_active(self) -> bool:  # Flask-Login refuses to log in inactive users
        return self.active

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"
