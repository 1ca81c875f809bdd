"""Writing a batch's send results: message statuses, errors, retries and counters in one transaction.

One policy for every source. What happens to a failed send is decided by app/whatsapp/errors.py (the one error
table): accepted → sent; permanent → failed with a plain explanation; retryable → back to pending after an
exponential backoff with jitter (never sooner than WhatsApp asked), failed once out of tries; an unknown outcome
stays in `sending` for a status webhook or the sweeper to settle; a pause- or stop-class error is not the message's
fault: it goes back to pending with its tries intact, and the batch's `Verdict` carries the error to its source,
which decides what that means (a campaign pauses; a message sent on its own waits and tries again).

Rows are locked before they are read, so a status webhook settling the same message at the same moment is never
overwritten: messages first, then whatever the source locks in `settle`, the order status webhooks take.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, select, update

from app.extensions import db
from app.models import Contact, Message, MessageStatus, OptOutSource
from app.services.sending import message_state
from app.services.sending.claims import hold_write_lock
from app.services.sending.sender import Outcome
from app.whatsapp.client import SendResult
from app.whatsapp.errors import DAY_SECONDS, ErrorAction, ErrorInfo

S = MessageStatus


@dataclass
class Verdict:
    """What the batch as a whole learned, for its source to act on in `settle`."""

    pause: ErrorInfo | None = None  # a pause-class error: this source should stop sending for now
    stop: ErrorInfo | None = None  # a stop-class error: the sender number itself is unusable
    released: list[Message] = field(default_factory=list)  # back to pending in this batch, unsent
    # Contacts this batch opted out (WhatsApp answered 131050): sending may not import the outbox (the contract
    # "sending-sources"), so the source announces them in `settle`, in this transaction.
    opted_out: list[Contact] = field(default_factory=list)

    @property
    def halted(self) -> ErrorInfo | None:
        return self.stop or self.pause


# The source's part, run inside the transaction after the messages are written: (verdict, now, totals).
Settle = Callable[[Verdict, datetime, message_state.Totals], None]


def record(outcomes: Sequence[Outcome], now: datetime, settle: Settle | None = None) -> Verdict:
    """Apply every outcome of one batch, the source's `settle`, then the counters, in one transaction. Commits."""
    hold_write_lock()
    accepted = {outcome.message_id: outcome.result for outcome in outcomes
                if outcome.result is not None and outcome.result.ok}
    rows = _locked_rows(sorted(outcome.message_id for outcome in outcomes))
    others = [outcome for outcome in outcomes if outcome.message_id not in accepted]
    messages = _locked_messages([outcome.message_id for outcome in others]) if others else {}
    totals, verdict = message_state.new_totals(), Verdict()
    _record_accepted([row for row in rows if row.id in accepted], accepted, now, totals)
    for outcome in others:
        message = messages.get(outcome.message_id)
        if message is not None:
            _apply(message, outcome.result, now, totals, verdict)
    if settle is not None:
        settle(verdict, now, totals)
    message_state.add_to_counters(totals)
    db.session.commit()
    return verdict


@dataclass
class _Row:
    """The columns an accepted send changes, so the common case needs no ORM objects (see _record_accepted)."""

    id: int
    run_id: int | None
    status: str
    attempts: int
    wamid: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    failed_at: datetime | None


def _locked_rows(message_ids: list[int]) -> list[_Row]:
    """Lock every message of the batch, in id order, and read what an accepted send changes."""
    columns = [getattr(Message, name) for name in _Row.__dataclass_fields__]
    statement = select(*columns).where(Message.id.in_(message_ids)).order_by(Message.id).with_for_update(of=Message)
    return [_Row(*row) for row in db.session.execute(statement)]


def _locked_messages(message_ids: list[int]) -> dict[int, Message]:
    statement = (select(Message).where(Message.id.in_(message_ids)).order_by(Message.id)
                 .with_for_update(of=Message).execution_options(populate_existing=True))
    return {message.id: message for message in db.session.scalars(statement).unique()}


