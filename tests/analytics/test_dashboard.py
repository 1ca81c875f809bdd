"""The home dashboard: numbers and rates over a known dataset, periods, the polled fragment, the chart's data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.extensions import db
from app.models import HourlyMessageStats
from app.services.admin import settings
from app.services.analytics import dashboard as analytics
from tests.conftest import run_jobs
from tests.factories.analytics import HTMX, C, add_contacts, add_messages, chart_json, figure, make_campaign
from tests.factories.jobs import FLAG, flaky_job

NOW = datetime.now(UTC)


def seed(app) -> dict[str, int]:
    """Messages today, 3, 20, 60 and 100 days ago, so each period holds a known share."""
    contacts = add_contacts(app, 40)
    add_contacts(app, 2, start=100, opted_out_at=NOW - timedelta(days=2))
    add_contacts(app, 1, start=200, opted_out_at=NOW - timedelta(days=30))
    add_contacts(app, 1, start=300, deleted_at=NOW - timedelta(days=1))
    old = make_campaign(app, "Old sale", started_at=NOW - timedelta(days=100))
    add_messages(app, old, contacts[0:5], "read", NOW - timedelta(days=100))
    spring = make_campaign(app, "Spring sale", started_at=NOW - timedelta(days=60))
    add_messages(app, spring, contacts[0:4], "delivered", NOW - timedelta(days=60))
    add_messages(app, spring, contacts[4:6], "failed", NOW - timedelta(days=60), error_code=131026)
    month = make_campaign(app, "Month offer", started_at=NOW - timedelta(days=20))
    add_messages(app, month, contacts[0:10], "sent", NOW - timedelta(days=20))
    week = make_campaign(app, "Week offer", started_at=NOW - timedelta(days=3))
    add_messages(app, week, contacts[0:6], "read", NOW - timedelta(days=3), replied=True)
    add_messages(app, week, contacts[6:8], "delivered", NOW - timedelta(days=3))
    today = make_campaign(app, "Today's deal", status=C.RUNNING, started_at=NOW)
    add_messages(app, today, contacts[0:3], "delivered", NOW)
    add_messages(app, today, contacts[3:4], "failed", NOW, error_code=131050)
    add_messages(app, today, contacts[4:8], "pending", NOW)
    make_campaign(app, "Next week", status=C.SCHEDULED)
    return {"today": today}


def test_numbers_and_rates_for_the_default_period_of_seven_days(app, staff_client):
    seed(app)
    html = staff_client.get("/").get_data(as_text=True)
    assert figure(html, "figure", "contacts") == "43"  # the deleted contact is not counted
    assert "2 opted out in the last 7 days" in html
    assert figure(html, "figure", "running") == "1" and "1 scheduled to start later" in html
    assert figure(html, "figure", "today") == "3"
    # 7 days: week offer (8 sent, 8 delivered, 6 read, 6 replied) + today (3 sent, 3 delivered, 1 failed)
    assert figure(html, "rate", "delivery") == "100%" and "11 of 11 sent" in html
    assert figure(html, "rate", "read") == "54.5%"
    assert figure(html, "rate", "failure") == "8.3%"
    assert figure(html, "rate", "reply") == "54.5%"


def test_switching_the_period_changes_the_rates_and_the_chart_resolution(app, staff_client):
    seed(app)
    today = staff_client.get("/?period=today").get_data(as_text=True)
    assert figure(today, "rate", "delivery") == "100%" and "3 of 3 sent" in today
    assert figure(today, "rate", "failure") == "25%" and 'aria-current="page">Today<' in today
    assert chart_json(today, "series-json")["labels"][-1].count(":") == 1  # hours

    month = staff_client.get("/?period=30d").get_data(as_text=True)
    assert "11 of 21 sent" in month  # delivered of sent: 10 + 8 + 3 sent
    assert figure(month, "rate", "read") == "28.6%"  # 6 of 21
    assert ":" not in chart_json(month, "series-json")["labels"][-1]  # days

    quarter = staff_client.get("/?period=90d").get_data(as_text=True)
    assert "15 of 25 sent" in quarter and figure(quarter, "rate", "failure") == "10.7%"  # 3 of 28 attempted
    assert len(chart_json(quarter, "series-json")["labels"]) == 90

    unknown = staff_client.get("/?period=forever").get_data(as_text=True)
    assert 'aria-current="page">7 days<' in unknown


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.get("timezone"))


def test_chart_data_matches_the_hourly_stats(app, staff_client):
    seed(app)
    today = chart_json(staff_client.get("/?period=today").get_data(as_text=True), "series-json")
    week_html = staff_client.get("/?period=7d").get_data(as_text=True)
    week = chart_json(week_html, "series-json")
    assert today["kind"] == "series"
    assert [d["key"] for d in today["datasets"]] == ["sent", "delivered", "read", "failed"]
    assert len(week["labels"]) == 7 and len(today["labels"]) <= 25
    with app.app_context():
        now, zone = datetime.now(UTC), _zone()
        for period, data in (("today", today), ("7d", week)):
            start = analytics.period_start(analytics.PERIODS[period], now, zone)
            rows = list(db.session.scalars(select(HourlyMessageStats).where(HourlyMessageStats.hour >= start)))
            for dataset in data["datasets"]:
                assert sum(dataset["data"]) == sum(getattr(row, dataset["key"]) for row in rows)
        start = analytics.period_start(analytics.PERIODS["today"], now, zone)
        by_hour = {row.hour: row for row in db.session.scalars(select(HourlyMessageStats))}
    for index, label in enumerate(today["labels"]):  # one point per hour bucket, in local time
        hour = start + timedelta(hours=index)
        assert label == hour.astimezone(zone).strftime("%H:%M")
        row = by_hour.get(hour)
        assert today["datasets"][0]["data"][index] == (row.sent if row else 0)
        assert today["datasets"][3]["data"][index] == (row.failed if row else 0)
    # The same numbers as a table for screen readers and anyone who prefers them.
    assert "<details" in week_html and "Show the numbers" in week_html and "<caption" in week_html
    assert week_html.count('<tr><th scope="row">') == 7


def test_the_polled_fragment_swaps_sections_by_id_and_leaves_the_chart(app, staff_client):
    ids = seed(app)
    page = staff_client.get("/?period=30d").get_data(as_text=True)
    assert '<canvas id="series-chart"' in page and 'hx-trigger="every 5s"' in page and 'hx-swap="none"' in page
    assert 'hx-get="/?period=30d"' in page and 'style="' not in page

    fragment = staff_client.get("/?period=30d", headers=HTMX).get_data(as_text=True)
    assert "<html" not in fragment and "<canvas" not in fragment
    for section in ("dashboard-headline", "series-data", "dashboard-campaigns", "system-status"):
        assert f'id="{section}" ' in fragment or f'id="{section}"' in fragment
    assert fragment.count('hx-swap-oob="true"') == 4
    assert chart_json(fragment, "series-json") == chart_json(page, "series-json")
    # The running campaign with its live progress: 4 of 8 done (3 sent, 1 failed).
    assert "Today&#39;s deal" in fragment and 'value="50"' in fragment
    assert f'href="/campaigns/{ids["today"]}"' in fragment and f'/campaigns/{ids["today"]}/analytics' in fragment


def test_queue_health_shows_workers_depth_and_failed_jobs(app, staff_client, monkeypatch):
    html = staff_client.get("/").get_data(as_text=True)
    assert "System status" in html and figure(html, "figure", "failed-jobs") == "0"
    monkeypatch.setenv(FLAG, "1")
    with app.app_context():
        app.extensions["queues"]["low"].enqueue(flaky_job, 1)
        app.extensions["queues"]["low"].enqueue(flaky_job, 2)
    fragment = staff_client.get("/", headers=HTMX).get_data(as_text=True)
    assert "Jobs waiting" in fragment and ">2<" in fragment
    run_jobs(app)
    fragment = staff_client.get("/", headers=HTMX).get_data(as_text=True)
    assert figure(fragment, "figure", "failed-jobs") == "2" and "an administrator can retry them" in fragment


def test_an_empty_installation_shows_dashes_not_errors(app, admin_client):
    html = admin_client.get("/").get_data(as_text=True)
    assert figure(html, "rate", "delivery") == "—" and figure(html, "figure", "contacts") == "0"
    assert "No campaign is sending right now." in html


def test_the_dashboard_needs_a_login(client):
    assert client.get("/").headers["Location"].startswith("/login")
    assert client.get("/", headers=HTMX).status_code == 401
