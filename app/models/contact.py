"""Contacts, their tags and opt-out state."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, Integer, String, Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.extensions import db
from app.models.base import UTCDateTime

# BIGINT on PostgreSQL for million-row tables; SQLite only auto-increments a plain INTEGER key.
BigId = BigInteger().with_variant(Integer(), "sqlite")
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class OptOutSource(StrEnum):
    KEYWORD = "keyword"  # the customer replied STOP or a local stop word
    BUTTON = "button"  # the customer pressed a "Stop promotions" quick reply
    USER_PREFERENCES = "user_preferences"  # WhatsApp's own marketing-preferences control
    STAFF = "staff"
    IMPORT = "import"
    API = "api"  # a business's own system, through the REST API


contact_tags = Table(
    "contact_tags",
    db.metadata,
    Column("contact_id", BigId, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", Integer, ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_contact_tags_tag_id_contact_id", "tag_id", "contact_id"),
)


class Tag(db.Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    # Case-insensitive uniqueness: "VIP" and "vip" are one tag, shown as first written.
    key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Tag {self.name}>"


class Contact(db.Model):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    phone: Mapped[str] = mapped_column(String(20), unique=True)  # E.164, e.g. +919876543210
    wa_id: Mapped[str] = mapped_column(String(20), index=True)  # the digits WhatsApp uses as the id
    name: Mapped[str | None] = mapped_column(String(255))
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # IANA timezone derived from the number (country, or area code where a country has several), for quiet hours.
    timezone: Mapped[str | None] = mapped_column(String(64))
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    opt_out_source: Mapped[str | None] = mapped_column(String(32))
    # The customer's latest choice in WhatsApp's marketing-messages control (stop, resume or signup), and when.
    marketing_preference: Mapped[str | None] = mapped_column(String(16))
    marketing_preference_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    tags: Mapped[list[Tag]] = relationship(secondary=contact_tags, lazy="selectin", order_by=Tag.key)

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None

    def record_opt_out(self, source: str, at: datetime) -> bool:
        """Opt out unless already opted out: the first opt-out's time and source are the ones kept."""
        if self.opted_out_at is not None:
            return False
        self.opted_out_at, self.opt_out_source = at, source
        return True

    def __repr__(self) -> str:
        return f"<Contact {self.phone}>"
