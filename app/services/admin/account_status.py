"""The business account's standing with WhatsApp: the problems account_update webhooks reported and which are still
open, what they stop (`campaign_block`, `direct_block`), the admins' banner (`banner`) and dismissing one.

A problem is open until a later event lifts it (a reinstatement, a reconnection, a new restriction list), its
expiry passes, or an admin dismisses it. Reading it is cheap (a few open rows at most), so the send path asks on
every batch. Problems are kept per sender number when Meta names one (`phone_number_id`); NULL means the whole
account, which is all Meta reports today.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from app.clock import utcnow
from app.extensions import db
from app.models import AccountBlock, AccountProblem, User
from app.services.admin import audit
from app.services.errors import NotFound

B = AccountBlock
SEVERITY = {B.ALL: 0, B.CAMPAIGNS: 1, B.NONE: 2}
HEADLINES = {B.ALL: "WhatsApp has stopped all sending from this account",
             B.CAMPAIGNS: "WhatsApp has restricted this account",
             B.NONE: "Warning from WhatsApp about this account"}


@dataclass(frozen=True)
class NewProblem:
    event: str
    kind: str
    blocks: str
    reason: str
    started_at: datetime
    expires_at: datetime | None = None
    details: dict[str, Any] | None = None
    phone_number_id: str | None = None


@dataclass(frozen=True)
class BannerLine:
    id: int
    headline: str
    reason: str
    since: datetime
    until: datetime | None
    stops_sending: bool


def open_problems(now: datetime | None = None) -> list[AccountProblem]:
    """Problems not lifted, dismissed or expired, the most serious first."""
    now = now or utcnow()
    rows = db.session.scalars(select(AccountProblem).where(
        AccountProblem.lifted_at.is_(None),
        or_(AccountProblem.expires_at.is_(None), AccountProblem.expires_at > now)))
    return sorted(rows, key=lambda row: (SEVERITY.get(row.blocks, 9), -row.started_at.timestamp(), row.id))


def campaign_block(now: datetime | None = None) -> AccountProblem | None:
    """The open problem that stops campaigns from sending or starting, if any."""
    return next((row for row in open_problems(now) if row.blocks in (B.ALL, B.CAMPAIGNS)), None)


def direct_block(now: datetime | None = None) -> AccountProblem | None:
    """The open problem that stops every message, replies included, if any."""
    return next((row for row in open_problems(now) if row.blocks == B.ALL), None)


def launch_problem() -> str | None:
    """Why no campaign may start now, as the launch page says it; None when the account may send."""
    problem = campaign_block()
    if problem is None:
        return None
    return f"Campaigns cannot start while WhatsApp blocks this account: {problem.reason}"


def banner(now: datetime | None = None) -> list[BannerLine]:
    """What the admins' banner shows on every page."""
    return [BannerLine(row.id, HEADLINES.get(row.blocks, HEADLINES[B.NONE]), row.reason, row.started_at,
                       row.expires_at, row.blocks != B.NONE) for row in open_problems(now)]


def record(problem: NewProblem) -> AccountProblem | None:
    """Open a problem (in the caller's transaction) unless the same one is open already (Meta repeats events)."""
    same = db.session.scalar(select(AccountProblem).where(
        AccountProblem.lifted_at.is_(None), AccountProblem.event == problem.event,
        AccountProblem.kind == problem.kind).limit(1))
    if same is not None and (same.expires_at is None or same.expires_at > problem.started_at):
        if problem.expires_at != same.expires_at:
            same.expires_at = problem.expires_at  # Meta moved the end of a restriction
        return None
    row = AccountProblem(phone_number_id=problem.phone_number_id, event=problem.event, kind=problem.kind,
                         blocks=problem.blocks, reason=problem.reason, details=problem.details or {},
                         started_at=problem.started_at, expires_at=problem.expires_at)
    db.session.add(row)
    audit.record("account.problem", f"WhatsApp reported: {problem.reason}", target="whatsapp-account",
                 details={"event": problem.event, "kind": problem.kind}, actor="WhatsApp")
    return row


def lift(events: Iterable[str], at: datetime, by: str, kinds: Iterable[str] | None = None,
         keep_kinds: Iterable[str] = ()) -> int:
    """Close the open problems of these events (and kinds, but not `keep_kinds`) that began by `at`: an older event
    never undoes a newer one. In the caller's transaction."""
    conditions = [AccountProblem.lifted_at.is_(None), AccountProblem.event.in_(list(events)),
                  AccountProblem.started_at <= at, AccountProblem.kind.not_in(list(keep_kinds))]
    if kinds is not None:
        conditions.append(AccountProblem.kind.in_(list(kinds)))
    rows = db.session.scalars(select(AccountProblem).where(*conditions)).all()
    for row in rows:
        row.lifted_at, row.lifted_by = at, by
        audit.record("account.problem_lifted", f"No longer in effect ({by}): {row.reason}"[:500],
                     target="whatsapp-account", details={"event": row.event, "kind": row.kind}, actor="WhatsApp")
    return len(rows)


def dismiss(problem_id: int, user_id: int) -> AccountProblem:
    """An admin says a problem is over (WhatsApp may never send the event that lifts it). Commits."""
    row = db.session.get(AccountProblem, problem_id)
    if row is None or row.lifted_at is not None:
        raise NotFound("That account problem is already closed.")
    user = db.session.get(User, user_id)
    row.lifted_at, row.lifted_by = utcnow(), f"dismissed by {user.email if user else 'an admin'}"
    audit.record("account.problem_dismissed", f"Dismissed the account warning: {row.reason}"[:500],
                 target="whatsapp-account", details={"event": row.event, "kind": row.kind})
    db.session.commit()
    return row
