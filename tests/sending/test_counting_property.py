"""Property: each recipient counts once per funnel step, whatever order the API's answers and the status webhooks
arrive in. Hypothesis draws what happened to each of a few messages (accepted, rejected, or no answer; then the
statuses WhatsApp reports) and the order everything arrives in; the real result recording (sending.results) and
webhook processing (webhooks.statuses) apply it. The run's counters must equal what happened, a recount of the rows,
and the hourly stats' change."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.extensions import db
from app.models import Campaign, Contact, HourlyMessageStats, Message, MessageStatus
from app.services.campaigns import lifecycle
from app.services.sending import claims, message_state, results
from app.services.sending.sender import Outcome
from app.services.webhooks import statuses
from app.whatsapp import callback
from app.whatsapp.client import SendResult
from app.whatsapp.events import StatusEvent, WebhookError
from tests.factories import campaigns as support
from tests.factories.campaigns import make_template

sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures
S = MessageStatus
T0 = datetime(2026, 11, 2, 4, 10, tzinfo=UTC)
FAILED_WEBHOOK = WebhookError(131026, "Message undeliverable", "Message undeliverable", None)

# What happened to one message: the API's answer, and the statuses WhatsApp then reported (Meta never reports both
# delivered and failed for one message).
fates = st.one_of(
    st.tuples(st.sampled_from(["accepted", "no answer"]),
              st.lists(st.sampled_from(["sent", "delivered", "read"]), unique=True, max_size=3)),
    st.tuples(st.sampled_from(["accepted", "no answer"]),
              st.lists(st.sampled_from(["sent", "failed"]), unique=True, min_size=1).filter(lambda s: "failed" in s)),
    st.just(("rejected", [])),
)


def expected(fate) -> Counter:
    answer, reported = fate
    if answer == "rejected" or "failed" in reported:
        return Counter(failed=1)
    reached = set(reported) | ({"sent"} if answer == "accepted" else set())
    if "read" in reached:
        return Counter(sent=1, delivered=1, read=1)
    if "delivered" in reached:
        return Counter(sent=1, delivered=1)
    return Counter(sent=1) if "sent" in reached else Counter()


def _launched(app, count: int) -> tuple[int, int, list[int]]:
    """A running campaign to `count` contacts, every message claimed (as a batch leaves them before sending), in a
    database emptied first: each example starts from nothing."""
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as connection:
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())
    template_id = make_template(app)
    with app.app_context():
        db.session.add_all([Contact(phone=f"+91970000{n:04d}", wa_id=f"91970000{n:04d}", attributes={})
                            for n in range(count)])
        campaign = Campaign(name="Property", template_id=template_id, phone_number_id="1", audience={}, variables={})
        db.session.add(campaign)
        db.session.commit()
        lifecycle.launch(campaign.id, None)
        campaign = db.session.get(Campaign, campaign.id)
        ids = claims.claim(100, T0, Message.campaign_id == campaign.id)
        return campaign.id, campaign.run.id, ids


def _answer(message_id: int, answer: str) -> None:
    result = {"accepted": SendResult(ok=True, wamid=f"wamid.P{message_id}"),
              "rejected": SendResult(ok=False, http_status=400, error_code=131026, error_title="Undeliverable"),
              "no answer": SendResult(ok=False, outcome_unknown=True)}[answer]
    results.record([Outcome(message_id, result)], T0 + timedelta(seconds=1))


def _webhook(message_id: int, run_id: int, status: str, step: int) -> None:
    event = StatusEvent(f"wamid.P{message_id}", status, T0 + timedelta(seconds=step), None,
                        errors=(FAILED_WEBHOOK,) if status == "failed" else (),
                        biz_opaque_callback_data=callback.encode(message_id, run_id))
    totals = message_state.new_totals()
    statuses.apply_statuses([event], totals, T0 + timedelta(seconds=step))
    message_state.add_to_counters(totals)
    db.session.commit()


def _hourly() -> Counter:
    row = db.session.execute(select(*[func.coalesce(func.sum(getattr(HourlyMessageStats, name)), 0)
                                      for name in ("sent", "delivered", "read", "failed")])).one()
    return Counter(dict(zip(("sent", "delivered", "read", "failed"), row, strict=True)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(story=st.lists(fates, min_size=1, max_size=3).flatmap(
    lambda chosen: st.tuples(st.just(chosen), st.permutations(
        [(index, "answer", fate[0]) for index, fate in enumerate(chosen)]
        + [(index, "webhook", status) for index, fate in enumerate(chosen) for status in fate[1]]))))
def test_counters_are_the_same_whatever_order_answers_and_webhooks_arrive_in(app, sim, story):
    chosen, arrivals = story
    campaign_id, run_id, ids = _launched(app, len(chosen))
    with app.app_context():
        for step, (index, kind, what) in enumerate(arrivals, start=2):
            if kind == "answer":
                _answer(ids[index], what)
            else:
                _webhook(ids[index], run_id, what, step)
        campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
        maintained, recount = message_state.maintained(campaign), message_state.recount(run_id)
        hourly = _hourly()
    want = sum((expected(fate) for fate in chosen), Counter())
    funnel = {name: want[name] for name in ("sent", "delivered", "read", "failed")}
    assert maintained == recount == {"targeted": len(chosen), "skipped": 0, "replied": 0, **funnel}
    assert {name: hourly[name] for name in funnel} == funnel
    assert maintained["sent"] + maintained["failed"] <= maintained["targeted"] - maintained["skipped"]
