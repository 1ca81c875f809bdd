"""Writing a batch's send results: message statuses, errors, retries and counters in one transaction.

What happens to a failed send is decided by app/whatsapp/errors.py (the one error table). Rows are locked before
they are read, so a status webhook settling the same message at the same moment is never overwritten: messages
first, then their campaign, the same order the webhook processing takes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, select, update

from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus, OptOutSource
from app.services.admin import audit
from app.services.campaigns import campaign_state
from app.services.sending import message_state
from app.services.sending.claims import hold_write_lock, lock_campaign
from app.services.sending.sender import Outcome
from app.whatsapp.client import SendResult
from app.whatsapp.errors import DAY_SECONDS, ErrorAction, ErrorInfo

S, C = MessageStatus, CampaignStatus
STOP_REASON_PREFIX = "All sending from this number stopped: "


@dataclass
class _Verdict:
    """What the batch as a whole learned: a reason to pause this campaign, or to stop the whole sender."""

    pause: ErrorInfo | None = None
    stop: ErrorInfo | None = None
    released: list[Message] = field(default_factory=list)  # back to pending in this batch


def record(campaign_id: int, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Apply every outcome of one batch, then the counters and any pause, in one transaction. Commits."""
    hold_write_lock()
    accepted = {outcome.message_id: outcome.result for outcome in outcomes
                if outcome.result is not None and outcome.result.ok}
    rows = _locked_rows(sorted(outcome.message_id for outcome in outcomes))
    others = [outcome for outcome in outcomes if outcome.message_id not in accepted]
    messages = _locked_messages([outcome.message_id for outcome in others]) if others else {}
    campaign = lock_campaign(campaign_id)  # after the messages: the order status webhooks lock in
    totals, verdict = message_state.new_totals(), _Verdict()
    _record_accepted([row for row in rows if row.id in accepted], accepted, now, totals)
    for outcome in others:
        message = messages.get(outcome.message_id)
        if message is not None:
            _apply(message, outcome.result, now, totals, verdict)
    if campaign is not None:
        _settle_campaign(campaign, verdict, now, totals)
    message_state.add_to_counters(totals)
    db.session.commit()


@dataclass
class _Row:
    """The columns an accepted send changes, so the common case needs no ORM objects (see _record_accepted)."""

    id: int
    campaign_id: int | None
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


def _apply(message: Message, result: SendResult | None, now: datetime, totals, verdict: _Verdict) -> None:
    if result is not None:
        message.attempts += 1
        if result.ok and message.wamid is None:
            message.wamid = result.wamid
    if message.status != S.SENDING:
        return  # a status webhook settled it while we were waiting for the answer: it knows better
    if result is None:
        _back_to_pending(message, now, totals, verdict, later=None)
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


def _failed_send(message: Message, result: SendResult, now: datetime, totals, verdict: _Verdict) -> None:
    info = result.error_info()
    assert info is not None
    message.error_code, message.error_title, message.error_detail = info.code, info.title, info.explanation
    if info.recipient_opted_out:
        # The customer turned marketing messages off in WhatsApp: respect it for every future send too.
        message.contact.record_opt_out(OptOutSource.USER_PREFERENCES, now)
    if info.action == ErrorAction.PERMANENT:
        message_state.move(message, S.FAILED, now, totals)
    elif info.action in (ErrorAction.PAUSE, ErrorAction.STOP):
        message.attempts -= 1  # not this message's fault: it keeps all its tries
        if info.action == ErrorAction.PAUSE:
            verdict.pause = info
        else:
            verdict.stop = info
        _back_to_pending(message, now, totals, verdict, later=None)
    elif message.attempts >= max_attempts():
        message_state.move(message, S.FAILED, now, totals)
    else:
        _back_to_pending(message, now, totals, verdict, later=retry_delay(message.attempts, info, result))


def _back_to_pending(message: Message, now: datetime, totals, verdict: _Verdict, later: float | None) -> None:
    message_state.move(message, S.PENDING, now, totals)
    message.claimed_at = None
    message.next_attempt_at = now + timedelta(seconds=later) if later else message.next_attempt_at
    verdict.released.append(message)


def max_attempts() -> int:
    return int(current_app.config["SEND_MAX_ATTEMPTS"])


def retry_delay(attempts: int, info: ErrorInfo, result: SendResult | None = None) -> float:
    """Seconds until the next try: exponential in the tries so far, never sooner than WhatsApp asked (Retry-After
    or the error's own minimum), a day for a recipient-deferred message, plus up to 25% jitter."""
    config = current_app.config
    base = float(config["SEND_RETRY_BASE_SECONDS"])
    cap = float(config["SEND_RETRY_MAX_SECONDS"])
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    floor = max(info.retry_after_min, (result.retry_after or 0) if result else 0)
    if info.action == ErrorAction.DEFER_RECIPIENT:
        floor = max(floor, DAY_SECONDS)
    delay = max(delay, floor)
    return delay + random.uniform(0, delay / 4)


def _settle_campaign(campaign: Campaign, verdict: _Verdict, now: datetime, totals) -> None:
    if campaign.status == C.CANCELLED:
        for message in verdict.released:  # cancelled while this batch was out: these are not sent now
            message_state.move(message, S.CANCELLED, now, totals)
    if verdict.stop is not None:
        stop_sender(campaign.phone_number_id, verdict.stop)
    elif verdict.pause is not None and campaign.status == C.RUNNING:
        pause(campaign, _describe(verdict.pause))


def stop_sender(phone_number_id: str, info: ErrorInfo) -> list[int]:
    """Pause every running campaign of this sender: its account or token is unusable until staff fix it."""
    running = db.session.scalars(select(Campaign).where(Campaign.phone_number_id == phone_number_id,
                                                        Campaign.status == C.RUNNING)
                                .with_for_update(of=Campaign))
    reason = STOP_REASON_PREFIX + _describe(info)
    return [pause(campaign, reason) for campaign in running]


def pause(campaign: Campaign, reason: str) -> int:
    """Pause a running campaign on the engine's behalf (in the session), with an audit entry."""
    campaign_state.transition(campaign, C.PAUSED, reason=reason)
    audit.record("campaign.pause", f"Paused campaign “{campaign.name}” automatically: {reason}"[:500],
                 target=f"campaign:{campaign.id}", actor="system")
    return campaign.id


def _describe(info: ErrorInfo) -> str:
    code = f" (error {info.code})" if info.code is not None else ""
    return f"{info.title}{code}. {info.explanation}"
