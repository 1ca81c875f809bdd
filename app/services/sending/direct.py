"""Messages sent on their own rather than as part of a run: inbox replies, auto-replies, opt-out confirmations (and,
as they arrive, bot answers and API sends).

A source queues one with `queue_text` or `queue_template`, in its own transaction, so the message exists exactly once
however often the event behind it is delivered; the direct lane (jobs.sending.send_direct) then sends every due one
through the same claim, shared rate limiter, sender and result recording as a campaign's run. On a pause- or
stop-class error a message sent on its own just waits (with the usual backoff) and tries again; while WhatsApp has
disabled the account (admin.account_status) none is claimed at all.

What a source may ask beyond that is in SEND_ONLY_IF: a condition the contact must still meet at send time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import lazyload

from app.clock import utcnow
from app.extensions import db
from app.models import Contact, Message, MessageSource, MessageStatus
from app.services.admin import account_status
from app.services.sending import claims, message_state, rate_limit, results
from app.services.sending.sender import SendItem, SendPlan, TemplateRef, send_all, whatsapp_settings
from app.whatsapp import callback

S, M = MessageStatus, MessageSource
DIRECT = (Message.run_id.is_(None), Message.direction == "out")
BATCH_SIZE = 100  # replies come a few at a time; a burst of auto-replies still goes out concurrently
DELETED = "The contact was deleted before it was sent."
# A source's condition on the contact at send time, with the reason recorded when it no longer holds.
SEND_ONLY_IF = {
    M.OPT_OUT_CONFIRMATION: (lambda contact: contact.opted_out_at is not None,
                             "The customer opted back in before it was sent."),
    M.API: (lambda contact: contact.opted_out_at is None, "The customer opted out before it was sent."),
}


@dataclass(frozen=True)
class DirectReport:
    claimed: int = 0
    sent: int = 0


def queue_text(contact_id: int, body: str, source: str, now: datetime, **parameters: Any) -> Message:
    """A pending outbound text to the contact, in the caller's transaction."""
    return _queue(text_row(contact_id, body, source, now, **parameters))


def queue_template(contact_id: int, template: TemplateRef, components: list[dict[str, Any]], preview: str,
                   source: str, now: datetime, **parameters: Any) -> Message:
    """A pending outbound template (already rendered into `components`), in the caller's transaction."""
    return _queue(template_row(contact_id, template, components, preview, source, now, **parameters))


def text_row(contact_id: int | None, body: str, source: str, now: datetime, **parameters: Any) -> dict[str, Any]:
    """The messages row queue_text adds, for a source that inserts its rows itself (the API's group commit)."""
    return _row(contact_id, "text", body, source, parameters, now)


def template_row(contact_id: int | None, template: TemplateRef, components: list[dict[str, Any]], preview: str,
                 source: str, now: datetime, **parameters: Any) -> dict[str, Any]:
    """The messages row queue_template adds, for a source that inserts its rows itself."""
    parameters = {"template": template.name, "language": template.language, "components": components, **parameters}
    return _row(contact_id, "template", preview, source, parameters, now)


def _row(contact_id: int | None, kind: str, body: str, source: str, parameters: dict[str, Any],
         now: datetime) -> dict[str, Any]:
    return {"campaign_id": None, "run_id": None, "source": source, "contact_id": contact_id, "direction": "out",
            "message_type": kind, "status": S.PENDING, "body": body, "parameters": parameters, "attempts": 0,
            "created_at": now}


def _queue(row: dict[str, Any]) -> Message:
    message = Message(**row)
    db.session.add(message)
    db.session.flush()
    return message


# Told, in the transaction recording a batch, which contacts it opted out (WhatsApp's 131050): the job passes the
# outbox's announcement, which this package may not import (the contract "sending-sources").
AnnounceOptOuts = Callable[[Sequence[Contact], datetime], Any]


