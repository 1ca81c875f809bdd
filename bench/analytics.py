"""Analytics speed at a million messages: our pages as served, beside the naive way, in one run.

Usage: python bench/analytics.py [--messages 1000000] [--campaigns 200] [--contacts 100000]
                                 [--database-url URL] [--redis-url URL] [--repeat 7]
Fills a fresh database (a SQLite file by default, or the given PostgreSQL URL, whose public schema is dropped
and rebuilt by the migrations) with messages over 90 days, set-based in SQL, plus the campaign counters and
hourly stats that production maintains, so the maintained data matches the rows. Then times each page through
the Flask test client (server time, median of several requests) and the naive way of answering the same
question (COUNT … GROUP BY over the message table at request time, SQL only). Without --redis-url it starts a
private Redis server, so it never writes into a Redis database it did not create. Prints one final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from app import create_app  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from bench._common import contact_total_key, create_admin, fresh_schema, median_ms, private_redis  # noqa: E402

PER_CAMPAIGN_DEFAULT = 5_000
GOAL_MS = 100
# Suggested for the model (replacing ix_messages_created_at): keyset pages without sorting the messages that
# share a created_at (all of a campaign's recipients do). Only created here with --proposed-index.
PROPOSED_INDEX = "ix_messages_created_at_id"
FAILURE_CODES = (131026, 131050, 130472, 131051)


class Sql:
    """The few spellings that differ between PostgreSQL and SQLite."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def series(self, name: str = "n") -> str:
        if self.pg:
            return f"SELECT generate_series(0, :{name} - 1) AS i"
        return f"WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < :{name} - 1) SELECT i FROM s"

    def plus_seconds(self, base: str, seconds: str) -> str:
        if self.pg:
            return f"({base} + ({seconds}) * interval '1 second')"
        modifier = f"printf('%+d seconds', CAST(({seconds}) AS INTEGER))"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {base}, {modifier}) || '.000000')"

    def hour(self, column: str) -> str:
        if self.pg:
            return f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
        return f"(strftime('%Y-%m-%d %H:00:00', {column}) || '.000000')"

    def day(self, column: str) -> str:
        return f"date_trunc('day', {column})" if self.pg else f"substr({column}, 1, 10)"

    @property
    def now(self) -> str:
        return "now()" if self.pg else "(strftime('%Y-%m-%d %H:%M:%S', 'now') || '.000000')"

    @property
    def empty_json(self) -> str:
        return "'{}'::jsonb" if self.pg else "'{}'"

    @property
    def false(self) -> str:
        return "false" if self.pg else "0"


def fill(contacts: int, campaigns: int, messages: int, days: int) -> None:
    """Contacts, campaigns spread over `days`, their messages, then the counters and hourly stats from the rows."""
    sql = Sql(db.engine.dialect.name)
    per_campaign = messages // campaigns
    with db.engine.begin() as connection:
        connection.execute(text(_contacts_sql(sql)), {"n": contacts})
        connection.execute(text(_campaigns_sql(sql)), {"n": campaigns, "days": days})
        connection.execute(text(
            "INSERT INTO send_runs (source, campaign_id, phone_number_id, targeted, skipped, sent, delivered, read, "
            "failed, replied, created_at) SELECT 'campaign', id, phone_number_id, 0, 0, 0, 0, 0, 0, 0, created_at "
            "FROM campaigns"))
        connection.execute(text(_messages_sql(sql)), {"n": per_campaign * campaigns, "per": per_campaign,
                                                      "contacts": contacts, "running_from": campaigns - 2})
        connection.execute(text(_counters_sql()))
        connection.execute(text(_hourly_sql(sql)))
        connection.execute(text(
            f"INSERT INTO campaigns (name, phone_number_id, audience, variables, accept_fallbacks, schedule_kind, "
            f"timezone, status, created_at, updated_at) "
            f"SELECT 'Scheduled ' || i, '106540352242922', {sql.empty_json}, {sql.empty_json}, {sql.false}, 'at', "
            f"'Asia/Kolkata', 'scheduled', {sql.now}, {sql.now} FROM ({sql.series()}) AS g"),
            {"n": 2})
        if sql.pg:
            connection.execute(text("ANALYZE"))


def _contacts_sql(sql: Sql) -> str:
    # 1% opted out during the last ten days.
    opted_out = f"CASE WHEN i % 100 = 7 THEN {sql.plus_seconds(sql.now, '-(i % 864000)')} END"
    return (f"INSERT INTO contacts (phone, wa_id, name, attributes, opted_out_at, created_at, updated_at) "
            f"SELECT '+91' || (9000000000 + i), '91' || (9000000000 + i), 'Customer ' || i, {sql.empty_json}, "
            f"{opted_out}, {sql.now}, {sql.now} FROM ({sql.series()}) AS g")


