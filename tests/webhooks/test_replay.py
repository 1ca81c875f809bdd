"""Replay: 10,000 campaign messages, their statuses shuffled with duplicates, through signed webhooks and the drain.

The expected end state comes from a model written here, independent of message_state: the furthest status wins
(failed is final), each timestamp is the earliest WhatsApp reported for it or anything implying it, and the
campaign counters and hourly stats equal what the rows say.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, select

from app.extensions import db
from app.models import Campaign, Contact, HourlyMessageStats, Message
from app.services.sending import message_state
from app.whatsapp.errors import classify
from tests.factories import webhooks as support
from tests.factories.webhooks import at, status, statuses_body

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
CAMPAIGNS, PER_CAMPAIGN = 4, 2_500
OFFSET = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}  # seconds after the message's own base time
RECORDED_AFTER = 10  # the dispatcher records "sent" with its own clock, later than WhatsApp's
RANK = {"sending": 0, "sent": 1, "delivered": 2, "read": 3}
FAILURE_CODES = (131026, 131047, 131051)


@dataclass
class Plan:
    """One message: how the dispatcher left it and which statuses WhatsApp reports for it."""

    index: int
    campaign_id: int
    recorded: bool  # False: the send crashed before its wamid was saved; statuses carry our id as callback data
    statuses: list[str]
    failure_code: int | None = None
    id: int = 0
    run_id: int = 0
    wamid: str = field(init=False)

    def __post_init__(self):
        self.wamid = f"wamid.REPLAY{self.index:06d}"

    def time(self, name: str) -> datetime:
        return at(self.index * 10 + OFFSET[name])

    def expected(self) -> dict:
        if "failed" in self.statuses:
            return {"status": "failed", "sent_at": self.recorded_at(), "delivered_at": None, "read_at": None,
                    "failed_at": self.time("failed"), "error_code": self.failure_code}
        reached = {"sent": ("sent", "delivered", "read"), "delivered": ("delivered", "read"), "read": ("read",)}
        earliest = {column: min((self.time(name) for name in self.statuses if name in implying), default=None)
                    for column, implying in reached.items()}
        if self.recorded:
            earliest["sent"] = min(filter(None, [earliest["sent"], self.recorded_at()]))
        furthest = max([*self.statuses, "sent" if self.recorded else "sending"], key=RANK.get)
        return {"status": furthest, "sent_at": earliest["sent"], "delivered_at": earliest["delivered"],
                "read_at": earliest["read"], "failed_at": None, "error_code": None}

    def recorded_at(self) -> datetime | None:
        return at(self.index * 10 + RECORDED_AFTER) if self.recorded else None


def _plan(rng: random.Random, index: int, campaign_id: int) -> Plan:
    recorded = rng.random() < 0.85
    if rng.random() < 0.1:
        return Plan(index, campaign_id, recorded, ["failed"], rng.choice(FAILURE_CODES))
    names = [name for name in ("sent", "delivered", "read") if rng.random() < 0.7]
    if not names and not recorded:
        names = ["delivered"]  # an unrecorded send with no status at all would stay "sending": nothing to check
    return Plan(index, campaign_id, recorded, names)


def _store(app, rng: random.Random) -> list[Plan]:
    """Campaigns, contacts and messages as the dispatcher leaves them, written in bulk."""
    with app.app_context():
        campaigns = [Campaign(name=f"Replay {n}", phone_number_id=support.wa.PHONE_NUMBER_ID, status="running")
                     for n in range(CAMPAIGNS)]
        for campaign in campaigns:
            campaign.send_run()
        db.session.add_all(campaigns)
        db.session.flush()
        runs = {campaign.id: campaign.run.id for campaign in campaigns}
        db.session.execute(insert(Contact), [{"phone": f"+9197{n:08d}", "wa_id": f"9197{n:08d}", "attributes": {}}
                                             for n in range(PER_CAMPAIGN)])
        contacts = db.session.scalars(select(Contact.id).order_by(Contact.id)).all()
        plans = [_plan(rng, n, campaigns[n // PER_CAMPAIGN].id) for n in range(CAMPAIGNS * PER_CAMPAIGN)]
        for plan in plans:
            plan.run_id = runs[plan.campaign_id]
        db.session.execute(insert(Message), [_message_row(plan, contacts[plan.index % PER_CAMPAIGN]) for plan in plans])
        for campaign in campaigns:
            campaign.targeted = PER_CAMPAIGN
            campaign.sent = sum(1 for plan in plans if plan.campaign_id == campaign.id and plan.recorded)
        db.session.commit()
        ids = {(row.campaign_id, row.contact_id): row.id
               for row in db.session.execute(select(Message.campaign_id, Message.contact_id, Message.id))}
        for plan in plans:
            plan.id = ids[plan.campaign_id, contacts[plan.index % PER_CAMPAIGN]]
    return plans


def _message_row(plan: Plan, contact_id: int) -> dict:
    return {"campaign_id": plan.campaign_id, "run_id": plan.run_id, "contact_id": contact_id,
            "status": "sent" if plan.recorded else "sending",
            "wamid": plan.wamid if plan.recorded else None, "sent_at": plan.recorded_at(), "parameters": {},
            "content": {}}


def _webhook_statuses(plans: list[Plan], rng: random.Random) -> list[dict]:
    items = []
    for plan in plans:
        callback = None if plan.recorded else f"r{plan.run_id}:{plan.id}"
        for name in plan.statuses:
            item = status(plan.wamid, name, plan.index * 10 + OFFSET[name], callback=callback,
                          error_code=plan.failure_code if name == "failed" else None)
            items += [item, item] if rng.random() < 0.2 else [item]  # Meta delivers about one in five twice
    rng.shuffle(items)
    return items


def test_ten_thousand_messages_replayed_shuffled_with_duplicates_end_exactly_as_planned(hooks):
    rng = random.Random(20261122)
    plans = _store(hooks.app, rng)
    items = _webhook_statuses(plans, rng)
    while items:
        size = rng.randint(1, 60)  # Meta batches several statuses into one webhook, or sends them one by one
        assert hooks.post(statuses_body(*items[:size])).status_code == 200
        items = items[size:]
    support.run_jobs(hooks.app)

    assert [event.outcome for event in hooks.events() if event.processed_at is None] == []
    with hooks.app.app_context():
        rows = {row.id: row for row in db.session.execute(select(
            Message.id, Message.status, Message.sent_at, Message.delivered_at, Message.read_at, Message.failed_at,
            Message.error_code, Message.error_detail, Message.wamid))}
        for plan in plans:
            row = rows[plan.id]
            assert {name: getattr(row, name) for name in plan.expected()} == plan.expected(), plan
            assert row.wamid == plan.wamid
            if plan.failure_code:
                assert row.error_detail.startswith(classify(plan.failure_code).explanation)
        _assert_counters(plans)


def _assert_counters(plans: list[Plan]) -> None:
    expected_total = dict.fromkeys(("sent", "delivered", "read", "failed"), 0)
    for campaign in db.session.scalars(select(Campaign)):
        mine = [plan.expected() for plan in plans if plan.campaign_id == campaign.id]
        expected = {"targeted": PER_CAMPAIGN, "skipped": 0, "replied": 0,
                    **{name: sum(1 for e in mine if e[f"{name}_at"]) for name in expected_total},
                    "sent": sum(1 for e in mine if e["sent_at"] and e["status"] != "failed")}  # failed counts once
        assert message_state.maintained(campaign) == message_state.recount(campaign.run.id) == expected
        for name in expected_total:
            expected_total[name] += expected[name]
    # The hourly series counts what webhooks moved: every delivered, read and failed, and the unrecorded sends.
    expected_total["sent"] -= sum(1 for plan in plans if plan.recorded)
    hourly = db.session.execute(select(*[func.sum(getattr(HourlyMessageStats, name)) for name in expected_total])).one()
    assert dict(zip(expected_total, hourly, strict=True)) == expected_total
