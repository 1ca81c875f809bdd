"""Tags: case-insensitive names, created on first use."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from app.extensions import db
from app.models import Tag
from app.services.errors import ServiceError

MAX_TAG_LENGTH = 64


def tag_key(name: str) -> str:
    return " ".join(name.split()).casefold()


def clean_tag_names(names: Iterable[str]) -> list[str]:
    """Trim, collapse spaces, drop empties and case-insensitive duplicates, keep first spelling."""
    seen: dict[str, str] = {}
    for raw in names:
        name = " ".join((raw or "").split())
        if not name:
            continue
        if len(name) > MAX_TAG_LENGTH:
            raise ServiceError(f"Tag “{name[:20]}…” is longer than {MAX_TAG_LENGTH} characters.", field="tags")
        seen.setdefault(tag_key(name), name)
    return list(seen.values())


def parse_tag_list(text: str) -> list[str]:
    """Tags typed as one comma-separated string."""
    return clean_tag_names((text or "").split(","))


def ensure_tags(names: Iterable[str]) -> list[Tag]:
    """Return the Tag rows for these names, creating missing ones (flushes, does not commit)."""
    wanted = {tag_key(name): name for name in clean_tag_names(names)}
    if not wanted:
        return []
    existing = {tag.key: tag for tag in db.session.scalars(select(Tag).where(Tag.key.in_(wanted)))}
    for key, name in wanted.items():
        if key not in existing:
            existing[key] = Tag(name=name, key=key)
            db.session.add(existing[key])
    db.session.flush()
    return [existing[key] for key in wanted]


def all_tags() -> list[Tag]:
    return list(db.session.scalars(select(Tag).order_by(Tag.key)))
