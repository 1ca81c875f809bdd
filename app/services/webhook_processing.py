"""Processing one stored webhook event: parse it, apply everything in it in one transaction, record the outcome.

Idempotent and order-independent (see webhook_statuses, inbound, opt_out). Statuses for messages we cannot find
yet keep the event unfinished so the sweeper retries it; after RETRY_UNKNOWN_FOR it is finished as orphaned, with
the unknown wamids in its outcome for inspection.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.extensions import db
from app.models import Campaign, WebhookEvent
from app.models.base import utcnow
from app.services import (
    auto_replies,
    inbound,
    message_state,
    opt_out,
    webhook_events,
    webhook_statuses,
    webhook_templates,
)
from app.whatsapp.events import (
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
SHOWN_WAMIDS = 20


@dataclass
class EventReport:
    event_id: int
    finished: bool
    outcome: str
    confirmations: list[int] = field(default_factory=list)  # contacts whose opt-out confirmation awaits sending


@dataclass
class _Applied:
    counts: Counter = field(default_factory=Counter)
    unknown: list[str] = field(default_factory=list)
    confirmations: list[int] = field(default_factory=list)


def process_event(event_id: int, now: datetime | None = None) -> EventReport | None:
    """Apply one stored event and commit; None when it was already finished (or is being processed elsewhere)."""
    now = now or utcnow()
    event = webhook_events.claim(event_id)
    if event is None:
        db.session.rollback()
        return None
    envelope = parse_envelope(event.body.encode("utf-8"))
    if not envelope.ok:
        log.warning("webhook event %s rejected: %s", event_id, envelope.error)
        return _finish(event, f"rejected: {envelope.error}", now)
    statuses_only = (event.outcome or "").startswith(WAITING)
    applied = _apply(envelope, now, statuses_only)
    summary = _summary(applied.counts)
    if not applied.unknown:
        return _finish(event, summary, now, applied.confirmations)
    shown = ", ".join(sorted(set(applied.unknown))[:SHOWN_WAMIDS])
    if now - event.received_at >= RETRY_UNKNOWN_FOR:
        log.warning("webhook event %s orphaned: no message for %s", event_id, shown)
        return _finish(event, f"orphaned: no message found for {shown}; {summary}", now, applied.confirmations)
    webhook_events.keep_for_retry(event, f"{WAITING} for unknown messages ({shown}); {summary}")
    db.session.commit()
    return EventReport(event_id, False, event.outcome or "", applied.confirmations)


def _finish(event: WebhookEvent, outcome: str, now: datetime, confirmations: list[int] | None = None) -> EventReport:
    webhook_events.finish(event, outcome, now)
    db.session.commit()
    return EventReport(event.id, True, outcome, confirmations or [])


def _apply(envelope: Envelope, now: datetime, statuses_only: bool) -> _Applied:
    """Everything in the envelope, in one transaction; campaign counters change with the rows they count."""
    applied, totals = _Applied(), message_state.new_totals()
    statuses = webhook_statuses.apply_statuses(envelope.statuses, totals, applied.counts, now)
    applied.unknown = statuses.unknown
    if not statuses_only:
        stored = inbound.store_messages(envelope.messages, totals, applied.counts, now)
        applied.confirmations = opt_out.handle_messages(stored, applied.counts, now)
        applied.counts["auto-replies queued"] += auto_replies.on_inbound(stored, now)  # inbox state, then rules
        opt_out.handle_preferences(envelope.of_type(UserPreferenceEvent), applied.counts, now)
        template_events = envelope.of_type(TemplateStatusEvent | TemplateCategoryEvent | TemplateQualityEvent)
        webhook_templates.apply_template_events(template_events, applied.counts)
        _note_unhandled(envelope, applied.counts)
    message_state.add_to_counters(totals)
    for campaign_id, reason in statuses.pauses.items():
        applied.counts["campaigns paused"] += webhook_templates.pause_running_campaigns(Campaign.id == campaign_id,
                                                                                        reason)
    return applied


def _note_unhandled(envelope: Envelope, counts: Counter) -> None:
    for error in envelope.of_type(ErrorEvent):
        log.warning("WhatsApp reported a webhook error %s: %s", error.error.code, error.error.title)
        counts["errors reported"] += 1
    for part in envelope.of_type(UnhandledEvent):
        log.info("unhandled webhook part %s: %s", part.field, part.reason)
        counts["unhandled parts"] += 1


def _summary(counts: Counter) -> str:
    parts = [f"{amount} {label}" for label, amount in counts.items() if amount]
    return ", ".join(parts) if parts else "nothing to apply"
