"""Typed events parsed from Cloud API webhooks; field names follow Meta's payloads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class WebhookError:
    code: int | None
    title: str | None
    message: str | None
    details: str | None  # error_data.details


@dataclass(frozen=True)
class StatusEvent:
    wamid: str
    status: str  # sent, delivered, read, failed (and Meta's rarer ones such as "played")
    timestamp: datetime | None
    recipient_id: str | None
    errors: tuple[WebhookError, ...] = ()
    pricing_category: str | None = None
    pricing_model: str | None = None
    billable: bool | None = None
    conversation_id: str | None = None
    conversation_origin: str | None = None
    biz_opaque_callback_data: str | None = None
    phone_number_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Media:
    id: str | None
    mime_type: str | None
    caption: str | None = None
    filename: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Location:
    latitude: float | None
    longitude: float | None
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class Reaction:
    message_id: str | None
    emoji: str | None  # empty or missing when the customer removed their reaction


@dataclass(frozen=True)
class InboundMessage:
    wamid: str
    from_wa_id: str
    timestamp: datetime | None
    type: str
    profile_name: str | None = None
    text: str | None = None  # text.body
    button_payload: str | None = None  # quick-reply button on a template
    button_text: str | None = None
    interactive_type: str | None = None  # button_reply or list_reply
    interactive_id: str | None = None
    interactive_title: str | None = None
    # The rest of an interactive reply that has no id/title: a flow's answers (nfm_reply, with response_json
    # parsed), a call-permission answer (call_permission_reply: response accept/reject).
    interactive_detail: dict[str, Any] | None = None
    media: Media | None = None  # image, video, audio, document, sticker
    location: Location | None = None
    contacts: tuple[dict[str, Any], ...] = ()
    reaction: Reaction | None = None
    order: dict[str, Any] | None = None
    system: dict[str, Any] | None = None
    errors: tuple[WebhookError, ...] = ()  # e.g. for type "unsupported"
    context_id: str | None = None  # wamid of the business message this replies to
    context_from: str | None = None
    referral: dict[str, Any] | None = None  # click-to-WhatsApp ad details
    original_id: str | None = None  # edit / revoke: the wamid of the customer's message it changes
    edited: InboundMessage | None = None  # edit: the message as it reads now (its text or caption)
    phone_number_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def visible_text(self) -> str | None:
        """What the customer typed or tapped, for keyword matching such as STOP."""
        return self.text or self.button_text or self.interactive_title or (self.media.caption if self.media else None)


@dataclass(frozen=True)
class UserPreferenceEvent:
    wa_id: str
    category: str  # "marketing_messages"
    value: str  # "stop" or "resume"
    timestamp: datetime | None
    detail: str | None = None
    phone_number_id: str | None = None


@dataclass(frozen=True)
class TemplateStatusEvent:
    template_id: str
    name: str | None
    language: str | None
    event: str  # APPROVED, REJECTED, PENDING, PAUSED, DISABLED, ...
    reason: str | None = None
    category: str | None = None
    rejection_reason: str | None = None  # rejection_info.reason: Meta's own words on what is wrong
    recommendation: str | None = None  # rejection_info.recommendation: what to change
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TemplateCategoryEvent:
    template_id: str
    name: str | None
    language: str | None
    new_category: str | None
    previous_category: str | None = None  # set once a change happened
    correct_category: str | None = None  # set when a change is only announced
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class TemplateQualityEvent:
    template_id: str
    name: str | None
    language: str | None
    new_quality_score: str | None
    previous_quality_score: str | None = None


@dataclass(frozen=True)
class Restriction:
    type: str  # RESTRICTED_BIZ_INITIATED_MESSAGING, RESTRICTED_CUSTOMER_INITIATED_MESSAGING, ...
    expiration: datetime | None


@dataclass(frozen=True)
class AccountUpdateEvent:
    """An account_update change: the business account was restricted, disabled, reinstated, warned …"""

    event: str  # ACCOUNT_RESTRICTION, ACCOUNT_VIOLATION, DISABLED_UPDATE, ACCOUNT_DELETED, PARTNER_ADDED, ...
    timestamp: datetime | None  # the entry's time
    waba_id: str | None = None
    phone_number: str | None = None  # set on some events that concern one number
    ban_state: str | None = None  # ban_info.waba_ban_state: DISABLE, REINSTATE, SCHEDULE_FOR_DISABLE
    ban_date: str | None = None  # ban_info.waba_ban_date, as Meta wrote it ("January 2, 2026")
    violation_type: str | None = None  # violation_info.violation_type
    restrictions: tuple[Restriction, ...] = ()  # restriction_info
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ErrorEvent:
    """A webhook-level error in value.errors, not tied to one message."""

    error: WebhookError
    phone_number_id: str | None = None


@dataclass(frozen=True)
class UnhandledEvent:
    """Anything we do not understand, kept whole so nothing Meta sent is silently dropped."""

    field: str | None
    reason: str
    raw: Any = field(default=None, compare=False)


Event = (StatusEvent | InboundMessage | UserPreferenceEvent | TemplateStatusEvent | TemplateCategoryEvent
         | TemplateQualityEvent | AccountUpdateEvent | ErrorEvent | UnhandledEvent)


@dataclass(frozen=True)
class Envelope:
    events: tuple[Event, ...] = ()
    error: str | None = None  # set when the body as a whole was rejected; then there are no events

    @property
    def ok(self) -> bool:
        return self.error is None

    def of_type(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    @property
    def statuses(self) -> list[StatusEvent]:
        return self.of_type(StatusEvent)

    @property
    def messages(self) -> list[InboundMessage]:
        return self.of_type(InboundMessage)