def _campaigns_sql(sql: Sql) -> str:
    """Evenly spread over `days` up to now; the last two are still sending."""
    start = sql.plus_seconds(sql.now, "-(:days * 86400) + i * (:days * 86400 / :n)")
    status = "CASE WHEN i >= :n - 2 THEN 'running' ELSE 'completed' END"
    finished = f"CASE WHEN i >= :n - 2 THEN NULL ELSE {sql.plus_seconds(start, '900')} END"
    return (f"INSERT INTO campaigns (name, phone_number_id, audience, variables, accept_fallbacks, schedule_kind, "
            f"timezone, status, created_at, updated_at, started_at, finished_at) "
            f"SELECT 'Campaign ' || (i + 1), '106540352242922', {sql.empty_json}, {sql.empty_json}, {sql.false}, "
            f"'now', 'Asia/Kolkata', {status}, {start}, {start}, {start}, {finished} "
            f"FROM ({sql.series()}) AS g")


def _messages_sql(sql: Sql) -> str:
    """Message i goes to campaign i / per; a pseudo-random h in 0..999 decides how far it got:
    2% skipped, 3% failed (four codes), the rest sent; 97% of all delivered, 60% read, 5% replied. The two running
    campaigns have only sent their first 60%; the rest is pending."""
    pending = "(c.id > :running_from AND g.j >= :per * 6 / 10)"
    status = (f"CASE WHEN {pending} THEN 'pending' WHEN g.h < 20 THEN 'skipped' WHEN g.h < 50 THEN 'failed' "
              f"WHEN g.h >= 400 THEN 'read' WHEN g.h >= 80 THEN 'delivered' ELSE 'sent' END")
    sent = sql.plus_seconds("c.started_at", "g.j / 10")
    reached = f"(NOT {pending} AND g.h >= 50)"
    code = "CASE g.h % 4 WHEN 0 THEN 131026 WHEN 1 THEN 131050 WHEN 2 THEN 130472 ELSE 131051 END"
    failed = f"(NOT {pending} AND g.h >= 20 AND g.h < 50)"
    return (
        "INSERT INTO messages (campaign_id, run_id, source, contact_id, direction, message_type, status, parameters, "
        "content, attempts, created_at, updated_at, sent_at, delivered_at, read_at, failed_at, replied_at, error_code, "
        "error_title, error_detail, skip_reason) "
        f"SELECT c.id, r.id, 'campaign', ((c.id - 1) * :per + g.j) % :contacts + 1, 'out', 'template', {status}, "
        f"{sql.empty_json}, {sql.empty_json}, 1, c.started_at, c.started_at, "
        f"CASE WHEN {reached} THEN {sent} END, "
        f"CASE WHEN {reached} AND g.h >= 80 THEN {sql.plus_seconds(sent, '3')} END, "
        f"CASE WHEN {reached} AND g.h >= 400 THEN {sql.plus_seconds(sent, '60 * (g.h % 120)')} END, "
        f"CASE WHEN {failed} THEN {sent} END, "
        f"CASE WHEN {reached} AND g.h >= 950 THEN {sql.plus_seconds(sent, '60 * (g.h % 120) + 300')} END, "
        f"CASE WHEN {failed} THEN {code} END, CASE WHEN {failed} THEN 'Failed' END, "
        f"CASE WHEN {failed} THEN 'WhatsApp reported that this message could not be delivered.' END, "
        f"CASE WHEN NOT {pending} AND g.h < 20 THEN 'Opted out of messages' END "
        f"FROM (SELECT i / :per + 1 AS cid, i % :per AS j, ((i % :per) * 7919 + (i / :per + 1) * 104729) % 1000 AS h "
        f"FROM ({sql.series()}) AS s) AS g JOIN campaigns c ON c.id = g.cid JOIN send_runs r ON r.campaign_id = c.id")


def _counters_sql() -> str:
    """The counters exactly as app.services.sending.message_state.recount defines them."""
    return (
        "UPDATE send_runs SET targeted = s.targeted, skipped = s.skipped, sent = s.sent, delivered = s.delivered, "
        "read = s.read, failed = s.failed, replied = s.replied FROM (SELECT run_id, count(*) AS targeted, "
        "count(CASE WHEN status = 'skipped' THEN 1 END) AS skipped, "
        "count(CASE WHEN sent_at IS NOT NULL AND status <> 'failed' THEN 1 END) AS sent, "
        "count(delivered_at) AS delivered, count(read_at) AS read, count(CASE WHEN status = 'failed' THEN 1 END) "
        "AS failed, count(replied_at) AS replied FROM messages GROUP BY run_id) AS s "
        "WHERE s.run_id = send_runs.id")


