"""Template webhooks (status, category, quality) and pausing the campaigns a problem affects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import select

from app.extensions import db
from app.models import Campaign, CampaignStatus, MessageTemplate, TemplateStatus
from app.services.admin import audit
from app.services.campaigns import campaign_state
from app.whatsapp.errors import classify
from app.whatsapp.events import TemplateCategoryEvent, TemplateQualityEvent, TemplateStatusEvent

T = TemplateStatus
TemplateEvent = TemplateStatusEvent | TemplateCategoryEvent | TemplateQualityEvent
# Meta's template events mapped to our statuses; others (FLAGGED, LOCKED, …) leave the status and note the event.
STATUS_OF_EVENT = {
    "APPROVED": T.APPROVED, "REINSTATED": T.APPROVED, "PENDING": T.PENDING, "IN_APPEAL": T.PENDING,
    "REJECTED": T.REJECTED, "PAUSED": T.PAUSED, "DISABLED": T.DISABLED, "DELETED": T.DISABLED,
    "PENDING_DELETION": T.DISABLED, "ARCHIVED": T.DISABLED,
}
STOPPING = {T.PAUSED: 132015, T.DISABLED: 132016}  # the send error codes that explain each


def apply_template_events(events: Iterable[TemplateEvent], counts: Counter) -> None:
    """Update each template named by meta id or (name, language); a paused or disabled one pauses its campaigns."""
    for event in events:
        template = _find(event)
        if template is None:
            counts["unknown templates"] += 1
            continue
        if isinstance(event, TemplateStatusEvent):
            _apply_status(template, event, counts)
        elif isinstance(event, TemplateCategoryEvent) and event.new_category:
            template.category = event.new_category[:32]
        elif isinstance(event, TemplateQualityEvent) and event.new_quality_score:
            template.quality = event.new_quality_score[:16]
        counts["templates updated"] += 1


def pause_running_campaigns(condition, reason: str) -> int:
    """Pause every running campaign matching `condition` (the dispatcher checks before each batch); returns count."""
    campaigns = db.session.scalars(
        select(Campaign).where(condition, Campaign.status == CampaignStatus.RUNNING).order_by(Campaign.id)
        .with_for_update(of=Campaign).execution_options(populate_existing=True)).all()
    for campaign in campaigns:
        campaign_state.transition(campaign, CampaignStatus.PAUSED, reason=reason)
        audit.record("campaign.pause", f"Paused campaign “{campaign.name}”: {reason}", target=campaign.name,
                     details={"campaign_id": campaign.id, "reason": reason})
    return len(campaigns)


def _find(event: TemplateEvent) -> MessageTemplate | None:
    """The template with Meta's id; else the one of that name and language we never learnt an id for. A template
    with another id is another template (Meta's was deleted and made again): the event is not about it."""
    template = db.session.scalar(select(MessageTemplate).where(MessageTemplate.meta_id == event.template_id))
    if template is None and event.name and event.language:
        template = db.session.scalar(select(MessageTemplate).where(
            MessageTemplate.name == event.name, MessageTemplate.language == event.language,
            MessageTemplate.meta_id.is_(None)))
        if template is not None:
            template.meta_id = event.template_id[:64]
    return template


def _detail(event: TemplateStatusEvent) -> str | None:
    """Meta's own words on a rejection (rejection_info) and what it recommends changing, as one paragraph."""
    parts = [text.strip() for text in (event.rejection_reason, event.recommendation) if text and text.strip()]
    parts = [text if text.endswith((".", "!", "?")) else text + "." for text in parts]
    return " ".join(parts) or None


def _apply_status(template: MessageTemplate, event: TemplateStatusEvent, counts: Counter) -> None:
    new_status = STATUS_OF_EVENT.get(event.event.upper())
    reason = event.reason if event.reason and event.reason.upper() != "NONE" else None
    if new_status is None:
        template.status_reason = f"WhatsApp reported {event.event}" + (f": {reason}" if reason else "")
    else:
        template.status, template.status_reason = new_status, reason
        template.status_detail = _detail(event)
    if event.category:
        template.category = event.category[:32]
    audit.record("template.status", f"WhatsApp set template {template.name} ({template.language}) to {event.event}"
                 + (f": {reason}" if reason else ""), target=template.name, details={"event": event.event})
    if new_status in STOPPING:
        explanation = classify(STOPPING[new_status]).explanation
        condition = Campaign.template_id == template.id
        counts["campaigns paused"] += pause_running_campaigns(condition, f"Template {template.name}: {explanation}")
