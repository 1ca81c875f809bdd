"""Crash safety: settling messages whose send had an unknown outcome, whatever their source.

A message stuck in `sending` is ambiguous: its worker died, or WhatsApp never answered, and the request may have
reached Meta. A status webhook (matched by biz_opaque_callback_data) settles it; only when none came within the
grace period (SEND_SETTLE_GRACE_SECONDS) is it given back to pending, to be sent again, or failed when out of tries.
The periodic job (jobs.sending.sweep) also queues the work that Redis lost, from what the database says is due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus
from app.services.sending import message_state
from app.services.sending.claims import hold_write_lock
from app.services.sending.results import max_attempts
from app.whatsapp.errors import classify_transport

S, C = MessageStatus, CampaignStatus
SETTLE_LIMIT = 5000  # stuck messages handled per sweep; the next sweep takes the rest


def grace_seconds() -> float:
    return float(current_app.config["SEND_SETTLE_GRACE_SECONDS"])


def settle_stuck(now: datetime) -> tuple[int, int]:
    """Give messages in `sending` past the grace period back to pending (or fail them when out of tries). Commits."""
    hold_write_lock()
    cutoff = now - timedelta(seconds=grace_seconds())
    stuck = list(db.session.scalars(
        select(Message).where(Message.status == S.SENDING, Message.claimed_at < cutoff)
        .order_by(Message.id).limit(SETTLE_LIMIT).with_for_update(of=Message, skip_locked=True)).unique())
    cancelled = _cancelled_campaigns({message.campaign_id for message in stuck})
    totals, failed = message_state.new_totals(), 0
    for message in stuck:
        failed += _settle_one(message, message.campaign_id in cancelled, now, totals)
    message_state.add_to_counters(totals)
    db.session.commit()
    return len(stuck) - failed, failed


def _settle_one(message: Message, cancelled: bool, now: datetime, totals) -> bool:
    if message.attempts >= max_attempts():
        info = classify_transport(outcome_unknown=True)
        message.error_code, message.error_title, message.error_detail = None, info.title, info.explanation
        message_state.move(message, S.FAILED, now, totals)
        return True
    if cancelled:
        message_state.move(message, S.CANCELLED, now, totals)
        return False
    message_state.move(message, S.PENDING, now, totals)
    message.claimed_at, message.next_attempt_at = None, None
    return False


def _cancelled_campaigns(campaign_ids: set[int | None]) -> set[int]:
    # A cancelled campaign's stuck messages are not sent again: cancelled, as its pending ones were.
    campaign_ids.discard(None)
    if not campaign_ids:
        return set()
    return set(db.session.scalars(select(Campaign.id).where(Campaign.id.in_(campaign_ids),
                                                            Campaign.status == C.CANCELLED)))
