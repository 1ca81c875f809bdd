"""Claiming is atomic: concurrent claimers (threads with their own connections, as workers have) never get the
same message, and together they get every due message exactly once."""

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.extensions import db
from app.models import Message, MessageStatus
from app.services.sending import claims, message_state
from tests.factories import campaigns as support
from tests.factories.campaigns import add_contacts, assert_counters_match, claim_of, launch, make_campaign

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures
S = MessageStatus


def claim_until_empty(app, campaign_id: int, claimed: list[list[int]], start: threading.Barrier) -> None:
    with app.app_context():
        start.wait()
        while ids := claim_of(campaign_id, 7, datetime.now(UTC)):
            claimed.append(ids)
        db.session.remove()


def test_concurrent_claimers_never_get_the_same_message(app, sim):
    add_contacts(app, 300)
    campaign_id = make_campaign(app)
    launch(app, campaign_id, run=False)
    claimed: list[list[int]] = []
    start = threading.Barrier(4)
    threads = [threading.Thread(target=claim_until_empty, args=(app, campaign_id, claimed, start)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    ids = [message_id for batch in claimed for message_id in batch]
    assert len(ids) == len(set(ids)) == 300
    assert all(len(batch) <= 7 for batch in claimed)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).where(Message.status == S.SENDING)) == 300
    assert_counters_match(app, campaign_id)


def test_a_claim_takes_only_due_pending_messages_of_its_campaign(app, sim):
    add_contacts(app, 4)
    campaign_id, other_id = make_campaign(app), make_campaign(app, name="Other")
    launch(app, campaign_id, run=False)
    launch(app, other_id, run=False)
    with app.app_context():
        first, later = db.session.scalars(db.select(Message.id).where(Message.campaign_id == campaign_id)
                                          .order_by(Message.id).limit(2)).all()
        db.session.execute(update(Message).where(Message.id == later)
                           .values(next_attempt_at=datetime.now(UTC) + timedelta(minutes=5)))
        db.session.commit()
        ids = claim_of(campaign_id, 100, datetime.now(UTC))
        assert first in ids and later not in ids and len(ids) == 3
        assert claim_of(campaign_id, 100, datetime.now(UTC)) == []
        assert claims.release(ids) == 3
        assert len(claim_of(campaign_id, 100, datetime.now(UTC))) == 3


def test_bulk_moves_only_allow_transitions_that_change_no_counter(app):
    with app.app_context():
        for old, new in [(S.SENDING, S.SENT), (S.PENDING, S.SKIPPED), (S.SENT, S.PENDING)]:
            try:
                message_state.bulk_move(old, new)
            except ValueError:
                continue
            raise AssertionError(f"{old} → {new} was allowed in bulk")
        assert message_state.can_transition(S.PENDING, S.CANCELLED)
