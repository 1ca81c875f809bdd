"""Housekeeping jobs run on a schedule (see jobs/schedule.py)."""

import logging

from app.services.admin import retention

log = logging.getLogger(__name__)


def apply_retention() -> dict:
    """Remove data past its retention period; returns what was removed (kept as the job result)."""
    report = retention.apply_retention()
    log.info("retention: %s", report)
    return report.__dict__
