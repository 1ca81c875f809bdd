"""Rows into the API's response shapes."""

from __future__ import annotations

from app.models import Campaign, Contact, Message, MessageTemplate
from app.services.api.bulk import JobStatus, field_of
from app.services.api.schemas import (
    BulkJobCounts,
    BulkJobOut,
    CampaignOut,
    ContactOut,
    FieldError,
    MessageError,
    MessageOut,
    StatusStep,
    TemplateOut,
    TemplateVariableOut,
)
from app.services.templates import rendering

HISTORY = (("pending", "created_at"), ("sent", "sent_at"), ("delivered", "delivered_at"), ("read", "read_at"),
           ("failed", "failed_at"), ("replied", "replied_at"))
COUNTERS = ("targeted", "skipped", "sent", "delivered", "read", "failed", "replied")


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(id=contact.id, phone=contact.phone, name=contact.name, attributes=contact.attributes or {},
                      tags=[tag.name for tag in contact.tags], opted_out=contact.opted_out,
                      opted_out_at=contact.opted_out_at, opt_out_source=contact.opt_out_source,
                      created_at=contact.created_at, updated_at=contact.updated_at, deleted_at=contact.deleted_at)


def message_out(message: Message, to: str | None = None) -> MessageOut:
    """`to` spares loading the contact when the caller knows the number."""
    error = None
    if message.error_code is not None or message.error_title:
        error = MessageError(code=message.error_code, title=message.error_title, detail=message.error_detail)
    return MessageOut(id=message.id, contact_id=message.contact_id, to=to or message.contact.phone,
                      type=message.message_type, status=message.status, body=message.body,
                      template=(message.parameters or {}).get("template"), source=message.source,
                      created_at=message.created_at, error=error, skip_reason=message.skip_reason,
                      history=[StatusStep(status=status, at=at) for status, at in history(message)])


def history(message: Message) -> list[tuple[str, object]]:
    """Each status the message reached, with its time, in the order a message moves. Not sorted by time: WhatsApp's
    times are whole seconds from its own clock, so a send "sent" at 12:00:00 was queued by us at 12:00:00.41."""
    steps = [(status, getattr(message, column)) for status, column in HISTORY if getattr(message, column)]
    if message.status in ("cancelled", "skipped"):
        steps.append((message.status, message.updated_at))
    return steps


def template_out(template: MessageTemplate) -> TemplateOut:
    variables = [TemplateVariableOut(key=v.key, label=v.label, kind=v.kind)
                 for v in rendering.template_variables(template)]
    return TemplateOut(id=template.id, name=template.name, language=template.language, category=template.category,
                       status=template.status, status_reason=template.status_reason, variables=variables)


def campaign_out(campaign: Campaign) -> CampaignOut:
    return CampaignOut(
        id=campaign.id, name=campaign.name, status=campaign.status, template_id=campaign.template_id,
        template_name=campaign.template.name if campaign.template else None, audience=campaign.audience or {},
        variables=campaign.variables or {}, schedule_kind=campaign.schedule_kind, scheduled_at=campaign.scheduled_at,
        cron=campaign.cron, timezone=campaign.timezone, pause_reason=campaign.pause_reason,
        created_at=campaign.created_at, started_at=campaign.started_at, finished_at=campaign.finished_at,
        counters={name: getattr(campaign, name) for name in COUNTERS})


def bulk_job_out(job: JobStatus, status_url: str) -> BulkJobOut:
    row = job.contact_import
    counts = BulkJobCounts(total=row.total_rows, processed=row.processed_rows, created=row.created_count,
                           updated=row.updated_count, unchanged=row.unchanged_count, skipped=row.skipped_count,
                           invalid=row.invalid_count, duplicates=row.duplicate_count)
    return BulkJobOut(id=row.id, status=row.status, status_url=status_url, counts=counts,
                      errors=[FieldError(field=field_of(problem), message=problem.reason) for problem in job.errors],
                      error_count=row.problem_count, message=row.message, created_at=row.created_at,
                      started_at=row.started_at, finished_at=row.finished_at)
