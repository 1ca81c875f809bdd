"""Recording and searching the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy import delete, or_, select

from app.clock import utcnow
from app.extensions import db
from app.models import AuditEntry

PAGE_SIZE = 50


def record(action: str, summary: str, target: str | None = None, details: dict[str, Any] | None = None,
           actor: str | None = None, user_id: int | None = None) -> AuditEntry:
    """Add an entry to the current transaction; the caller's commit makes it permanent with the change itself.
    Unless told, the actor is the request's signed-in user, or the API key it authenticated with (g.audit_actor,
    set by the API's authentication), so services deep below a view name who did it without being passed it."""
    if actor is None and has_request_context():
        if current_user.is_authenticated:
            actor, user_id = current_user.email, current_user.id
        else:
            actor = g.get("audit_actor")
    entry = AuditEntry(action=action, summary=_fit(summary, "summary"), target=_fit(target, "target"),
                       details=details or {}, actor=_fit(actor or "system", "actor"), user_id=user_id,
                       ip_address=_fit(request.remote_addr if has_request_context() else None, "ip_address"))
    db.session.add(entry)
    return entry


def _fit(value: str | None, column: str) -> str | None:
    """Cut to the column's length: SQLite does not enforce it, and a caller may pass text a visitor typed."""
    return value[:AuditEntry.__table__.c[column].type.length] if value else value


@dataclass
class AuditPage:
    rows: list[AuditEntry]
    page: int
    has_next: bool


def search(text: str = "", action: str = "", page: int = 1) -> AuditPage:
    """Newest first; `text` matches the actor, the summary or the target."""
    statement = select(AuditEntry).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if text:
        pattern = text.lower()
        statement = statement.where(or_(AuditEntry.actor.icontains(pattern, autoescape=True),
                                        AuditEntry.summary.icontains(pattern, autoescape=True),
                                        AuditEntry.target.icontains(pattern, autoescape=True)))
    if action:
        statement = statement.where(AuditEntry.action == action)
    rows = list(db.session.scalars(statement.offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)))
    return AuditPage(rows=rows[:PAGE_SIZE], page=page, has_next=len(rows) > PAGE_SIZE)


def known_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action)))


def purge_older_than(days: int) -> int:
    """Delete entries older than `days`; returns how many went."""
    cutoff = utcnow() - timedelta(days=days)
    return db.session.execute(delete(AuditEntry).where(AuditEntry.created_at < cutoff)).rowcount