def send_due(announce_opt_outs: AnnounceOptOuts | None = None) -> DirectReport:
    """Claim the due messages (the oldest one per contact, so a customer reads them in order), send them at the
    shared rate and record the results. Commits."""
    now = utcnow()
    if account_status.direct_block(now) is not None:
        db.session.commit()
        return DirectReport()  # held while WhatsApp lets the account send nothing; the sweep sends them after
    ids = claims.claim(BATCH_SIZE, now, *DIRECT)
    if not ids:
        return DirectReport()
    items = _prepare(ids, now)
    settings = whatsapp_settings()
    plan = SendPlan(settings.phone_number_id, rate_limit.send_limits(settings.phone_number_id, 0, None))
    db.session.remove()  # no connection is held while we wait on the rate limiter and on WhatsApp
    outcomes = send_all(plan, items, settings)
    results.record(outcomes, utcnow(), _settle(announce_opt_outs))
    return DirectReport(len(ids), sum(1 for outcome in outcomes if outcome.result is not None and outcome.result.ok))


def _prepare(ids: list[int], now: datetime) -> list[SendItem]:
    """What to send of the claimed messages; the others are cancelled (their contact no longer qualifies) or given
    back (a contact's later message waits for the earlier one). Commits."""
    messages = db.session.scalars(select(Message).where(Message.id.in_(ids)).order_by(Message.id)
                                  .options(lazyload(Message.contact))).all()
    contacts = {contact.id: contact for contact in db.session.scalars(
        select(Contact).where(Contact.id.in_({message.contact_id for message in messages})))}
    items, later, seen, totals = [], [], set(), message_state.new_totals()
    for message in messages:
        contact = contacts.get(message.contact_id)
        reason = _reason_not_to_send(message, contact)
        if reason is not None:
            message_state.move(message, S.CANCELLED, now, totals)
            message.skip_reason = reason
        elif message.contact_id in seen:
            later.append(message.id)
        else:
            seen.add(message.contact_id)
            items.append(_item(message, contact.wa_id))
    message_state.add_to_counters(totals)
    db.session.commit()
    claims.release(later)
    return items


def _reason_not_to_send(message: Message, contact: Contact | None) -> str | None:
    if contact is None or contact.deleted_at is not None:
        return DELETED
    condition = SEND_ONLY_IF.get(message.source)
    if condition is not None and not condition[0](contact):
        return condition[1]
    return None


def _item(message: Message, to: str) -> SendItem:
    data = callback.encode(message.id)
    if message.message_type == "template":
        parameters = message.parameters or {}
        return SendItem(message.id, to, data, template=TemplateRef(parameters["template"], parameters["language"]),
                        components=parameters.get("components") or [])
    return SendItem(message.id, to, data, text=message.body or "")


def _settle(announce_opt_outs: AnnounceOptOuts | None) -> results.Settle:
    def settle(verdict: results.Verdict, now: datetime, totals: message_state.Totals) -> None:
        _wait_after_halt(verdict, now, totals)
        if announce_opt_outs is not None and verdict.opted_out:
            announce_opt_outs(verdict.opted_out, now)

    return settle


def _wait_after_halt(verdict: results.Verdict, now: datetime, totals: message_state.Totals) -> None:
    """Given back unsent (the rate limiter had no slot soon, or the sender answered with a pause- or stop-class
    error): try again after the usual backoff instead of at once."""
    for message in verdict.released:
        if message.next_attempt_at is None or message.next_attempt_at <= now:
            message.next_attempt_at = now + timedelta(seconds=results.retry_delay(max(1, message.attempts),
                                                                                  verdict.halted))


def next_due_in(now: datetime | None = None) -> float | None:
    """Seconds until the next message sent on its own is due (0 when one is due now), or None when none waits."""
    now = now or utcnow()
    if account_status.direct_block(now) is not None:
        db.session.commit()
        return None  # nothing may go now; the periodic sweep asks again
    pending = (Message.status == S.PENDING, *DIRECT)
    if db.session.scalar(select(exists().where(*pending, claims.due(now)))):
        wait = 0.0
    else:
        earliest = db.session.scalar(select(func.min(Message.next_attempt_at)).where(*pending))
        wait = max(0.0, (earliest - now).total_seconds()) if earliest is not None else None
    db.session.commit()
    return wait
