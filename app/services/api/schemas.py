"""The API's request and response shapes (pydantic). Requests refuse unknown fields and take JSON types as they
are (strict: "5" is not a number); the OpenAPI document is generated from these same classes."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TagName = Annotated[str, Field(min_length=1, max_length=64)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FieldError(BaseModel):
    field: str = Field(description="Where the problem is, e.g. `contacts[3].phone`.")
    message: str


class ProblemOut(BaseModel):
    """An RFC 9457 problem document, sent as application/problem+json."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = Field(None, description="For validation problems: each field at fault.")


# Contacts

class ContactIn(Request):
    phone: str = Field(max_length=64, description="Any common format; read in the default country unless it has +.")
    name: str | None = Field(None, max_length=255, description="Replaces the name when given.")
    attributes: dict[str, str] = Field(default_factory=dict, description="Merged into the contact's fields.")
    tags: list[TagName] = Field(default_factory=list, max_length=50, description="Added to the contact's tags.")


class BulkContactsIn(Request):
    contacts: list[ContactIn] = Field(min_length=1, description=(
        "Up to API_BULK_MAX_CONTACTS (10,000) are saved at once; more (up to API_BULK_JOB_MAX_CONTACTS, 100,000) "
        "are saved by a job whose status URL the 202 answer gives."))


class TagsIn(Request):
    tags: list[TagName] = Field(min_length=1, max_length=50)


class ContactQuery(BaseModel):
    """The contact list's filters, as on the dashboard, and cursor paging."""

    model_config = ConfigDict(extra="forbid")
    q: str = Field("", max_length=200, description="A phone number in any format, or part of a name.")
    tag: str = ""
    status: Literal["active", "subscribed", "opted_out", "deleted"] = "active"
    created_from: date | None = None
    created_to: date | None = None
    order: Literal["newest", "oldest"] = "newest"
    cursor: str | None = Field(None, description="`next_cursor` of the previous page.")
    limit: int = Field(50, ge=1, le=200)


class ContactOut(BaseModel):
    id: int
    phone: str
    name: str | None
    attributes: dict[str, Any]
    tags: list[str]
    opted_out: bool
    opted_out_at: datetime | None
    opt_out_source: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class ContactPage(BaseModel):
    data: list[ContactOut]
    next_cursor: str | None


class BulkResult(BaseModel):
    created: int
    updated: int
    unchanged: int
    skipped: int
    problems: list[FieldError] = Field(description="Contacts left alone, e.g. deleted ones.")


class BulkJobCounts(BaseModel):
    total: int = Field(description="Contacts in the call.")
    processed: int = Field(description="Contacts looked at so far.")
    created: int
    updated: int
    unchanged: int
    skipped: int = Field(description="Left alone, e.g. deleted contacts (each is also in `errors`).")
    invalid: int = Field(description="Not saved because a field is not right (each is in `errors`).")
    duplicates: int = Field(description="The same phone number again: the later one was saved, as in one call.")


