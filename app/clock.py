"""The one clock. Every module asks `utcnow()` here, so a test fakes time in one place (the `clock` fixture in
tests/conftest.py) instead of patching each module that imported it."""

from __future__ import annotations

from datetime import UTC, datetime

_fixed: datetime | None = None


def utcnow() -> datetime:
    """Now, timezone-aware in UTC (or the time a test fixed)."""
    return _fixed if _fixed is not None else datetime.now(UTC)


def fix(at: datetime | None) -> None:
    """Make `utcnow` answer `at` until fixed again; None gives back the real clock. For tests only."""
    global _fixed
    _fixed = at
