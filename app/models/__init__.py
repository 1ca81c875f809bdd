"""SQLAlchemy models, one module per aggregate; imported here so Alembic sees them all."""

from app.models.account import AccountBlock, AccountProblem
from app.models.api_key import ApiIdempotencyKey, ApiKey
from app.models.audit import AuditEntry, Setting
from app.models.campaign import (
    Campaign,
    CampaignStatus,
    HourlyMessageStats,
    Message,
    MessageSource,
    MessageStatus,
    MessageTemplate,
    SendRun,
    TemplateStatus,
    WebhookEvent,
)
from app.models.contact import Contact, OptOutSource, Tag, contact_tags
from app.models.contact_import import ContactImport, ContactImportPayload, ContactImportProblem
from app.models.inbox import AutoReplyFiring, AutoReplyRule, Conversation
from app.models.outbound_webhook import DeliveryStatus, OutboundDelivery, OutboundEndpoint, OutboundEvent
from app.models.user import Role, User

__all__ = [
    "AccountBlock", "AccountProblem", "ApiIdempotencyKey", "ApiKey", "AuditEntry", "AutoReplyFiring", "AutoReplyRule",
    "Campaign", "CampaignStatus", "Contact", "ContactImport", "ContactImportPayload", "ContactImportProblem",
    "Conversation", "DeliveryStatus", "HourlyMessageStats", "Message", "MessageSource", "MessageStatus",
    "MessageTemplate", "OptOutSource", "OutboundDelivery", "OutboundEndpoint", "OutboundEvent", "Role", "SendRun",
    "Setting", "Tag", "TemplateStatus", "User", "WebhookEvent", "contact_tags",
]
