"""Message templates, campaigns and their messages: the heart of sending.

Invariants (see ARCHITECTURE.md):
- Every message that will ever be sent exists first as a Message row; Redis only carries work.
- A message's status changes only through app.services.sending.message_state; a campaign's only through
  app.services.campaigns.campaign_state. Both hold the allowed transitions.
- A campaign's counters always equal a recount of its message rows:
    targeted = all rows, skipped = status skipped, failed = status failed,
    sent = rows whose sent_at is set and that did not fail (accepted, then reported failed: counted as failed),
    delivered / read / replied = rows whose delivered_at / read_at / replied_at is set.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.clock import utcnow
from app.extensions import db
from app.models.base import UTCDateTime
from app.models.contact import BigId, Contact, JsonDocument


class TemplateStatus:
    APPROVED = "APPROVED"
    PENDING = "PENDING"
    REJECTED = "REJECTED"
    PAUSED = "PAUSED"
    DISABLED = "DISABLED"


class MessageTemplate(db.Model):
    """A WhatsApp message template of the business account, as last synced from Meta (or created here)."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("name", "language", name="uq_message_templates_name_language"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meta_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # Meta's template id
    name: Mapped[str] = mapped_column(String(512))
    language: Mapped[str] = mapped_column(String(16))  # e.g. en_US, hi
    category: Mapped[str] = mapped_column(String(32))  # MARKETING | UTILITY | AUTHENTICATION
    status: Mapped[str] = mapped_column(String(16), index=True)  # TemplateStatus
    status_reason: Mapped[str | None] = mapped_column(Text)  # rejection or pause reason from Meta
    status_detail: Mapped[str | None] = mapped_column(Text)  # Meta's own words on a rejection, and what to change
    quality: Mapped[str | None] = mapped_column(String(16))  # GREEN | YELLOW | RED | UNKNOWN
    parameter_format: Mapped[str] = mapped_column(String(16), default="POSITIONAL")  # POSITIONAL | NAMED
    components: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument, default=list)  # Meta's shape
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CampaignStatus:
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("message_templates.id", ondelete="SET NULL"))
    phone_number_id: Mapped[str] = mapped_column(String(64))  # the sender; the rate limit is keyed by it
    # {"tags_any": [keys], "tags_all": [keys], "exclude_tags": [keys],
    #  "attributes": [{"key": str, "op": "equals|contains|empty|not_empty|gt|lt", "value": str}]}
    audience: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # {"body.1": {"source": "name|phone|attribute|literal", "value": str, "fallback": str}, "header.1": …,
    #  "button.0": …}; keys are component.position (positional) or component.name (named parameters)
    variables: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    accept_fallbacks: Mapped[bool] = mapped_column(Boolean, default=False)
    schedule_kind: Mapped[str] = mapped_column(String(8), default="now")  # now | at | cron
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cron: Mapped[str | None] = mapped_column(String(64))
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a recurring campaign starts no run after this
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Kolkata")
    max_rate: Mapped[float | None] = mapped_column()  # messages per second for this campaign, None = sender's
    quiet_hours_start: Mapped[str | None] = mapped_column(String(5))  # "21:00", in each recipient's local time
    quiet_hours_end: Mapped[str | None] = mapped_column(String(5))
    status: Mapped[str] = mapped_column(String(16), default=CampaignStatus.DRAFT, index=True)
    pause_reason: Mapped[str | None] = mapped_column(Text)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    template: Mapped[MessageTemplate | None] = relationship(lazy="joined")
    run: Mapped[SendRun | None] = relationship(lazy="joined", back_populates="campaign", uselist=False,
                                               cascade="all, delete-orphan", passive_deletes=True)

    def send_run(self) -> SendRun:
        """The campaign's run, made on first use (at launch); a draft has none and counts zeros."""
        if self.run is None:
            self.run = SendRun(source=MessageSource.CAMPAIGN, phone_number_id=self.phone_number_id)
        return self.run


def _run_counter(name: str) -> property:
    def read(campaign: Campaign) -> int:
        return getattr(campaign.run, name) if campaign.run is not None else 0

    def write(campaign: Campaign, value: int) -> None:
        setattr(campaign.send_run(), name, value)

    return property(read, write, doc=f"The run's `{name}` counter (0 before launch).")


for _name in ("targeted", "skipped", "sent", "delivered", "read", "failed", "replied"):
    setattr(Campaign, _name, _run_counter(_name))


class MessageSource:
    """Where an outbound message came from. Campaign messages belong to a run; the others are sent one by one."""

    CAMPAIGN = "campaign"
    INBOX_REPLY = "inbox_reply"  # staff in the inbox
    AUTO_REPLY = "auto_reply"  # a keyword auto-reply rule
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"
    INBOUND = "inbound"  # the customer's own message (direction "in")
    API = "api"  # a business's own system, through POST /api/v1/messages


class SendRun(db.Model):
    """Messages sent to many contacts at once, counted together: a campaign's run (each run of a recurring campaign
    is a campaign of its own), and later alert runs and reminder batches. The counters are maintained in the same
    transaction as every status change (app.services.sending.message_state) and always equal a recount."""

    __tablename__ = "send_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(24))  # MessageSource
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), unique=True)
    phone_number_id: Mapped[str] = mapped_column(String(64), default="")
    targeted: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    read: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    replied: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    campaign: Mapped[Campaign | None] = relationship(back_populates="run")


class MessageStatus:
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    RECEIVED = "received"  # inbound messages from customers


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("run_id", "contact_id", name="uq_messages_run_id_contact_id"),
        Index("ix_messages_campaign_id_status_next_attempt_at", "campaign_id", "status", "next_attempt_at"),
        Index("ix_messages_run_id_status_next_attempt_at", "run_id", "status", "next_attempt_at"),
        Index("ix_messages_contact_id_created_at", "contact_id", "created_at"),
        Index("ix_messages_status_claimed_at", "status", "claimed_at"),
        Index("ix_messages_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("send_runs.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(24), default=MessageSource.CAMPAIGN)  # MessageSource
    contact_id: Mapped[int] = mapped_column(BigId, ForeignKey("contacts.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(3), default="out")  # out | in
    message_type: Mapped[str] = mapped_column(String(16), default="template")  # template | text | image | …
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.PENDING)
    parameters: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)  # rendered at send time
    body: Mapped[str | None] = mapped_column(Text)  # readable text: rendered template, reply text, caption
    content: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)  # inbound media/location/…
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wamid: Mapped[str | None] = mapped_column(String(128), unique=True)
    context_wamid: Mapped[str | None] = mapped_column(String(128), index=True)  # inbound reply to this wamid
    skip_reason: Mapped[str | None] = mapped_column(String(255))
    # The recipient's timezone, copied from the contact at launch, so quiet hours need no join while sending.
    recipient_zone: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_title: Mapped[str | None] = mapped_column(String(255))
    error_detail: Mapped[str | None] = mapped_column(Text)
    pricing_category: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact] = relationship(lazy="joined")
    campaign: Mapped[Campaign | None] = relationship()


class WebhookEvent(db.Model):
    """A webhook body exactly as Meta sent it, stored before we answer 200 so nothing delivered is lost."""

    __tablename__ = "webhook_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    body: Mapped[str] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(Text)


class HourlyMessageStats(db.Model):
    """Messages that reached each status per hour, maintained with the campaign counters, so the dashboard's
    time series never scans the message table."""

    __tablename__ = "hourly_message_stats"

    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)  # start of the hour, UTC
    sent: Mapped[int] = mapped_column(Integer, default=0)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    read: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    replied: Mapped[int] = mapped_column(Integer, default=0)
