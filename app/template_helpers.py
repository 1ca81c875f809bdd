"""Every Jinja filter and global the templates use, registered here and nowhere else.

Filters: local_time (a UTC time in the shop's timezone), short_time (as a chat list shows it), in_zone (in a
campaign's own timezone), repeat_text (a daily or weekly schedule in words), template_reason (why Meta rejected or
paused a template), phone (a stored number grouped for reading: pages only, never exports or form values that are
edited and sent back), inline_code (`names` in API descriptions as code).
Globals: now_local, setting, has_endpoint, sending_stop_alerts, account_problems and outbound_webhook_notices (the
admins' banners) and inbox_unread (the nav badge).
"""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import phonenumbers
from flask import Flask, current_app
from markupsafe import Markup, escape
from sqlalchemy.exc import SQLAlchemyError

from app.extensions import db
from app.services.admin import account_status, settings
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


def short_time(value: datetime | None, now: datetime | None = None) -> str:
    """A time as a chat list shows it, in the shop's timezone: "08:14" today, "Mon" this week, "8 Dec" before."""
    if value is None:
        return "—"
    zone = ZoneInfo(settings.get("timezone"))
    local, today = value.astimezone(zone), (now or datetime.now(UTC)).astimezone(zone).date()
    days = (today - local.date()).days
    if days <= 0:
        return local.strftime("%H:%M")
    return local.strftime("%a") if days < 7 else f"{local.day} {local:%b}"


def in_zone(value: datetime | None, zone: str | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """A UTC time as a campaign schedules it: in the campaign's own timezone, which may not be the shop's."""
    return value.astimezone(ZoneInfo(zone or "UTC")).strftime(fmt) if value else "—"


T = TypeVar("T")
_BACKTICKED = re.compile(r"`([^`]+)`")


def inline_code(text: str | None) -> Markup:
    """Descriptions written for the OpenAPI document mark names with `backticks`: shown as code, the rest escaped."""
    return Markup(_BACKTICKED.sub(r"<code>\1</code>", str(escape(text or ""))))


def phone(value: str | None) -> str:
    """+919876543210 as people write it, "+91 98765 43210"; anything phonenumbers cannot read is shown as stored."""
    if not value:
        return value or ""
    try:
        number = phonenumbers.parse(value, None)  # stored numbers are E.164: no default country needed
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def now_local(fmt: str = "%H:%M:%S") -> str:
    return local_time(datetime.now(UTC), fmt)


def has_endpoint(name: str) -> bool:
    """Whether a blueprint providing this endpoint is registered (pages link to optional areas only then)."""
    return name in current_app.view_functions


def _even_without_the_database(read: Callable[[], T], default: T) -> Callable[[], T]:
    """A layout read (banners, badges) that gives `default` when the database is away: the layout also frames the
    error pages, and an outage must not break those too."""
    def guarded() -> T:
        try:
            return read()
        except SQLAlchemyError:
            db.session.rollback()
            return default
    guarded.__doc__ = read.__doc__
    return guarded


# For the base layout: the admins' banners (stopped sending, account problems, disabled webhook endpoints) and the
# inbox's unread badge.
sending_stop_alerts = _even_without_the_database(campaign_page.stop_alerts, ())
account_problems = _even_without_the_database(account_status.banner, ())
outbound_webhook_notices = _even_without_the_database(outbound_endpoints.disabled_notices, ())
inbox_unread = _even_without_the_database(conversations.unread_total, 0)


FILTERS = {"local_time": local_time, "short_time": short_time, "in_zone": in_zone, "repeat_text": schedule.describe,
           "template_reason": library.reason_text, "phone": phone,
           "inline_code": inline_code}
GLOBALS = {"now_local": now_local, "setting": settings.get, "has_endpoint": has_endpoint,
           "sending_stop_alerts": sending_stop_alerts, "account_problems": account_problems,
           "inbox_unread": inbox_unread, "outbound_webhook_notices": outbound_webhook_notices}
