"""Delivery statuses from webhooks, applied in bulk through the one message transition table.

Order-independent and idempotent: a status only ever moves a message forward (message_state.move), a status that
arrives late still corrects its own timestamp to the earlier time WhatsApp reported, and a duplicate changes
nothing. Counter changes are collected in `totals` for message_state.add_to_counters in the same transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import lazyload

from app.extensions import db
from app.models import Message, MessageStatus, OptOutSource
from app.services import message_state
from app.whatsapp.errors import ErrorAction, classify
from app.whatsapp.events import StatusEvent, WebhookError

S = MessageStatus
OWN_TIMESTAMP = {S.SENT: "sent_at", S.DELIVERED: "delivered_at", S.READ: "read_at", S.FAILED: "failed_at"}
REPORTED_FAILURE = "WhatsApp reported that this message could not be delivered."
CONFIRMATION_TAG = "optout"  # biz_opaque_callback_data of our own replies: "optout:<message id>"


@dataclass
class StatusResult:
    unknown: list[str] = field(default_factory=list)  # wamids of statuses whose message we cannot find (yet)
    pauses: dict[int, str] = field(default_factory=dict)  # campaign id -> why a failure should pause it


def apply_statuses(statuses: Iterable[StatusEvent], totals: Mapping[int, Counter], counts: Counter,
                   now: datetime) -> StatusResult:
    """Apply every status we track to its message; unknown ones are returned for a later retry."""
    result = StatusResult()
    tracked = [status for status in statuses if status.status in OWN_TIMESTAMP]
    counts["statuses ignored"] += sum(1 for status in statuses if status.status not in OWN_TIMESTAMP)
    messages = _find_messages(tracked)
    for status in tracked:
        message = messages.get(status.wamid)
        if message is None:
            result.unknown.append(status.wamid)
        elif _apply(message, status, totals, now, result):
            counts["statuses applied"] += 1
        else:
            counts["statuses unchanged"] += 1
    counts["unknown messages"] += len(set(result.unknown))
    return result


def callback_message_id(data: str | None) -> tuple[str, int] | None:
    """("c12", 345) from biz_opaque_callback_data "c12:345": the message id is after the last ':'."""
    head, separator, tail = (data or "").rpartition(":")
    if not separator or not tail.isdigit() or len(tail) > 18:
        return None
    return head, int(tail)


def _find_messages(statuses: list[StatusEvent]) -> dict[str, Message]:
    """Our outbound messages by wamid, falling back to the id in biz_opaque_callback_data (locked for update)."""
    found = {message.wamid: message for message in _locked(Message.wamid.in_({s.wamid for s in statuses}))}
    callbacks = {s.wamid: callback_message_id(s.biz_opaque_callback_data) for s in statuses if s.wamid not in found}
    callbacks = {wamid: parsed for wamid, parsed in callbacks.items() if parsed}
    if not callbacks:
        return found
    by_id = {message.id: message for message in _locked(Message.id.in_({mid for _, mid in callbacks.values()}))}
    for wamid, (head, message_id) in callbacks.items():
        message = by_id.get(message_id)
        if message is not None and _callback_names(message, head):
            # A send whose answer we never recorded (a crash mid-send): the status tells us its wamid.
            if message.wamid is None:
                message.wamid = wamid
            found[wamid] = message
    return found


def _locked(condition) -> list[Message]:
    statement = (select(Message).where(condition, Message.direction == "out").options(lazyload(Message.contact))
                 .order_by(Message.id).with_for_update(of=Message).execution_options(populate_existing=True))
    return list(db.session.scalars(statement))


def _callback_names(message: Message, head: str) -> bool:
    """"c<campaign id>" must name the message's campaign; anything else only our own campaign-less messages."""
    if head[:1] == "c" and head[1:].isdigit():
        return message.campaign_id == int(head[1:])
    return message.campaign_id is None


def _apply(message: Message, status: StatusEvent, totals: Mapping[int, Counter], now: datetime,
           result: StatusResult) -> bool:
    at = status.timestamp or now
    if message.status == S.PENDING and status.status != S.FAILED:
        # Put back for a retry after an ambiguous send, but WhatsApp has it: settle it instead of sending twice.
        message_state.move(message, S.SENDING, at, totals)
    moved = message_state.move(message, status.status, at, totals)
    if moved and status.status == S.FAILED:
        _record_failure(message, status, result)
    _note_pricing(message, status)
    return _keep_earliest(message, status.status, at) or moved


def _keep_earliest(message: Message, status: str, at: datetime) -> bool:
    """A status that arrives after a later one still gets its own time (read first fills delivered_at with its own)."""
    column = OWN_TIMESTAMP[status]
    current = getattr(message, column)
    if current is None or at >= current:
        return False
    setattr(message, column, at)
    return True


def _record_failure(message: Message, status: StatusEvent, result: StatusResult) -> None:
    error = status.errors[0] if status.errors else WebhookError(None, None, None, None)
    info = classify(error.code) if error.code is not None else None
    message.error_code = error.code
    message.error_title = (error.title or (info.title if info else "Not delivered"))[:255]
    message.error_detail = _failure_text(info.explanation if info else REPORTED_FAILURE, error.details or error.message)
    if info is not None and info.recipient_opted_out:
        # The customer turned marketing messages off in WhatsApp: respect it for every future send too.
        message.contact.record_opt_out(OptOutSource.USER_PREFERENCES, status.timestamp)
    if info is not None and info.action == ErrorAction.PAUSE and message.campaign_id is not None:
        result.pauses[message.campaign_id] = f"{info.title}: {info.explanation}"


def _failure_text(explanation: str, said: str | None) -> str:
    if not said or said.strip().rstrip(".") in explanation:
        return explanation
    return f"{explanation} WhatsApp said: {said.strip()}"


def _note_pricing(message: Message, status: StatusEvent) -> None:
    if status.pricing_category and message.pricing_category is None:
        message.pricing_category = status.pricing_category[:32]
