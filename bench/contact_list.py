"""Contact list speed at a million contacts: our pages as served, beside the naive way, in one run.

Usage: python bench/contact_list.py [--contacts 1000000] [--database-url URL] [--redis-url URL]
Fills a fresh database (SQLite file by default, or the given PostgreSQL URL, whose schema is
dropped and rebuilt), then times each page through the Flask test client (server time, median of
several requests) and the naive query (a full COUNT(*) plus OFFSET paging on every keystroke).
Without --redis-url it starts a private Redis server. Prints one final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from app import create_app  # noqa: E402
from app.config import TestConfig  # noqa: E402
from app.extensions import db  # noqa: E402
from bench._common import create_admin, fresh_schema, median_ms, private_redis  # noqa: E402

PAGES = {
    "list": "/contacts/",
    "list_page_100": "/contacts/?page=100",
    "phone_search": "/contacts/?q=090000%2000042",
    "partial_phone_search": "/contacts/?q=4321",
    "name_search": "/contacts/?q=kumar%20123",
    "tag_filter": "/contacts/?tag=gold",
    "count": "/contacts/count?tag=gold",
}
# The naive list: an exact COUNT(*) of the whole match on every keystroke, then the page.
NAIVE = {
    "list": ("SELECT count(*) FROM contacts WHERE deleted_at IS NULL",
             "SELECT * FROM contacts WHERE deleted_at IS NULL ORDER BY id DESC LIMIT 50"),
    "name_search": ("SELECT count(*) FROM contacts WHERE lower(name) LIKE '%kumar 123%'",
                    "SELECT * FROM contacts WHERE lower(name) LIKE '%kumar 123%' ORDER BY id DESC LIMIT 50"),
    "tag_filter": ("SELECT count(*) FROM contacts c JOIN contact_tags t ON t.contact_id = c.id WHERE t.tag_id = 1",
                   "SELECT c.* FROM contacts c JOIN contact_tags t ON t.contact_id = c.id WHERE t.tag_id = 1 "
                   "ORDER BY c.id DESC LIMIT 50"),
}


def fill(count: int) -> None:
    """Generate contacts set-based in the database itself (+91 90000 00001 onwards, every 10th tagged Gold)."""
    dialect = db.engine.dialect.name
    series = ("SELECT generate_series(1, :n) AS i" if dialect == "postgresql"
              else "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) SELECT i FROM s")
    now = "now()" if dialect == "postgresql" else "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    attrs = "'{}'::jsonb" if dialect == "postgresql" else "'{}'"
    with db.engine.begin() as connection:
        connection.execute(text(
            f"INSERT INTO contacts (phone, wa_id, name, attributes, created_at, updated_at) "
            f"SELECT '+91' || (9000000000 + i), '91' || (9000000000 + i), "
            f"'Customer Kumar ' || i, {attrs}, {now}, {now} FROM ({series}) AS g"), {"n": count})
        connection.execute(text("INSERT INTO tags (name, key, created_at) VALUES ('Gold', 'gold', "
                                f"{now})"))
        connection.execute(text("INSERT INTO contact_tags (contact_id, tag_id) SELECT id, 1 FROM contacts "
                                "WHERE id % 10 = 0"))
        if dialect == "postgresql":
            connection.execute(text("ANALYZE"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--redis-url", default=None, help="default: a private Redis server of our own")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    with private_redis(args.redis_url) as redis_url:
        print(json.dumps(run(url, redis_url, args)))


def run(url: str, redis_url: str, args: argparse.Namespace) -> dict:
    app = create_app(TestConfig(url, redis_url))
    with app.app_context():
        fresh_schema()
        start = time.perf_counter()
        fill(args.contacts)
        fill_seconds = time.perf_counter() - start
        create_admin("bench@example.com", "bench-password")
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = "1:0"  # user 1, session version 0 (a new user's)
        session["_fresh"] = True
    ours = {}
    for name, path in PAGES.items():
        assert client.get(path).status_code == 200, path
        ours[name] = median_ms(lambda p=path: client.get(p, headers={"HX-Request": "true",
                                                                    "HX-Target": "contact-results"}), args.repeat)
    naive = {}
    with app.app_context(), db.engine.connect() as connection:
        for name, queries in NAIVE.items():
            naive[name] = median_ms(lambda q=queries: [connection.execute(text(s)).all() for s in q], args.repeat)
    return {
        "database": url.split(":")[0],
        "contacts": args.contacts,
        "fill_seconds": round(fill_seconds, 1),
        "ms": ours,
        "naive_ms": naive,
        "naive_over_ours": {name: round(naive[name] / max(ours[name], 0.1), 1) for name in naive},
    }


if __name__ == "__main__":
    main()