def _hourly_sql(sql: Sql) -> str:
    """Each status counted in the hour its timestamp falls in, as message_state does when it moves a message."""
    columns = ("sent_at", "delivered_at", "read_at", "failed_at", "replied_at")
    parts = []
    for position, column in enumerate(columns):
        ones = ", ".join(f"{1 if index == position else 0} AS c{index}" for index in range(len(columns)))
        parts.append(f"SELECT {sql.hour(column)} AS hour, {ones} FROM messages WHERE {column} IS NOT NULL")
    return ('INSERT INTO hourly_message_stats (hour, sent, delivered, "read", failed, replied) '
            "SELECT hour, sum(c0), sum(c1), sum(c2), sum(c3), sum(c4) "
            f"FROM ({' UNION ALL '.join(parts)}) AS u GROUP BY hour")


def naive_queries(sql: Sql, campaign_id: int, day: str) -> dict[str, list[str]]:
    """The same questions answered by counting message rows at request time."""
    suffix = "+00" if sql.pg else ".000000"
    next_day = time.strftime("%Y-%m-%d", time.gmtime(time.mktime(time.strptime(day, "%Y-%m-%d")) + 86400 + 43200))
    day_start, day_end = f"{day} 00:00:00{suffix}", f"{next_day} 00:00:00{suffix}"
    since = sql.plus_seconds(sql.now, "-30 * 86400")
    today = sql.plus_seconds(sql.now, "-86400")
    return {
        "dashboard": [
            "SELECT count(*) FROM contacts WHERE deleted_at IS NULL",
            "SELECT status, count(*) FROM campaigns GROUP BY status",
            f"SELECT count(*) FROM messages WHERE sent_at >= {today}",
            f"SELECT count(sent_at), count(delivered_at), count(read_at), count(failed_at), count(replied_at) "
            f"FROM messages WHERE created_at >= {since}",
            *[f"SELECT {sql.day(column)}, count(*) FROM messages WHERE {column} >= {since} GROUP BY 1"
              for column in ("sent_at", "delivered_at", "read_at", "failed_at")],
            "SELECT campaign_id, status, count(*) FROM messages WHERE campaign_id IN "
            "(SELECT id FROM campaigns WHERE status = 'running') GROUP BY campaign_id, status",
        ],
        "campaign_analytics": [
            f"SELECT count(*), count(CASE WHEN status = 'skipped' THEN 1 END), count(sent_at), count(delivered_at), "
            f"count(read_at), count(CASE WHEN status = 'failed' THEN 1 END), count(replied_at) FROM messages "
            f"WHERE campaign_id = {campaign_id}",
            f"SELECT error_code, count(*) FROM messages WHERE campaign_id = {campaign_id} AND status = 'failed' "
            f"GROUP BY error_code ORDER BY 2 DESC",
        ],
        "message_log": [
            "SELECT count(*) FROM messages",
            "SELECT * FROM messages JOIN contacts ON contacts.id = messages.contact_id "
            "ORDER BY messages.created_at DESC, messages.id DESC LIMIT 50",
        ],
        "message_log_failed_page_20": [
            "SELECT count(*) FROM messages WHERE status = 'failed'",
            "SELECT * FROM messages JOIN contacts ON contacts.id = messages.contact_id WHERE status = 'failed' "
            "ORDER BY messages.created_at DESC, messages.id DESC LIMIT 50 OFFSET 950",
        ],
        "message_log_day": [
            f"SELECT count(*) FROM messages WHERE created_at >= '{day_start}' AND created_at < '{day_end}'",
            "SELECT * FROM messages JOIN contacts ON contacts.id = messages.contact_id "
            f"WHERE messages.created_at >= '{day_start}' AND messages.created_at < '{day_end}' "
            "ORDER BY messages.created_at DESC, messages.id DESC LIMIT 50 OFFSET 0",
        ],
    }


def prepare(url: str, redis_url: str, args) -> tuple:
    app = create_app(TestConfig(url, redis_url))
    with app.app_context():
        fresh_schema()
        start = time.perf_counter()
        fill(args.contacts, args.campaigns, args.messages, args.days)
        seconds = time.perf_counter() - start
        create_admin("bench@example.com", "bench-password")
        if args.proposed_index:
            with db.engine.begin() as connection:
                connection.execute(text(f"CREATE INDEX {PROPOSED_INDEX} ON messages (created_at, id)"))
                connection.execute(text("ANALYZE messages"))
        total = db.session.scalar(text("SELECT count(*) FROM messages"))
    return app, seconds, total