def _record_accepted(rows: list[_Row], results: dict[int, SendResult], now: datetime, totals) -> None:
    """What _apply does for sends WhatsApp accepted, for the whole batch in an executemany UPDATE or two.

    Most of a batch is accepted, and loading and flushing ORM objects for them cost more CPU than the sends did."""
    changes = []
    for row in rows:
        row.attempts += 1
        row.wamid = row.wamid or results[row.id].wamid
        change = {"row_id": row.id, "attempts": row.attempts, "wamid": row.wamid}
        if row.status == S.SENDING:  # otherwise a status webhook settled it meanwhile: it knows better
            message_state.move(row, S.SENT, now, totals)
            change.update(status=row.status, sent_at=row.sent_at, error_code=None, error_title=None,
                          error_detail=None)
        changes.append(change)
    table = Message.__table__
    for keys in {tuple(change) for change in changes}:  # one statement per shape: sent, or settled meanwhile
        values = {key: bindparam(key) for key in keys if key != "row_id"}
        statement = update(table).where(table.c.id == bindparam("row_id")).values(updated_at=now, **values)
        db.session.execute(statement, [change for change in changes if tuple(change) == keys])


def _apply(message: Message, result: SendResult | None, now: datetime, totals, verdict: Verdict) -> None:
    if result is not None:
        message.attempts += 1
        if result.ok and message.wamid is None:
            message.wamid = result.wamid
    if message.status != S.SENDING:
        return  # a status webhook settled it while we were waiting for the answer: it knows better
    if result is None:
        back_to_pending(message, now, totals, verdict, later=None)
    elif result.ok:
        message.error_code = message.error_title = message.error_detail = None
        message_state.move(message, S.SENT, now, totals)
    elif result.outcome_unknown:
        _ambiguous(message, result, now)
    else:
        _failed_send(message, result, now, totals, verdict)


def _ambiguous(message: Message, result: SendResult, now: datetime) -> None:
    # It may have reached WhatsApp: never resend blindly. A status webhook settles it, or the sweeper retries it
    # after the grace period, counted from now.
    info = result.error_info()
    message.claimed_at = now
    message.error_code, message.error_title = None, info.title if info else result.error_title
    message.error_detail = info.explanation if info else result.error_message


def _failed_send(message: Message, result: SendResult, now: datetime, totals, verdict: Verdict) -> None:
    info = result.error_info()
    assert info is not None
    message.error_code, message.error_title, message.error_detail = info.code, info.title, info.explanation
    if info.recipient_opted_out:
        # The customer turned marketing messages off in WhatsApp: respect it for every future send too.
        if message.contact.record_opt_out(OptOutSource.USER_PREFERENCES, now):
            verdict.opted_out.append(message.contact)
    if info.action == ErrorAction.PERMANENT:
        message_state.move(message, S.FAILED, now, totals)
    elif info.action in (ErrorAction.PAUSE, ErrorAction.STOP):
        message.attempts -= 1  # not this message's fault: it keeps all its tries
        if info.action == ErrorAction.PAUSE:
            verdict.pause = info
        else:
            verdict.stop = info
        back_to_pending(message, now, totals, verdict, later=None)
    elif message.attempts >= max_attempts():
        message_state.move(message, S.FAILED, now, totals)
    else:
        back_to_pending(message, now, totals, verdict, later=retry_delay(message.attempts, info, result))


def back_to_pending(message: Message, now: datetime, totals, verdict: Verdict, later: float | None) -> None:
    message_state.move(message, S.PENDING, now, totals)
    message.claimed_at = None
    message.next_attempt_at = now + timedelta(seconds=later) if later else message.next_attempt_at
    verdict.released.append(message)


def max_attempts() -> int:
    return int(current_app.config["SEND_MAX_ATTEMPTS"])


def retry_delay(attempts: int, info: ErrorInfo | None = None, result: SendResult | None = None) -> float:
    """Seconds until the next try: exponential in the tries so far, never sooner than WhatsApp asked (Retry-After
    or the error's own minimum), a day for a recipient-deferred message, plus up to 25% jitter."""
    config = current_app.config
    base = float(config["SEND_RETRY_BASE_SECONDS"])
    cap = float(config["SEND_RETRY_MAX_SECONDS"])
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    floor = max(info.retry_after_min if info else 0, (result.retry_after or 0) if result else 0)
    if info is not None and info.action == ErrorAction.DEFER_RECIPIENT:
        floor = max(floor, DAY_SECONDS)
    delay = max(delay, floor)
    return delay + random.uniform(0, delay / 4)


def describe(info: ErrorInfo) -> str:
    """An error as the reason shown where sending stopped: title, code and the plain explanation."""
    code = f" (error {info.code})" if info.code is not None else ""
    return f"{info.title}{code}. {info.explanation}"
