"""Processing stored webhook events: parse them, apply everything in them in one transaction, record the outcomes.

A batch of claimed events is one transaction. The statuses of all of them are applied together, set-based
(webhook_statuses); customer messages, opt-outs, template and account events, which are rare, event by event.
A part we do not handle is never reported as applied: the outcome then starts with UNHANDLED, which the admin page
lists among the problems. Idempotent
and order-independent (see webhook_statuses, inbound, opt_out). Statuses for messages we cannot find yet keep the
event unfinished so the sweeper retries it; after RETRY_UNKNOWN_FOR it is finished as orphaned, with the unknown
wamids in its outcome for inspection.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.clock import utcnow
from app.extensions import db
from app.models import Campaign
from app.services.inbox import auto_replies
from app.services.sending import message_state
from app.services.webhooks import account_updates, inbound, intake, opt_out, template_updates
from app.services.webhooks import statuses as webhook_statuses
from app.services.webhooks.intake import ClaimedEvent, Outcome
from app.whatsapp.events import (
    AccountUpdateEvent,
    Envelope,
    ErrorEvent,
    TemplateCategoryEvent,
    TemplateQualityEvent,
    TemplateStatusEvent,
    UnhandledEvent,
    UserPreferenceEvent,
)
from app.whatsapp.webhook import parse_envelope

log = logging.getLogger(__name__)
RETRY_UNKNOWN_FOR = timedelta(minutes=15)
WAITING = "waiting"  # outcome prefix: everything but the unknown statuses was applied and committed
UNHANDLED = "unhandled"  # outcome prefix: the rest was applied, but some part of the event was not understood
UNHANDLED_PARTS = "unhandled parts"
SHOWN_WAMIDS = 20
VERDICT_LABELS = {webhook_statuses.APPLIED: "statuses applied", webhook_statuses.UNCHANGED: "statuses unchanged",
                  webhook_statuses.IGNORED: "statuses ignored"}


@dataclass
class EventReport:
    event_id: int
    finished: bool
    outcome: str
    queued: int = 0  # messages queued to be sent on their own (opt-out confirmations, auto-replies)


def process_event(event_id: int, now: datetime | None = None) -> EventReport | None:
    """Apply one stored event and commit; None when it was already finished (or is being processed elsewhere)."""
    event = intake.claim(event_id)
    if event is None:
        db.session.rollback()
        return None
    return process_claimed([event], now)[0]


def process_claimed(events: Sequence[ClaimedEvent], now: datetime | None = None) -> list[EventReport]:
    """Apply events claimed in this transaction and commit; on any error roll all of it back and re-raise."""
    try:
        reports = _apply_all(events, now or utcnow())
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return reports


def _apply_all(events: Sequence[ClaimedEvent], now: datetime) -> list[EventReport]:
    """Statuses of every event in one pass, then the rest event by event; counters change with the rows they count."""
    envelopes = [parse_envelope(event.body.encode("utf-8")) for event in events]
    totals = message_state.new_totals()
    statuses = [status for envelope in envelopes for status in envelope.statuses]
    applied = webhook_statuses.apply_statuses(statuses, totals, now)
    verdicts = iter(applied.verdicts)
    reports = [_apply_event(event, envelope, verdicts, totals, now) for event, envelope in zip(events, envelopes,
                                                                                                strict=True)]
    message_state.add_to_counters(totals)
    for campaign_id, reason in sorted(applied.pauses.items()):
        template_updates.pause_running_campaigns(Campaign.id == campaign_id, reason)
    intake.record_outcomes(Outcome(report.event_id, report.outcome, now if report.finished else None)
                                   for report in reports)
    return reports


def _apply_event(event: ClaimedEvent, envelope: Envelope, verdicts: Iterator[str], totals: message_state.Totals,
                 now: datetime) -> EventReport:
    if not envelope.ok:
        log.warning("webhook event %s rejected: %s", event.id, envelope.error)
        return EventReport(event.id, True, f"rejected: {envelope.error}")
    counts, unknown = Counter(), []
    for status in envelope.statuses:
        verdict = next(verdicts)
        if verdict == webhook_statuses.UNKNOWN:
            unknown.append(status.wamid)
        else:
            counts[VERDICT_LABELS[verdict]] += 1
    counts["unknown messages"] += len(set(unknown))
    # A retry of a waiting event applied the rest the first time; most events hold nothing but statuses.
    statuses_only = (event.outcome or "").startswith(WAITING) or len(envelope.statuses) == len(envelope.events)
    queued = 0 if statuses_only else _apply_the_rest(envelope, totals, counts, now)
    return _report(event, counts, unknown, queued, now)


def _apply_the_rest(envelope: Envelope, totals: message_state.Totals, counts: Counter, now: datetime) -> int:
    """Customer messages, opt-outs, template and account events; returns how many messages it queued to send."""
    stored = inbound.store_messages(envelope.messages, totals, counts, now)
    confirmations = opt_out.handle_messages(stored, counts, now)
    replies = auto_replies.on_inbound(stored, now)  # inbox state, then rules
    counts["auto-replies queued"] += replies
    opt_out.handle_preferences(envelope.of_type(UserPreferenceEvent), counts, now)
    template_events = envelope.of_type(TemplateStatusEvent | TemplateCategoryEvent | TemplateQualityEvent)
    template_updates.apply_template_events(template_events, counts)
    account_updates.apply_account_updates(envelope.of_type(AccountUpdateEvent), counts, now)
    _note_unhandled(envelope, counts)
    return len(confirmations) + replies


def _report(event: ClaimedEvent, counts: Counter, unknown: list[str], queued: int, now: datetime) -> EventReport:
    summary = _summary(counts)
    if not unknown:
        unhandled = any(label.startswith(UNHANDLED_PARTS) and amount for label, amount in counts.items())
        return EventReport(event.id, True, f"{UNHANDLED}: {summary}" if unhandled else summary, queued)
    shown = ", ".join(sorted(set(unknown))[:SHOWN_WAMIDS])
    if now - event.received_at >= RETRY_UNKNOWN_FOR:
        log.warning("webhook event %s orphaned: no message for %s", event.id, shown)
        return EventReport(event.id, True, f"orphaned: no message found for {shown}; {summary}", queued)
    return EventReport(event.id, False, f"{WAITING} for unknown messages ({shown}); {summary}", queued)


def _note_unhandled(envelope: Envelope, counts: Counter) -> None:
    for error in envelope.of_type(ErrorEvent):
        log.warning("WhatsApp reported a webhook error %s: %s", error.error.code, error.error.title)
        counts["errors reported"] += 1
    for part in envelope.of_type(UnhandledEvent):
        log.info("unhandled webhook part %s: %s", part.field, part.reason)
        counts[f"{UNHANDLED_PARTS} ({part.field or 'unknown field'})"] += 1


def _summary(counts: Counter) -> str:
    parts = [f"{amount} {label}" for label, amount in counts.items() if amount]
    return ", ".join(parts) if parts else "nothing to apply"
