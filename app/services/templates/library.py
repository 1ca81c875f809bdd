"""Message templates: the local copy of the business account's templates, syncing it, and creating new ones.

Each sync is written to the audit log (action "template.sync") with its outcome; the templates page shows the
latest entry, so a failed sync is visible to staff rather than only in a worker's log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.clock import utcnow
from app.extensions import db
from app.models import AuditEntry, MessageTemplate, TemplateStatus, User
from app.services.admin import audit
from app.services.errors import NotFound, ServiceError
from app.services.sending.sender import new_client
from app.services.templates import rules as template_rules
from app.services.templates.rules import TemplateDraft
from app.whatsapp.client import TemplateInfo, WhatsAppApiError, WhatsAppClient

SYNC_ACTION = "template.sync"
T = TemplateStatus
# Meta's list statuses beyond our five, mapped the way template webhooks map them.
STATUS_OF = {"IN_APPEAL": T.PENDING, "PENDING_DELETION": T.DISABLED, "DELETED": T.DISABLED, "ARCHIVED": T.DISABLED,
             "LIMIT_EXCEEDED": T.PAUSED}
REMOVED_REASON = "Deleted from your WhatsApp account."  # kept, so campaigns that used it still show its name
SLOW_SYNC = timedelta(seconds=20)
REQUIRED_CONFIG = ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_BUSINESS_ACCOUNT_ID")


# Meta's rejection and pause reasons, as a shop owner would want them explained.
REASONS = {
    "INVALID_FORMAT": "Meta rejected the format: check the variables, their examples and the buttons.",
    "TAG_CONTENT_MISMATCH": "Meta thinks the content does not fit the category chosen; try the other category.",
    "INCORRECT_CATEGORY": "Meta thinks the content does not fit the category chosen; try the other category.",
    "PROMOTIONAL": "Meta found promotional content in a utility template; submit it as marketing.",
    "ABUSIVE_CONTENT": "Meta judged the content abusive or against its commerce policy.",
    "SCAM": "Meta suspected the template of being a scam.",
    "CATEGORY_NOT_AVAILABLE": "The category chosen is not available to this account; choose another category.",
}


def reason_text(reason: str | None) -> str:
    return REASONS.get(reason or "", reason or "")


class TemplateSyncFailed(ServiceError):
    pass


class TemplateFormError(ServiceError):
    """The create form broke one or more rules; `errors` maps each form field to its problem."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("The template was not submitted: please correct the fields marked below.")
        self.errors = errors


@dataclass(frozen=True)
class SyncResult:
    ok: bool
    at: datetime
    actor: str
    summary: str
    details: dict[str, Any]


def all_templates() -> list[MessageTemplate]:
    return list(db.session.scalars(select(MessageTemplate).order_by(MessageTemplate.name, MessageTemplate.language)))


def approved_templates() -> list[MessageTemplate]:
    statement = select(MessageTemplate).where(MessageTemplate.status == TemplateStatus.APPROVED)
    return list(db.session.scalars(statement.order_by(MessageTemplate.name, MessageTemplate.language)))


def get_template(template_id: int) -> MessageTemplate:
    template = db.session.get(MessageTemplate, template_id)
    if template is None:
        raise NotFound("That template does not exist.")
    return template


def whatsapp_client() -> WhatsAppClient:
    missing = [name for name in REQUIRED_CONFIG if not current_app.config[name]]
    if missing:
        raise WhatsAppApiError(f"WhatsApp is not configured: set {', '.join(missing)} in the environment.")
    return new_client()


# --- sync ---------------------------------------------------------------------------------------------------


def sync_from_meta(user_id: int | None = None) -> SyncResult:
    """Fetch every template of the business account and upsert them by (name, language); logs the outcome."""
    actor = _actor(user_id)
    db.session.close()  # no transaction held open during the network call
    try:
        with whatsapp_client() as client:
            fetched = client.list_templates()
    except WhatsAppApiError as error:
        message = _sync_error_text(error)
        record_sync_failure(message, user_id)
        raise TemplateSyncFailed(message) from error
    counts = _upsert(fetched)
    summary = (f"Synced {len(fetched)} template{'s' if len(fetched) != 1 else ''}: {counts['created']} new, "
               f"{counts['updated']} changed, {counts['removed']} removed.")
    entry = audit.record(SYNC_ACTION, summary, details={"ok": True, "total": len(fetched), **counts},
                         actor=actor, user_id=user_id)
    db.session.commit()
    return _result(entry)


def record_sync_failure(message: str, user_id: int | None = None) -> None:
    """Log a failed sync so the templates page can say what went wrong."""
    db.session.rollback()
    audit.record(SYNC_ACTION, f"Template sync failed: {message}", details={"ok": False, "error": message},
                 actor=_actor(user_id), user_id=user_id)
    db.session.commit()


def _sync_error_text(error: WhatsAppApiError) -> str:
    if error.code is None and error.http_status is None:
        return error.message
    code = f" (code {error.code})" if error.code is not None else f" (HTTP {error.http_status})"
    return f"{error.info.title}{code}: {error.details or error.message}"


