"""What a key may do: read or write per area. The areas are data, so commerce and alerts join by adding a line."""

from __future__ import annotations

from collections.abc import Iterable

from app.services.errors import ServiceError

AREAS = {  # area → what it covers, as the key form shows it
    "contacts": "Contacts and their tags",
    "messages": "Sending messages and reading their status",
    "campaigns": "Campaigns: create, launch, control, metrics",
    "templates": "Message templates",
}
LEVELS = ("read", "write")  # write includes read
ALL = tuple(f"{area}:{level}" for area in AREAS for level in LEVELS)


def allows(scopes: Iterable[str], needed: str) -> bool:
    """True when the key's scopes cover `needed` ("contacts:read"); a write scope covers reading too."""
    granted = set(scopes)
    area, _, level = needed.partition(":")
    return needed in granted or (level == "read" and f"{area}:write" in granted)


def clean(scopes: Iterable[str]) -> list[str]:
    """The chosen scopes in a steady order; ServiceError when none or an unknown one is chosen."""
    chosen = set(scopes)
    unknown = chosen - set(ALL)
    if unknown:
        raise ServiceError(f"Unknown permission: {', '.join(sorted(unknown))}.", field="scopes")
    if not chosen:
        raise ServiceError("Choose at least one permission for the key.", field="scopes")
    return [scope for scope in ALL if scope in chosen]
