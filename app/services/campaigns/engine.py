"""What the send path's verdicts mean for campaigns: pausing one automatically, stopping every campaign of an
unusable sender number, and cancelling what a batch gave back when the campaign was cancelled meanwhile.

Locks are taken after the messages' (the order status webhooks take): `lock` is the one way to read a campaign for
a change that must not race another.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from app.extensions import db
from app.models import Campaign, CampaignStatus, MessageStatus
from app.services.admin import audit
from app.services.api.outbound import events as outbound_events
from app.services.campaigns import campaign_state
from app.services.sending import message_state
from app.services.sending.claims import hold_write_lock
from app.services.sending.results import Settle, Verdict, describe
from app.whatsapp.errors import ErrorInfo

S, C = MessageStatus, CampaignStatus
STOP_REASON_PREFIX = "All sending from this number stopped: "


def lock(campaign_id: int) -> Campaign | None:
    """The campaign row, fresh and locked until commit, for a change that must not race another."""
    hold_write_lock()
    return db.session.get(Campaign, campaign_id, with_for_update={"of": Campaign}, populate_existing=True)


def settle_batch(campaign_id: int) -> Settle:
    """The campaign's part in recording a batch: cancel what was given back if it was cancelled meanwhile, pause it
    on a pause-class error, and stop its sender number on a stop-class one."""

    def settle(verdict: Verdict, now: datetime, totals: message_state.Totals) -> None:
        outbound_events.stopped_marketing(verdict.opted_out, now)
        campaign = lock(campaign_id)
        if campaign is None:
            return
        if campaign.status == C.CANCELLED:
            for message in verdict.released:  # cancelled while this batch was out: these are not sent now
                message_state.move(message, S.CANCELLED, now, totals)
        if verdict.stop is not None:
            stop_sender(campaign.phone_number_id, verdict.stop)
        elif verdict.pause is not None and campaign.status == C.RUNNING:
            pause(campaign, describe(verdict.pause))

    return settle


def stop_sender(phone_number_id: str, info: ErrorInfo) -> list[int]:
    """Pause every running campaign of this sender: its account or token is unusable until staff fix it."""
    running = db.session.scalars(select(Campaign).where(Campaign.phone_number_id == phone_number_id,
                                                        Campaign.status == C.RUNNING)
                                 .with_for_update(of=Campaign))
    reason = STOP_REASON_PREFIX + describe(info)
    return [pause(campaign, reason) for campaign in running]


def pause(campaign: Campaign, reason: str) -> int:
    """Pause a running campaign on the engine's behalf (in the session), with an audit entry."""
    campaign_state.transition(campaign, C.PAUSED, reason=reason)
    audit.record("campaign.pause", f"Paused campaign “{campaign.name}” automatically: {reason}"[:500],
                 target=f"campaign:{campaign.id}", actor="system")
    return campaign.id
