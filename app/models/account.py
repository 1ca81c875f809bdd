"""What WhatsApp told us about the business account itself (account_update webhooks): restrictions, bans, warnings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.extensions import db
from app.models.base import UTCDateTime
from app.models.contact import JsonDocument


class AccountBlock:
    """How much of our sending a problem stops."""

    ALL = "all"  # the account cannot send at all (disabled, deleted, offboarded)
    CAMPAIGNS = "campaigns"  # it cannot start conversations: campaigns stop, replies to customers still go
    NONE = "none"  # a warning only


class AccountProblem(db.Model):
    """One problem WhatsApp reported on the account, open until a later event lifts it, it expires or an admin
    dismisses it. `phone_number_id` is NULL for the whole account; a problem of one sender number may set it."""

    __tablename__ = "account_problems"
    __table_args__ = (Index("ix_account_problems_open", "lifted_at", "phone_number_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_number_id: Mapped[str | None] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))  # Meta's event: ACCOUNT_RESTRICTION, DISABLED_UPDATE, …
    kind: Mapped[str] = mapped_column(String(64))  # what is wrong: DISABLE, a restriction type, a violation type …
    blocks: Mapped[str] = mapped_column(String(16), default=AccountBlock.NONE)  # AccountBlock
    reason: Mapped[str] = mapped_column(Text)  # in plain words, for the banner
    details: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)  # the change's value as Meta sent it
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)  # when WhatsApp reported it
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a restriction's end, when Meta gives one
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(255))  # the event that lifted it, or the admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
