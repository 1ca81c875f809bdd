"""API keys for a business's own systems, and the idempotency keys their message sends carry."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.extensions import db
from app.models.base import UTCDateTime
from app.models.contact import BigId, JsonDocument
from app.models.user import User


class ApiKey(db.Model):
    """A key is `bk_<prefix>_<secret>`; only the prefix (to find it) and a SHA-256 of the whole key are stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))  # hex SHA-256 of the whole key
    scopes: Mapped[list[str]] = mapped_column(JsonDocument, default=list)  # e.g. ["contacts:read", "messages:write"]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ApiIdempotencyKey(db.Model):
    """The message a key's `Idempotency-Key` header produced; the unique pair makes concurrent retries send once."""

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("api_key_id", "key", name="uq_api_idempotency_keys_api_key_id_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    api_key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))  # the same key with another body is refused, not replayed
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
