"""Outbound webhooks: endpoints admins register, the events we owe them (an outbox) and each delivery's progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.extensions import db
from app.models.base import UTCDateTime
from app.models.contact import BigId, JsonDocument


class OutboundEndpoint(db.Model):
    """A URL of the business's own systems that hears about the event types in `events`."""

    __tablename__ = "outbound_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(255), default="")
    events: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    # Needed in the clear to sign each delivery (HMAC), so it cannot be stored as a hash; admins can view it.
    secret: Mapped[str] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first failure since the last success
    disabled_reason: Mapped[str | None] = mapped_column(String(500))  # set when we disabled it, not an admin
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OutboundEvent(db.Model):
    """Something endpoints may want to hear about, inserted in the transaction that made it happen.

    `body` is the JSON sent, written once when the event is fanned out to deliveries, so a redelivery sends the
    same bytes; until then `fanned_out_at` is empty and `payload` holds what the hot path knew.
    """

    __tablename__ = "outbound_events"
    __table_args__ = (Index("ix_outbound_events_fanned_out_at_id", "fanned_out_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)  # for the log's purge
    fanned_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryStatus:
    PENDING = "pending"  # waiting for its first try or a retry (next_attempt_at)
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the retry window, or its endpoint was disabled


class OutboundDelivery(db.Model):
    """One event for one endpoint: tried until a 2xx answer or the retry window ends."""

    __tablename__ = "outbound_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "endpoint_id"),
                      Index("ix_outbound_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
                      Index("ix_outbound_deliveries_endpoint_id_id", "endpoint_id", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbound_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("outbound_endpoints.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    response_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(255))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
