"""Jinja filters and globals shared by all templates."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask

from app.services.admin import settings


def init_app(app: Flask) -> None:
    app.add_template_filter(local_time)
    app.add_template_global(now_local)
    app.add_template_global(settings.get, "setting")


def local_time(value: datetime | None, fmt: str = "%d %b %Y, %H:%M") -> str:
    """Show UTC timestamps in the business's timezone."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(settings.get("timezone"))).strftime(fmt)


def now_local(fmt: str = "%H:%M:%S") -> str:
    return local_time(datetime.now(UTC), fmt)
