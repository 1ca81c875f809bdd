"""The migration to send runs keeps what a database already holds: every launched campaign gets a run with the
counters it had, its messages join that run, and messages sent on their own take their source from their purpose."""

from datetime import UTC, datetime

from flask_migrate import downgrade, upgrade
from sqlalchemy import MetaData, Table, select

from app.extensions import db
from app.models import AutoReplyFiring, Campaign, HourlyMessageStats, Message, SendRun
from app.services.sending import message_state

BEFORE = "e2b8f4c6a1d3"
AT = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)


def _insert(connection, table_name: str, **values) -> int:
    table = Table(table_name, MetaData(), autoload_with=connection)
    return connection.execute(table.insert().values(**values)).inserted_primary_key[0]


def _seed_before_runs() -> None:
    stamps = {"created_at": AT, "updated_at": AT}
    with db.engine.begin() as connection:
        asha = _insert(connection, "contacts", phone="+919800000001", wa_id="919800000001", attributes={}, **stamps)
        ravi = _insert(connection, "contacts", phone="+919800000002", wa_id="919800000002", attributes={}, **stamps)
        counters = dict(targeted=2, skipped=0, sent=2, delivered=1, read=0, failed=0, replied=0)
        common = dict(phone_number_id="1", audience={}, variables={}, accept_fallbacks=False, schedule_kind="now",
                      timezone="Asia/Kolkata", **stamps)
        sent = _insert(connection, "campaigns", name="Diwali", status="completed", started_at=AT, **counters,
                       **common)
        _insert(connection, "campaigns", name="Draft", status="draft",
                **dict.fromkeys(counters, 0), **common)
        message = dict(direction="out", message_type="template", content={}, attempts=1, **stamps)
        _insert(connection, "messages", campaign_id=sent, contact_id=asha, status="delivered", sent_at=AT,
                delivered_at=AT, parameters={}, **message)
        _insert(connection, "messages", campaign_id=sent, contact_id=ravi, status="sent", sent_at=AT, parameters={},
                **message)
        reply = _insert(connection, "messages", contact_id=asha, status="sent", sent_at=AT,
                        parameters={"purpose": "auto_reply"}, **message)
        rule = _insert(connection, "auto_reply_rules", name="Hours", match_kind="keywords", keywords=["hours"],
                       reply_kind="text", reply_text="9 to 5", template_variables={}, cooldown_minutes=60,
                       active=True, position=0, **stamps)
        _insert(connection, "auto_reply_firings", rule_id=rule, contact_id=asha, reply_message_id=reply, fired_at=AT)
        _insert(connection, "messages", contact_id=ravi, status="pending",
                parameters={"purpose": "opt_out_confirmation"}, **message)
        _insert(connection, "messages", contact_id=ravi, status="received", parameters={},
                **{**message, "direction": "in"})


def test_launched_campaigns_get_their_runs_and_messages_their_sources(app):
    with app.app_context():
        db.session.remove()
        downgrade(revision=BEFORE)
        try:
            _seed_before_runs()
            upgrade()
            campaigns = {campaign.name: campaign for campaign in db.session.scalars(select(Campaign))}
            runs = db.session.scalars(select(SendRun)).all()
            sources = sorted((message.source, message.run_id is not None) for message in
                             db.session.scalars(select(Message)).unique())
            diwali = campaigns["Diwali"]
            counted = message_state.maintained(diwali), message_state.recount(diwali.run.id)
            draft_run = campaigns["Draft"].run
            firing = db.session.scalar(select(AutoReplyFiring.reply_message_id))
        finally:
            db.session.remove()
            upgrade()
    assert [run.campaign_id for run in runs] == [diwali.id] and draft_run is None
    assert firing is not None  # rebuilding the messages table (SQLite) lost no row that refers to it
    assert counted[0] == counted[1] == dict(targeted=2, skipped=0, sent=2, delivered=1, read=0, failed=0, replied=0)
    assert sources == [("auto_reply", False), ("campaign", True), ("campaign", True), ("inbound", False),
                       ("opt_out_confirmation", False)]


def test_messages_accepted_then_failed_leave_the_sent_counters(app):
    with app.app_context():
        db.session.remove()
        downgrade(revision="a4c8e1f2b3d6")  # just before the migration under test
        try:
            stamps = {"created_at": AT, "updated_at": AT}
            with db.engine.begin() as connection:
                campaign = _insert(connection, "campaigns", name="Diwali", status="completed", phone_number_id="1",
                                   audience={}, variables={}, accept_fallbacks=False, schedule_kind="now",
                                   timezone="Asia/Kolkata", **stamps)
                run = _insert(connection, "send_runs", source="campaign", campaign_id=campaign, phone_number_id="1",
                              targeted=2, skipped=0, sent=2, delivered=0, read=0, failed=1, replied=0, created_at=AT)
                for number, status in ((1, "sent"), (2, "failed")):
                    contact = _insert(connection, "contacts", phone=f"+91980000000{number}",
                                      wa_id=f"91980000000{number}", attributes={}, **stamps)
                    _insert(connection, "messages", campaign_id=campaign, run_id=run, source="campaign",
                            contact_id=contact, direction="out", message_type="template", status=status, sent_at=AT,
                            failed_at=AT if status == "failed" else None, parameters={}, content={}, attempts=1,
                            **stamps)
                _insert(connection, "hourly_message_stats", hour=AT.replace(minute=0), sent=2, delivered=0, read=0,
                        failed=1, replied=0)
            upgrade()
            counted = message_state.maintained(db.session.get(SendRun, run)), message_state.recount(run)
            hourly = db.session.execute(select(HourlyMessageStats.sent, HourlyMessageStats.failed)).one()
        finally:
            db.session.remove()
            upgrade()
    assert counted[0] == counted[1] and (counted[0]["sent"], counted[0]["failed"]) == (1, 1)
    assert tuple(hourly) == (1, 1)