def _upsert(fetched: list[TemplateInfo]) -> dict[str, int]:
    existing = {(row.name, row.language): row for row in db.session.scalars(select(MessageTemplate))}
    by_meta_id = {row.meta_id: row for row in existing.values() if row.meta_id}
    now, counts, seen = utcnow(), {"created": 0, "updated": 0, "removed": 0}, set()
    for info in fetched:
        row = existing.get((info.name, info.language)) or by_meta_id.get(info.id)
        if row is None:
            row = MessageTemplate(name=info.name, language=info.language)
            db.session.add(row)
            counts["created"] += 1
            _apply(row, info)
        elif _apply(row, info):
            counts["updated"] += 1
        row.synced_at = now
        seen.add(id(row))
    for row in existing.values():
        if id(row) not in seen and row.status_reason != REMOVED_REASON and row.meta_id:
            row.status, row.status_reason, row.synced_at = T.DISABLED, REMOVED_REASON, now
            counts["removed"] += 1
    return counts


def _apply(row: MessageTemplate, info: TemplateInfo) -> bool:
    """Copy Meta's fields onto the row; True when something changed."""
    reason = info.rejected_reason if info.rejected_reason not in (None, "", "NONE") else None
    status = STATUS_OF.get(info.status, info.status)
    if status != info.status and not reason:
        reason = f"Meta lists it as {info.status.replace('_', ' ').lower()}."
    values = {"meta_id": info.id or row.meta_id, "name": info.name, "language": info.language,
              "category": info.category, "status": status[:16], "status_reason": reason,
              "quality": info.quality_score, "parameter_format": info.parameter_format or "POSITIONAL",
              "components": info.components,
              # Meta's words on a rejection come only by webhook; they no longer apply once it is not rejected.
              "status_detail": row.status_detail if status == T.REJECTED else None}
    changed = any(getattr(row, name) != value for name, value in values.items())
    for name, value in values.items():
        setattr(row, name, value)
    return changed


def _actor(user_id: int | None) -> str:
    user = db.session.get(User, user_id) if user_id else None
    return user.email if user else "system"


def last_sync() -> SyncResult | None:
    """The newest sync outcome, or None if templates were never synced."""
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == SYNC_ACTION)
                               .order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(1)).first()
    return _result(entry) if entry else None


@dataclass(frozen=True)
class SyncState:
    """What the sync panel shows: the last outcome, and whether a sync requested at `since` is still awaited."""

    last: SyncResult | None
    since: str = ""  # ISO time "Sync now" was pressed
    waiting: bool = False
    slow: bool = False  # waited long enough that a worker is probably not running


def sync_state(since: str = "") -> SyncState:
    last = last_sync()
    try:
        requested = datetime.fromisoformat(since) if since else None
    except ValueError:
        requested = None
    if requested is None or requested.tzinfo is None:
        return SyncState(last=last)
    waiting = last is None or last.at < requested
    return SyncState(last=last, since=since, waiting=waiting, slow=waiting and utcnow() - requested > SLOW_SYNC)


def _result(entry: AuditEntry) -> SyncResult:
    details = entry.details or {}
    return SyncResult(ok=bool(details.get("ok")), at=entry.created_at, actor=entry.actor, summary=entry.summary,
                      details=details)


# --- create -------------------------------------------------------------------------------------------------


def create_template(draft: TemplateDraft) -> MessageTemplate:
    """Check Meta's rules, submit the template for review and keep it as PENDING."""
    errors = draft_problems(draft)
    if errors:
        raise TemplateFormError(errors)
    components = template_rules.components(draft)
    parameter_format = template_rules.parameter_format(draft)
    try:
        with whatsapp_client() as client:
            created = client.create_template(draft.name, draft.language, draft.category, components,
                                             parameter_format=parameter_format)
    except WhatsAppApiError as error:
        raise ServiceError(f"WhatsApp did not accept the template: {error.details or error.message}") from error
    row = MessageTemplate(meta_id=created.id or None, name=draft.name, language=draft.language,
                          category=created.category or draft.category, status=created.status or "PENDING",
                          parameter_format=parameter_format, components=components, synced_at=utcnow())
    db.session.add(row)
    audit.record("template.create", f"Submitted template {draft.name} ({draft.language}) for review",
                 target=draft.name, details={"category": row.category, "meta_id": row.meta_id})
    db.session.commit()
    return row


def draft_problems(draft: TemplateDraft, as_typed: bool = False) -> dict[str, str]:
    """Meta's rules plus a name not taken yet; `as_typed` leaves out fields still empty (the form's live check)."""
    errors = template_rules.problems_so_far(draft) if as_typed else template_rules.problems(draft)
    if "name" not in errors and draft.name and _exists(draft.name, draft.language):
        errors["name"] = f"A template called {draft.name} in {draft.language} already exists; choose another name."
    return errors


def _exists(name: str, language: str) -> bool:
    statement = select(MessageTemplate.id).where(MessageTemplate.name == name, MessageTemplate.language == language)
    return db.session.scalar(statement) is not None
