"""Every Jinja filter and global the templates use, registered here and nowhere else.

Filters: local_time (a UTC time in the shop's timezone), in_zone (in a campaign's own timezone), repeat_text (a
daily or weekly schedule in words), template_reason (why Meta rejected or paused a template).
Globals: now_local, setting, has_endpoint, sending_stop_alerts and outbound_webhook_notices (the admins' banners) and
inbox_unread (the nav badge).
"""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.services.admin import settings
from app.services.api.outbound import endpoints as outbound_endpoints
from app.services.campaigns import page as campaign_page
from app.services.campaigns import schedule
from app.services.inbox import conversations
from app.services.templates import library


def init_app(app: Flask) -> None:
    for name, function in FILTERS.items():
        app.add_template_filter(function, name)
    for name, function in GLOBALS.items():
        app.add_template_global(function, name)


def local_time(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """Show UTC timestamps in the business's timezone."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(settings.get("timezone"))).strftime(fmt)


def in_zone(value: datetime | None, zone: str | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A UTC time as a campaign schedules it: in the campaign's own timezone, which may not be the shop's."""
    return value.astimezone(ZoneInfo(zone or "UTC")).strftime(fmt) if value else "—"


def now_local(fmt: str = "%H:%M:%S") -> str:
    return local_time(datetime.now(UTC), fmt)


def has_endpoint(name: str) -> bool:
    """Whether a blueprint providing this endpoint is registered (pages link to optional areas only then)."""
    return name in current_app.view_functions


def sending_stop_alerts() -> list[campaign_page.StopAlert]:
    """For the admins' banner in the base layout (campaign_runs/_stop_banner_partial.html)."""
    try:
        return campaign_page.stop_alerts()
    except SQLAlchemyError:
        # The layout also frames the error pages: a database outage must not break those too.
        db.session.rollback()
        return []


def outbound_webhook_notices() -> list:
    """For the admins' banner: webhook endpoints disabled automatically after failing for days."""
    try:
        return outbound_endpoints.disabled_notices()
    except SQLAlchemyError:  # an error page while the database is away must still render
        db.session.rollback()
        return []


def inbox_unread() -> int:
    """For the nav badge: one count, and only on pages that show it."""
    try:
        return conversations.unread_total()
    except SQLAlchemyError:  # an error page while the database is away must still render
        db.session.rollback()
        return 0


FILTERS = {"local_time": local_time, "in_zone": in_zone, "repeat_text": schedule.describe,
           "template_reason": library.reason_text}
GLOBALS = {"now_local": now_local, "setting": settings.get, "has_endpoint": has_endpoint,
           "sending_stop_alerts": sending_stop_alerts, "inbox_unread": inbox_unread,
           "outbound_webhook_notices": outbound_webhook_notices}
