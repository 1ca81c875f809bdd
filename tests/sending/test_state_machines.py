"""The one transition table per entity: messages only move forward, counters follow the timestamps."""

from datetime import UTC, datetime

import pytest

from app.extensions import db
from app.models import Campaign, CampaignStatus, Message, MessageStatus
from app.services.campaigns import campaign_state
from app.services.errors import ServiceError
from app.services.sending import message_state

S = MessageStatus
T1, T2 = datetime(2026, 11, 1, 10, tzinfo=UTC), datetime(2026, 11, 1, 11, tzinfo=UTC)


@pytest.fixture
def campaign_with_message(app, make_contact):
    contact_id = make_contact("+919876543210", "Asha")
    with app.app_context():
        campaign = Campaign(name="Diwali", phone_number_id="1", status=CampaignStatus.RUNNING, targeted=1)
        db.session.add(campaign)
        db.session.flush()
        message = Message(campaign_id=campaign.id, run_id=campaign.run.id, contact_id=contact_id, status=S.SENDING)
        db.session.add(message)
        db.session.commit()
        return campaign.id, message.id


def _apply(app, message_id, *statuses):
    with app.app_context():
        for status in statuses:
            message = db.session.get(Message, message_id)
            totals = message_state.new_totals()
            message_state.move(message, status, T1, totals)
            message_state.add_to_counters(totals)
            db.session.commit()
        message = db.session.get(Message, message_id)
        campaign = db.session.get(Campaign, message.campaign_id)
        return message.status, message_state.maintained(campaign), message_state.recount(campaign.run.id)


@pytest.mark.parametrize("order", [
    (S.SENT, S.DELIVERED, S.READ),
    (S.READ, S.DELIVERED, S.SENT),
    (S.DELIVERED, S.SENT, S.READ, S.READ),
    (S.READ,),
])
def test_delivery_statuses_only_move_forward_and_counters_match_recount(app, campaign_with_message, order):
    _, message_id = campaign_with_message
    status, maintained, recount = _apply(app, message_id, *order)
    assert status == S.READ
    assert maintained == recount
    assert (recount["sent"], recount["delivered"], recount["read"]) == (1, 1, 1)


def test_failed_after_sent_counts_once(app, campaign_with_message):
    _, message_id = campaign_with_message
    status, maintained, recount = _apply(app, message_id, S.SENT, S.FAILED, S.FAILED, S.DELIVERED)
    assert status == S.FAILED and maintained == recount and recount["failed"] == 1 and recount["delivered"] == 0


def test_retry_goes_back_to_pending_without_counting(app, campaign_with_message):
    _, message_id = campaign_with_message
    status, maintained, recount = _apply(app, message_id, S.PENDING)
    assert status == S.PENDING and maintained == recount and recount["sent"] == 0


def test_terminal_statuses_never_change():
    for terminal in (S.READ, S.FAILED, S.SKIPPED, S.CANCELLED):
        assert not any(message_state.can_transition(terminal, new) for new in message_state.ALLOWED)


def test_timestamps_are_kept_from_the_first_time(app, campaign_with_message):
    _, message_id = campaign_with_message
    with app.app_context():
        message = db.session.get(Message, message_id)
        message_state.move(message, S.DELIVERED, T1)
        message_state.move(message, S.READ, T2)
        assert (message.sent_at, message.delivered_at, message.read_at) == (T1, T1, T2)


def test_campaign_transitions(app):
    campaign = Campaign(name="x", phone_number_id="1", status=CampaignStatus.DRAFT)
    with app.app_context():  # finishing reads which outbound events endpoints want
        campaign_state.transition(campaign, CampaignStatus.RUNNING)
        assert campaign.started_at is not None
        campaign_state.transition(campaign, CampaignStatus.PAUSED, reason="Template paused by Meta")
        assert campaign.pause_reason == "Template paused by Meta"
        campaign_state.transition(campaign, CampaignStatus.RUNNING)
        assert campaign.pause_reason is None
        campaign_state.transition(campaign, CampaignStatus.COMPLETED)
        assert campaign.finished_at is not None
        with pytest.raises(ServiceError, match="completed campaign cannot be started"):
            campaign_state.transition(campaign, CampaignStatus.RUNNING)


def test_hourly_stats_follow_the_status_timestamps(app, campaign_with_message):
    from app.models import HourlyMessageStats

    _, message_id = campaign_with_message
    _apply(app, message_id, S.SENT, S.READ)
    with app.app_context():
        totals = message_state.new_totals()
        totals.count_reply(None, T2)
        message_state.add_to_counters(totals)
        db.session.commit()
        rows = {row.hour: (row.sent, row.delivered, row.read, row.replied)
                for row in db.session.scalars(db.select(HourlyMessageStats))}
    assert rows == {T1: (1, 1, 1, 0), T2: (0, 0, 0, 1)}