class BulkJobOut(BaseModel):
    """A bulk upsert run as a job. Per-row semantics, like a file import: the good contacts are saved in batches
    and every contact that was not is listed in `errors`; nothing is saved when the body itself is not right."""

    id: int
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    status_url: str = Field(description="Where to ask again (this document).")
    counts: BulkJobCounts
    errors: list[FieldError] = Field(description="The first 1,000 contacts not saved, e.g. `contacts[3].phone`.")
    error_count: int = Field(description="Every contact not saved, however many `errors` lists.")
    message: str | None = Field(description="Why the job failed or stopped, when it did.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# Messages

class TemplateChoice(Request):
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(min_length=1, max_length=16, description="e.g. en_US")


class MessageIn(Request):
    """A template (with its variables) or, inside the 24-hour customer-service window, text."""

    to: str = Field(max_length=64, description="The phone number; a new contact is created for an unknown one.")
    template: TemplateChoice | None = None
    variables: dict[str, str] = Field(default_factory=dict,
                                      description="Template variable key (as listed by GET /templates) → text.")
    text: str | None = Field(None, min_length=1, max_length=4096)

    @model_validator(mode="after")
    def one_kind(self) -> MessageIn:
        if (self.template is None) == (self.text is None):
            raise ValueError("Give either `template` or `text`, not both or neither")
        if self.text is not None and self.variables:
            raise ValueError("`variables` go with a template, not with text")
        return self


class MessageHeaders(BaseModel):
    """Headers POST /messages reads (documentation only: other headers are allowed)."""

    idempotency_key: str | None = Field(None, alias="Idempotency-Key", max_length=255,
                                        description="Any unique text; a retry with the same key never sends twice.")


class StatusStep(BaseModel):
    status: str
    at: datetime


class MessageError(BaseModel):
    code: int | None
    title: str | None
    detail: str | None


class MessageOut(BaseModel):
    id: int
    contact_id: int
    to: str
    type: str
    status: str
    body: str | None
    template: str | None
    source: str
    created_at: datetime
    error: MessageError | None
    skip_reason: str | None
    history: list[StatusStep] = Field(description="Each status the message reached, with its time, in the order a "
                                                  "message moves (pending, sent, delivered, read, failed, replied).")


# Templates

class TemplateVariableOut(BaseModel):
    key: str
    label: str
    kind: str


class TemplateOut(BaseModel):
    id: int
    name: str
    language: str
    category: str
    status: str
    status_reason: str | None
    variables: list[TemplateVariableOut]


class TemplateList(BaseModel):
    data: list[TemplateOut]


# Campaigns

class AttributeRule(Request):
    key: str = Field(min_length=1, max_length=64)
    op: Literal["equals", "contains", "empty", "not_empty", "gt", "lt"]
    value: str = ""


class AudienceIn(Request):
    """Who to send to; all empty: every subscribed contact."""

    tags_any: list[TagName] = Field(default_factory=list)
    tags_all: list[TagName] = Field(default_factory=list)
    exclude_tags: list[TagName] = Field(default_factory=list)
    attributes: list[AttributeRule] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def one_tag_rule(self) -> AudienceIn:
        if self.tags_any and self.tags_all:
            raise ValueError("Use `tags_any` or `tags_all`, not both")
        return self


class VariableIn(Request):
    source: Literal["name", "phone", "attribute", "literal"]
    value: str = Field("", max_length=1000, description="The contact field for `attribute`, the text for `literal`.")
    fallback: str = Field("", max_length=1000)


class ScheduleIn(Request):
    kind: Literal["now", "at", "cron"] = "now"
    timezone: str = Field("", description="IANA name; empty: the shop's timezone.")
    scheduled_at: str = Field("", description="For `at`: local time, YYYY-MM-DDTHH:MM.")
    cron: str = Field("", description="For `cron`: five fields, at least an hour apart.")
    ends_on: str = Field("", description="For `cron`: the last day, YYYY-MM-DD.")


class CampaignIn(Request):
    name: str = Field(min_length=1, max_length=255)
    template_id: int
    audience: AudienceIn = Field(default_factory=AudienceIn)
    variables: dict[str, VariableIn] = Field(default_factory=dict)
    accept_fallbacks: bool = False
    schedule: ScheduleIn = Field(default_factory=ScheduleIn)
    max_rate: float | None = Field(None, gt=0, description="Messages per second; empty: as fast as allowed.")
    quiet_hours_start: str = Field("", description="HH:MM in each recipient's local time.")
    quiet_hours_end: str = ""


class CampaignOut(BaseModel):
    id: int
    name: str
    status: str
    template_id: int | None
    template_name: str | None
    audience: dict[str, Any]
    variables: dict[str, Any]
    schedule_kind: str
    scheduled_at: datetime | None
    cron: str | None
    timezone: str
    pause_reason: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counters: dict[str, int]


class CampaignList(BaseModel):
    data: list[CampaignOut]


class FunnelStep(BaseModel):
    key: str
    label: str
    count: int
    of_targeted: float | None
    of_previous: float | None


class CampaignMetrics(BaseModel):
    campaign_id: int
    status: str
    funnel: list[FunnelStep]
    delivery_rate: float | None
    read_rate: float | None
    reply_rate: float | None
    failure_rate: float | None


class KeyInfo(BaseModel):
    name: str
    prefix: str
    scopes: list[str]
