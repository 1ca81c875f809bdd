"""Data retention: drop what has outlived its settings-page retention period."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import or_, select

from app.clock import utcnow
from app.extensions import db
from app.models import ContactImport
from app.models.contact_import import ImportStatus
from app.services.admin import audit, settings
from app.services.contacts.imports.uploads import stored_path
from app.services.webhooks import intake

log = logging.getLogger(__name__)
FINISHED = (ImportStatus.COMPLETED, ImportStatus.FAILED, ImportStatus.CANCELLED)


@dataclass
class RetentionReport:
    audit_entries: int = 0
    import_files: int = 0
    webhook_events: int = 0


def apply_retention() -> RetentionReport:
    """Remove old audit entries, import files and webhook bodies. Contacts and messages are never touched here."""
    report = RetentionReport()
    report.audit_entries = audit.purge_older_than(settings.get("retention_audit_days") or 365_000)
    report.import_files = _remove_import_files(settings.get("retention_import_files_days"))
    if days := settings.get("retention_webhook_events_days"):
        report.webhook_events = intake.purge_processed_events(days)
    if any(report.__dict__.values()):
        audit.record("retention.run", f"Retention removed {report.audit_entries} audit entries, "
                     f"{report.import_files} import files and {report.webhook_events} webhook events",
                     details=report.__dict__)
    db.session.commit()
    return report


def _remove_import_files(days: int) -> int:
    """Uploaded spreadsheets of finished (or abandoned) imports; their summaries and problem rows stay."""
    if not days:
        return 0
    cutoff = utcnow() - timedelta(days=days)
    old = db.session.scalars(select(ContactImport).where(or_(
        ContactImport.status.in_(FINISHED) & (ContactImport.finished_at < cutoff),
        (ContactImport.status == ImportStatus.MAPPING) & (ContactImport.created_at < cutoff),
    )))
    removed = 0
    for contact_import in old:
        path = stored_path(contact_import)
        if path.exists():
            path.unlink()
            removed += 1
    return removed
