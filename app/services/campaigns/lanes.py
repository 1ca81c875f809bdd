"""A lane's batches back to back, with no pause between them for the database.

While one batch's sends are in flight, the next batch is claimed and rendered; when the sends are done, the next
batch starts sending at once and only then are the finished batch's outcomes written. So the connections stay busy
while the database works, instead of waiting a few hundred milliseconds per batch for its claim, rendering and
results (campaign_batches.send_batch does the same steps one after another).

Nothing here weakens a batch's promises. The next batch is sent only if the one before sent everything it was given
(a pause- or stop-class error, a rate limit too far off or Redis trouble leaves sends unmade) and the campaign, read
fresh, is still running; otherwise its claimed messages go back to pending unsent (or are cancelled, with the
campaign). A worker killed between claim and
send leaves them in `sending`, where the sweeper settles them as it does any ambiguous send.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.services.campaigns import batches as campaign_batches
from app.services.campaigns.batches import BatchReport, ReadyBatch
from app.services.sending.sender import Sending, start_all


@dataclass(frozen=True)
class LaneReport:
    batches: int
    claimed: int
    sent: int
    next: BatchReport  # what the lane does after this job: another batch now, one later, or nothing


@dataclass(frozen=True)
class _InFlight:
    batch: ReadyBatch
    sending: Sending


def send_lane(campaign_id: int, budget_seconds: float) -> LaneReport:
    """Send the campaign's due batches back to back until none is due or `budget_seconds` have passed."""
    deadline = time.monotonic() + budget_seconds
    first = campaign_batches.ready_batch(campaign_id)
    if isinstance(first, BatchReport):
        return LaneReport(0, 0, 0, first)
    in_flight: _InFlight | None = _start(first)
    batches = claimed = sent = 0
    while in_flight is not None:
        following = campaign_batches.ready_batch(campaign_id) if time.monotonic() < deadline else None
        outcomes = in_flight.sending.result()
        batches, claimed = batches + 1, claimed + len(in_flight.batch.ids)
        complete = all(outcome.result is not None for outcome in outcomes)
        next_in_flight = None
        if isinstance(following, ReadyBatch):
            if complete and campaign_batches.still_running(campaign_id):
                next_in_flight = _start(following)
            else:
                campaign_batches.give_back(following)  # never sent
        sent += campaign_batches.finish_batch(in_flight.batch, outcomes)
        in_flight = next_in_flight
    return LaneReport(batches, claimed, sent, campaign_batches.next_step(campaign_id))


def _start(batch: ReadyBatch) -> _InFlight:
    return _InFlight(batch, start_all(batch.plan, batch.items, batch.settings))
