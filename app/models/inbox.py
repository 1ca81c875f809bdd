"""The inbox: one conversation per contact who ever wrote to us, and keyword auto-reply rules with their log.

A Conversation holds only what the message rows cannot answer cheaply (who handles it, whether it is done, what
staff have read); the messages themselves stay in `messages`. Its `last_inbound_at` opens the 24-hour window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.extensions import db
from app.models.base import UTCDateTime
from app.models.campaign import MessageTemplate
from app.models.contact import BigId, Contact, JsonDocument
from app.models.user import User


class Conversation(db.Model):
    __tablename__ = "conversations"
    # unread is indexed for the nav badge's count of unread conversations, polled while staff have a page open.
    __table_args__ = (Index("ix_conversations_last_message_at", "last_message_at"),
                      Index("ix_conversations_unread", "unread"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"), unique=True)
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the customer's last own message
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)  # any direction: list order
    last_preview: Mapped[str | None] = mapped_column(String(255))
    unread: Mapped[int] = mapped_column(Integer, default=0)  # inbound messages since staff last opened it
    last_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # cleared by the customer's next message
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact] = relationship(lazy="joined")
    assigned_to: Mapped[User | None] = relationship(lazy="joined")


class AutoReplyRule(db.Model):
    """Keywords (any of them, as whole words) or a regular expression → a text reply or an approved template."""

    __tablename__ = "auto_reply_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    match_kind: Mapped[str] = mapped_column(String(16), default="keywords")  # keywords | regex
    keywords: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    pattern: Mapped[str | None] = mapped_column(String(500))
    reply_kind: Mapped[str] = mapped_column(String(16), default="text")  # text | template
    reply_text: Mapped[str | None] = mapped_column(Text)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("message_templates.id", ondelete="SET NULL"))
    # {"body.1": {"source": "name|phone|literal", "value": str, "fallback": str}}, as Campaign.variables
    template_variables: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    cooldown_minutes: Mapped[int] = mapped_column(Integer, default=60)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    template: Mapped[MessageTemplate | None] = relationship(lazy="joined")


class AutoReplyFiring(db.Model):
    """One auto-reply sent (queued) to one contact: the log cooldowns and the hourly cap are counted from."""

    __tablename__ = "auto_reply_firings"
    __table_args__ = (Index("ix_auto_reply_firings_contact_id_fired_at", "contact_id", "fired_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("auto_reply_rules.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    inbound_message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("messages.id", ondelete="SET NULL"))
    reply_message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("messages.id", ondelete="SET NULL"))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