def our_pages(campaign_id: int, phone: str, day: str, older: str) -> dict[str, tuple[str, dict]]:
    htmx = {"HX-Request": "true"}
    results = {"HX-Request": "true", "HX-Target": "message-results"}
    return {
        "dashboard": ("/?period=30d", {}),
        "dashboard_poll": ("/?period=30d", htmx),
        "dashboard_90d": ("/?period=90d", {}),
        "campaign_analytics": (f"/campaigns/{campaign_id}/analytics", {}),
        "campaign_analytics_poll": (f"/campaigns/{campaign_id}/analytics", htmx),
        "message_log": ("/messages/", {}),
        "message_log_failed_page_20": (f"/messages/?status=failed&older={older}", results),
        "message_log_read": ("/messages/?status=read", results),
        "message_log_rare_status": ("/messages/?status=sending", results),
        "message_log_day": (f"/messages/?date_from={day}&date_to={day}", results),
        "message_log_campaign_failed": (f"/messages/?campaign={campaign_id}&status=failed", results),
        "message_log_error_code": ("/messages/?error=130472", results),
        "message_log_phone": (f"/messages/?phone={phone}", results),
    }


def cursor_of_page(client, path: str, pages: int) -> str:
    """The `older` cursor that opens page `pages` of a filtered log, found by walking there as a user would."""
    import re

    cursor = ""
    for _ in range(pages - 1):
        html = client.get(path + (f"&older={cursor}" if cursor else "")).get_data(as_text=True)
        found = re.search(r"older=([0-9.]+)", html)
        if not found:
            break
        cursor = found.group(1)
    return cursor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--proposed-index", action="store_true",
                        help=f"also create {PROPOSED_INDEX} (not in the migrations) to measure what it buys")
    args = parser.parse_args()
    if args.messages // args.campaigns > args.contacts:
        parser.error("each campaign messages a contact once: give at least --messages / --campaigns contacts")
    scratch = None if args.database_url else tempfile.mkdtemp()
    url = args.database_url or f"sqlite:///{scratch}/bench.db"
    try:
        with private_redis(args.redis_url) as redis_url:
            print(json.dumps(run(url, redis_url, args)))
    finally:
        if scratch:  # a million-row SQLite file is a few hundred megabytes
            shutil.rmtree(scratch, ignore_errors=True)


def run(url: str, redis_url: str, args) -> dict:
    app, fill_seconds, total = prepare(url, redis_url, args)
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1:0"  # user 1, session version 0 (a new user's)
        session["_fresh"] = True
    campaign_id = args.campaigns // 2
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 45 * 86400))
    phone = "%2B91%20" + str(9000000000 + (campaign_id - 1) * (args.messages // args.campaigns) % args.contacts)
    older = cursor_of_page(client, "/messages/?status=failed", 20)
    ours = {}
    for name, (path, headers) in our_pages(campaign_id, phone, day, older).items():
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.status_code)
        ours[name] = median_ms(lambda p=path, h=headers: client.get(p, headers=h), args.repeat)
        print(json.dumps({"page": name, "path": path, "ms": ours[name]}), file=sys.stderr)
    with app.app_context():
        redis = app.extensions["redis"]
        ours["dashboard_uncached_contacts"] = median_ms(
            lambda: (redis.delete(contact_total_key()), client.get("/?period=30d")), args.repeat)
        naive = {}
        with db.engine.connect() as connection:
            for name, queries in naive_queries(Sql(db.engine.dialect.name), campaign_id, day).items():
                naive[name] = median_ms(lambda q=queries: [connection.execute(text(s)).all() for s in q],
                                        args.repeat)
    pages = ("dashboard", "campaign_analytics", "message_log", "message_log_failed_page_20", "message_log_day")
    return {
        "database": url.split(":")[0].split("+")[0],
        "messages": total,
        "campaigns": args.campaigns,
        "contacts": args.contacts,
        "fill_seconds": round(fill_seconds, 1),
        "ms": ours,
        "naive_ms": naive,
        "naive_over_ours": {name: round(naive[name] / max(ours[name], 0.1), 1) for name in pages},
        "goal_ms": GOAL_MS,
        "all_under_goal": all(value < GOAL_MS for value in ours.values()),
        "proposed_index": args.proposed_index,
    }


if __name__ == "__main__":
    main()
