"""Campaign statuses: the one table of allowed transitions and the one function that applies them."""

from __future__ import annotations

from app.clock import utcnow
from app.models import Campaign, CampaignStatus
from app.services.api.outbound import events as outbound_events
from app.services.errors import ServiceError

C = CampaignStatus
ALLOWED: dict[str, set[str]] = {
    C.DRAFT: {C.SCHEDULED, C.RUNNING, C.CANCELLED, C.FAILED},  # failed: a recurring run that could not start
    C.SCHEDULED: {C.RUNNING, C.DRAFT, C.CANCELLED, C.COMPLETED},  # completed: a recurring one past its end date
    C.RUNNING: {C.PAUSED, C.COMPLETED, C.CANCELLED, C.FAILED},
    C.PAUSED: {C.RUNNING, C.CANCELLED},
    C.COMPLETED: set(),
    C.CANCELLED: set(),
    C.FAILED: set(),
}
LABELS = {C.DRAFT: "Draft", C.SCHEDULED: "Scheduled", C.RUNNING: "Sending", C.PAUSED: "Paused",
          C.COMPLETED: "Completed", C.CANCELLED: "Cancelled", C.FAILED: "Failed"}


def can_transition(old: str, new: str) -> bool:
    return new in ALLOWED.get(old, set())


def transition(campaign: Campaign, new: str, reason: str | None = None) -> None:
    """Move a campaign to `new` (in the session; the caller commits) or raise ServiceError explaining why not."""
    if not can_transition(campaign.status, new):
        raise ServiceError(f"A {LABELS[campaign.status].lower()} campaign cannot be "
                           f"{'set to ' + LABELS[new].lower() if new != C.RUNNING else 'started'}.")
    now = utcnow()
    if new == C.RUNNING and campaign.started_at is None:
        campaign.started_at = now
    if new in (C.COMPLETED, C.CANCELLED, C.FAILED):
        campaign.finished_at = now
    campaign.pause_reason = reason if new in (C.PAUSED, C.FAILED) else None
    campaign.status = new
    if new in (C.COMPLETED, C.CANCELLED, C.FAILED):
        outbound_events.campaign_finished(campaign, now)  # the outbox, if anyone listens
