"""Finding contacts: the filters behind the contact list, bulk actions and exports."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, select

from app.extensions import db
from app.models import Contact, Tag, contact_tags
from app.numbers import page_number
from app.services.contacts import phones

PAGE_SIZE = 50
COUNT_CAP = 10_000  # beyond this the list says "10,000+" instead of counting a million rows
SORTS = {
    "newest": (Contact.id.desc(),),
    "oldest": (Contact.id.asc(),),
    "name": (func.lower(Contact.name).asc(), Contact.id.asc()),
    "phone": (Contact.phone.asc(),),
}
STATUSES = ("active", "subscribed", "opted_out", "deleted")
PHONE_LIKE = re.compile(r"^[\d\s()+\-./]{3,}$")


@dataclass(frozen=True)
class ContactFilter:
    """What the contact list shows; every field round-trips through the URL."""

    q: str = ""
    tag: str = ""
    status: str = "active"  # active = not deleted; subscribed / opted_out narrow it; deleted = the bin
    created_from: str = ""
    created_to: str = ""
    sort: str = "newest"
    page: int = 1

    @classmethod
    def from_args(cls, args) -> ContactFilter:
        values = {f.name: (args.get(f.name) or "").strip() for f in fields(cls)}
        page = values.pop("page")
        criteria = cls(**values, page=page_number(page))
        if criteria.status not in STATUSES:
            criteria = replace(criteria, status="active")
        if criteria.sort not in SORTS:
            criteria = replace(criteria, sort="newest")
        return criteria

    def to_args(self, **changes: Any) -> dict[str, Any]:
        """Non-default values only, so shared links stay short."""
        current = replace(self, **changes)
        defaults = ContactFilter()
        return {f.name: getattr(current, f.name) for f in fields(self)
                if getattr(current, f.name) != getattr(defaults, f.name)}

    @property
    def is_filtered(self) -> bool:
        return bool(self.q or self.tag or self.created_from or self.created_to or self.status != "active")


@dataclass
class ContactPage:
    rows: list[Contact]
    criteria: ContactFilter
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.criteria.page > 1


def matching(criteria: ContactFilter, region: str) -> Select:
    """SELECT of contact ids matching the filter (no ordering, no paging)."""
    statement = select(Contact.id)
    for condition in _conditions(criteria, region):
        statement = statement.where(condition)
    return statement


def _conditions(criteria: ContactFilter, region: str) -> list:
    conditions = [Contact.deleted_at.is_not(None) if criteria.status == "deleted" else Contact.deleted_at.is_(None)]
    if criteria.status == "subscribed":
        conditions.append(Contact.opted_out_at.is_(None))
    elif criteria.status == "opted_out":
        conditions.append(Contact.opted_out_at.is_not(None))
    if criteria.q:
        conditions.append(_text_condition(criteria.q, region))
    if criteria.tag:
        conditions.append(_has_tag(criteria.tag))
    conditions.extend(_date_conditions(criteria))
    return conditions


def _text_condition(text: str, region: str):
    """A phone typed in any format matches its contact; anything else searches names (and phone digits)."""
    digits = re.sub(r"\D", "", text)
    if PHONE_LIKE.match(text) and len(digits) >= 3:
        exact = _as_e164(text, region)
        if exact:
            return Contact.phone == exact
        return Contact.wa_id.contains(digits.lstrip("0") or digits, autoescape=True)
    return func.lower(Contact.name).contains(text.lower(), autoescape=True)


def _as_e164(text: str, region: str) -> str | None:
    return phones.check_phone(text, region)[0]


def _has_tag(tag_key: str):
    return exists().where(
        contact_tags.c.contact_id == Contact.id,
        contact_tags.c.tag_id == select(Tag.id).where(Tag.key == tag_key.casefold()).scalar_subquery(),
    )


def _date_conditions(criteria: ContactFilter) -> list:
    conditions = []
    start, end = _parse_day(criteria.created_from), _parse_day(criteria.created_to)
    if start:
        conditions.append(Contact.created_at >= datetime.combine(start, time.min, UTC))
    if end:
        conditions.append(Contact.created_at < datetime.combine(end + timedelta(days=1), time.min, UTC))
    return conditions


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def search(criteria: ContactFilter, region: str, page_size: int = PAGE_SIZE) -> ContactPage:
    """One page of matching contacts; fetches one extra row to know whether a next page exists."""
    statement = (select(Contact).where(and_(*_conditions(criteria, region))).order_by(*SORTS[criteria.sort])
                 .offset((criteria.page - 1) * page_size).limit(page_size + 1))
    rows = list(db.session.scalars(statement))
    return ContactPage(rows=rows[:page_size], criteria=criteria, has_next=len(rows) > page_size)


def count_matching(criteria: ContactFilter, region: str, cap: int | None = None) -> tuple[int, bool]:
    """(count, capped): counting stops at COUNT_CAP so a million-row table answers fast."""
    cap = cap or COUNT_CAP
    limited = matching(criteria, region).limit(cap + 1).subquery()
    total = db.session.scalar(select(func.count()).select_from(limited))
    return min(total, cap), total > cap


def get_contact(contact_id: int) -> Contact | None:
    return db.session.get(Contact, contact_id)


def matching_ids(criteria: ContactFilter, region: str):
    """Subquery of ids for set-based bulk actions over everything that matches."""
    return matching(criteria, region).scalar_subquery()
