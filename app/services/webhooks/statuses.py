"""Delivery statuses from webhooks, applied set-based through the one message transition table.

Order-independent and idempotent: a status only ever moves a message forward (message_state.move), a status that
arrives late still corrects its own timestamp to the earlier time WhatsApp reported, and a duplicate changes
nothing. The statuses of a whole batch of events are applied together: one locked read of the messages they name,
the state machine in Python, one executemany for the rows that changed. Counter changes are collected in `totals`
for message_state.add_to_counters in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select, update

from app.clock import utcnow
from app.extensions import db
from app.models import Contact, Message, MessageStatus, OptOutSource
from app.services.api.outbound import events as outbound_events
from app.services.sending import message_state
from app.whatsapp import callback
from app.whatsapp.errors import ErrorAction, classify
from app.whatsapp.events import StatusEvent, WebhookError

S = MessageStatus
TRACKED = frozenset(message_state.TIMESTAMPS)  # sent, delivered, read, failed; others ("played", …) are ignored
REPORTED_FAILURE = "WhatsApp reported that this message could not be delivered."
IN_CHUNK = 2_000  # values per IN (…): well inside SQLite's and PostgreSQL's limits on bound parameters

# What each status did; the processing step turns these into each event's outcome.
APPLIED, UNCHANGED, UNKNOWN, IGNORED = "applied", "unchanged", "unknown", "ignored"


@dataclass(slots=True)
class Target:
    """The columns of one outbound message that a status reads or writes (a plain row, not an ORM object)."""

    id: int
    campaign_id: int | None
    run_id: int | None
    contact_id: int
    status: str
    wamid: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None
    error_code: int | None
    error_title: str | None
    error_detail: str | None
    pricing_category: str | None


COLUMNS = [getattr(Message, name) for name in Target.__dataclass_fields__]
WRITTEN = [name for name in Target.__dataclass_fields__ if name not in ("id", "campaign_id", "run_id", "contact_id")]


@dataclass
class StatusResult:
    verdicts: list[str] = field(default_factory=list)  # one per status given, in order: APPLIED, UNKNOWN, …
    pauses: dict[int, str] = field(default_factory=dict)  # campaign id -> why a failure should pause it


def apply_statuses(statuses: Sequence[StatusEvent], totals: message_state.Totals, now: datetime) -> StatusResult:
    """Apply every status we track to its message; unknown ones get the verdict UNKNOWN for a later retry."""
    result = StatusResult()
    targets = _find_messages([status for status in statuses if status.status in TRACKED])
    before = {target.id: _written(target) for target in targets.values()}
    for status in statuses:
        target = targets.get(status.wamid)
        if status.status not in TRACKED:
            result.verdicts.append(IGNORED)
        elif target is None:
            result.verdicts.append(UNKNOWN)
        else:
            result.verdicts.append(APPLIED if _apply(target, status, totals, now, result) else UNCHANGED)
    _write([target for target in targets.values() if _written(target) != before[target.id]], now)
    outbound_events.message_statuses(statuses, result.verdicts, targets, now)  # the outbox, if anyone listens
    return result


def _find_messages(statuses: list[StatusEvent]) -> dict[str, Target]:
    """Our outbound messages by wamid, falling back to the id in biz_opaque_callback_data (locked for update)."""
    found = {target.wamid: target for target in _locked(Message.wamid, {s.wamid for s in statuses})}
    # Only the first status of a send carries the callback data; later ones for the same wamid have none.
    callbacks = {s.wamid: parsed for s in statuses
                 if s.wamid not in found and (parsed := callback.decode(s.biz_opaque_callback_data))}
    if not callbacks:
        return found
    by_id = {target.id: target for target in _locked(Message.id, {data.message_id for data in callbacks.values()})}
    for wamid, data in callbacks.items():
        target = by_id.get(data.message_id)
        if target is not None and _callback_names(target, data):
            # A send whose answer we never recorded (a crash mid-send): the status tells us its wamid.
            if target.wamid is None:
                target.wamid = wamid
            found[wamid] = target
    return found


def _locked(column, values: set) -> list[Target]:
    """Rows whose `column` is in `values`, locked in id order so concurrent batches cannot deadlock on them."""
    ordered, rows = sorted(values), []
    for start in range(0, len(ordered), IN_CHUNK):
        statement = (select(*COLUMNS).where(column.in_(ordered[start:start + IN_CHUNK]), Message.direction == "out")
                     .order_by(Message.id).with_for_update(of=Message))
        rows += [Target(*row) for row in db.session.execute(statement)]
    return rows


def _callback_names(target: Target, data: callback.Callback) -> bool:
    """The callback must name the message's run (or, from older sends, its campaign); or, for a message sent on
    its own, say so."""
    if data.run_id is not None:
        return target.run_id == data.run_id
    if data.campaign_id is not None:
        return target.campaign_id == data.campaign_id
    return target.run_id is None and target.campaign_id is None


def _written(target: Target) -> tuple:
    return tuple(getattr(target, name) for name in WRITTEN)


def _write(changed: Iterable[Target], now: datetime) -> None:
    rows = [{"id": target.id, "updated_at": now, **dict(zip(WRITTEN, _written(target), strict=True))}
            for target in changed]
    if rows:
        db.session.execute(update(Message), rows)  # ORM bulk UPDATE by primary key: one executemany


def _apply(target: Target, status: StatusEvent, totals: message_state.Totals, now: datetime,
           result: StatusResult) -> bool:
    at = status.timestamp or now
    if target.status == S.PENDING and status.status != S.FAILED:
        # Put back for a retry after an ambiguous send, but WhatsApp has it: settle it instead of sending twice.
        message_state.move(target, S.SENDING, at, totals)
    moved = message_state.move(target, status.status, at, totals)
    if moved and status.status == S.FAILED:
        _record_failure(target, status, at, result)
    _note_pricing(target, status)
    return _keep_earliest(target, status.status, at) or moved


def _keep_earliest(target: Target, status: str, at: datetime) -> bool:
    """A status that arrives after a later one still lowers its own time and those it implies, so each timestamp ends
    as the earliest WhatsApp reported for it in any order (read first fills delivered_at; delivered then lowers it)."""
    lowered = False
    for column in message_state.TIMESTAMPS[status]:
        current = getattr(target, column)
        if current is not None and at < current:
            setattr(target, column, at)
            lowered = True
    return lowered


def _record_failure(target: Target, status: StatusEvent, at: datetime, result: StatusResult) -> None:
    error = status.errors[0] if status.errors else WebhookError(None, None, None, None)
    info = classify(error.code) if error.code is not None else None
    target.error_code = error.code
    target.error_title = (error.title or (info.title if info else "Not delivered"))[:255]
    target.error_detail = _failure_text(info.explanation if info else REPORTED_FAILURE, error.details or error.message)
    if info is not None and info.recipient_opted_out:
        # The customer turned marketing messages off in WhatsApp: respect it for every future send too.
        contact = db.session.get(Contact, target.contact_id, with_for_update=True)
        if contact is not None and contact.record_opt_out(OptOutSource.USER_PREFERENCES, at):
            outbound_events.contact_opted(contact, True, OptOutSource.USER_PREFERENCES, at, utcnow())
    if info is not None and info.action == ErrorAction.PAUSE and target.campaign_id is not None:
        result.pauses[target.campaign_id] = f"{info.title}: {info.explanation}"


def _failure_text(explanation: str, said: str | None) -> str:
    if not said or said.strip().rstrip(".") in explanation:
        return explanation
    return f"{explanation} WhatsApp said: {said.strip()}"


def _note_pricing(target: Target, status: StatusEvent) -> None:
    if status.pricing_category and target.pricing_category is None:
        target.pricing_category = status.pricing_category[:32]
