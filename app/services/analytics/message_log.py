"""The message log: every message, newest first, filtered and paged without counting the whole table.

Pages are keyset pages on (created_at, id): "older" and "newer" cursors instead of page numbers, so the
thousandth page costs what the first does. A campaign (and status) filter reads through
ix_messages_campaign_id_status_next_attempt_at, a phone through the contact's ix_messages_contact_id_created_at;
dates, statuses, error codes and the plain list walk ix_messages_created_at newest first. A page finds its ids
before loading rows and contacts, so only 51 rows are ever joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import defaultload

from app import numbers
from app.extensions import db
from app.models import Campaign, Contact, Message, MessageStatus
from app.services.analytics.campaign_report import explain
from app.services.contacts import phones
from app.whatsapp.errors import ERROR_TABLE

PAGE_SIZE = 50
CAMPAIGN_CHOICES = 500
MAX_CODE = 999_999_999  # campaign ids and error codes typed in the filter: 9 digits fit an INTEGER column
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
S = MessageStatus
STATUSES = {S.PENDING: "Waiting", S.SENDING: "Sending", S.SENT: "Sent", S.DELIVERED: "Delivered", S.READ: "Read",
            S.FAILED: "Failed", S.SKIPPED: "Skipped", S.CANCELLED: "Cancelled", S.RECEIVED: "Received (reply)"}
CURSOR = re.compile(r"^(\d{1,20})\.(\d{1,20})$")
PHONE_LIKE = re.compile(r"^[\d\s()+\-./]{3,}$")


@dataclass(frozen=True)
class MessageFilter:
    """What the log shows; every field round-trips through the URL."""

    campaign: str = ""
    status: str = ""
    error: str = ""
    date_from: str = ""
    date_to: str = ""
    phone: str = ""
    older: str = ""  # cursor: rows before this one
    newer: str = ""  # cursor: rows after this one

    @classmethod
    def from_args(cls, args) -> MessageFilter:
        values = {f.name: (args.get(f.name) or "").strip()[:64] for f in fields(cls)}
        criteria = cls(**values)
        if criteria.status not in STATUSES:
            criteria = replace(criteria, status="")
        for name in ("campaign", "error"):
            if numbers.whole_number(getattr(criteria, name), MAX_CODE) is None:
                criteria = replace(criteria, **{name: ""})
        return criteria

    def to_args(self, **changes: Any) -> dict[str, str]:
        """Non-empty values only, so shared links stay short."""
        current = replace(self, **changes)
        return {f.name: getattr(current, f.name) for f in fields(current) if getattr(current, f.name)}

    def filters(self) -> dict[str, str]:
        """The filters without the page position (for exports, and for the first page of new filters)."""
        return self.to_args(older="", newer="")

    @property
    def is_filtered(self) -> bool:
        return bool(self.filters())


@dataclass(frozen=True)
class LogRow:
    message: Message
    status_label: str
    campaign_name: str | None
    error_title: str | None
    error_explanation: str | None


@dataclass
class MessagePage:
    rows: list[LogRow]
    criteria: MessageFilter
    older: str | None  # cursor for the next (older) page, if there is one
    newer: str | None  # cursor for the previous (newer) page, if there is one


def conditions(criteria: MessageFilter, region: str, zone: ZoneInfo) -> list:
    found = []
    if criteria.campaign:
        found.append(Message.campaign_id == int(criteria.campaign))
    if criteria.status:
        found.append(_status_is(criteria.status))
    if criteria.error:
        found.append(Message.error_code == int(criteria.error))
    if criteria.phone:
        found.append(Message.contact_id.in_(select(Contact.id).where(phone_condition(criteria.phone, region))))
    return found + _date_conditions(criteria, zone)


def _status_is(status: str):
    """SQLite keeps no statistics, so given `status = ?` it takes ix_messages_status_claimed_at and sorts every
    match (a second or more for "read" at a million rows); `status || ''` leaves it the ordered walk down
    ix_messages_created_at instead. Only "sending" (the batches in flight) is always few enough for the status
    index. PostgreSQL weighs both plans with its statistics and gets the plain form."""
    if status != S.SENDING and db.session.get_bind().dialect.name == "sqlite":
        return Message.status.concat("") == status
    return Message.status == status


def phone_condition(text: str, region: str):
    """A whole number in any format finds its contact exactly; a few digits match anywhere in the number;
    words match the contact's name (as in the contact search)."""
    digits = re.sub(r"\D", "", text)
    if not PHONE_LIKE.match(text) or len(digits) < 3:
        return func.lower(Contact.name).contains(text.lower(), autoescape=True)
    e164 = whole_number(text, region)
    if e164:
        return Contact.phone == e164
    return Contact.wa_id.contains(digits.lstrip("0") or digits, autoescape=True)


def whole_number(text: str, region: str) -> str | None:
    return phones.check_phone(text, region)[0] if PHONE_LIKE.match(text) else None


def narrow(criteria: MessageFilter, region: str) -> bool:
    """Whether a filter picks a bounded set through its own index: one campaign's messages, or one number's."""
    return bool(criteria.campaign or (criteria.phone and whole_number(criteria.phone, region)))


def _date_conditions(criteria: MessageFilter, zone: ZoneInfo) -> list:
    found = []
    start, end = parse_day(criteria.date_from), parse_day(criteria.date_to)
    if start:
        found.append(Message.created_at >= local_midnight(start, zone))
    if end:
        found.append(Message.created_at < local_midnight(end + timedelta(days=1), zone))
    return found


def parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, zone).astimezone(UTC)


def search(criteria: MessageFilter, region: str, zone: ZoneInfo, page_size: int = PAGE_SIZE) -> MessagePage:
    """One page of the log; fetches one extra row to know whether there is a further page."""
    going_back = bool(criteria.newer and parse_cursor(criteria.newer))
    position = parse_cursor(criteria.newer if going_back else criteria.older)
    found = conditions(criteria, region, zone)
    if position:
        found.append(_after(*position) if going_back else _before(*position))
    messages = _page_of(found, not going_back, page_size + 1, narrow(criteria, region))
    more = len(messages) > page_size
    messages = messages[:page_size]
    if going_back:
        messages.reverse()
    first, last = (cursor(messages[0]), cursor(messages[-1])) if messages else (None, None)
    older = last if (more or going_back) and messages else None
    newer = first if ((more and going_back) or (position and not going_back)) and messages else None
    return MessagePage(_log_rows(messages), criteria, older, newer)


def _page_of(found: list, newest_first: bool, limit: int, bounded: bool) -> list[Message]:
    """Find the page's ids first, then load those rows with their contacts: joining before the LIMIT would join
    every message that shares the page's created_at (a campaign's recipients all do)."""
    ids = select(Message.id, Message.created_at).where(*found)
    if bounded:
        # OFFSET 0 fences the filter off from ORDER BY … LIMIT, so the planner reads the campaign's (or contact's)
        # rows through their own index and sorts them, rather than walking ix_messages_created_at from the newest
        # message hoping to meet them soon (over 100 ms for an old campaign at a million rows).
        ids = ids.offset(0)
    page = ids.subquery()
    ids = select(page.c.id).order_by(*_order(page.c.created_at, page.c.id, newest_first)).limit(limit)
    statement = (select(Message).where(Message.id.in_(ids.scalar_subquery()))
                 .order_by(*_order(Message.created_at, Message.id, newest_first)).options(_without_tags()))
    return list(db.session.scalars(statement))


def _order(created_at, message_id, newest_first: bool) -> tuple:
    return (created_at.desc(), message_id.desc()) if newest_first else (created_at.asc(), message_id.asc())


def _without_tags():
    # The log shows each contact's phone and name; their tags would cost one more query per page.
    return defaultload(Message.contact).lazyload(Contact.tags)


def _before(at: datetime, message_id: int):
    # Spelled out (not a row comparison) so PostgreSQL can use ix_messages_created_at for `created_at <= at`.
    return and_(Message.created_at <= at, or_(Message.created_at < at, Message.id < message_id))


def _after(at: datetime, message_id: int):
    return and_(Message.created_at >= at, or_(Message.created_at > at, Message.id > message_id))


def cursor(message: Message) -> str:
    delta = message.created_at - EPOCH
    return f"{(delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds}.{message.id}"


def parse_cursor(value: str) -> tuple[datetime, int] | None:
    match = CURSOR.match(value or "")
    if not match:
        return None
    message_id = numbers.whole_number(match.group(2))
    if message_id is None:
        return None
    try:
        return EPOCH + timedelta(microseconds=int(match.group(1))), message_id
    except OverflowError:
        return None


def _log_rows(messages: list[Message]) -> list[LogRow]:
    names = campaign_names({message.campaign_id for message in messages if message.campaign_id})
    rows = []
    for message in messages:
        title = explanation = None
        if message.error_code is not None or message.status == S.FAILED:
            title, explanation = explain(message.error_code, message.error_title, message.error_detail)
        rows.append(LogRow(message, STATUSES.get(message.status, message.status), names.get(message.campaign_id),
                           title, explanation))
    return rows


def campaign_names(ids: set[int] | None = None) -> dict[int, str]:
    statement = select(Campaign.id, Campaign.name)
    if ids is not None:
        if not ids:
            return {}
        statement = statement.where(Campaign.id.in_(ids))
    return dict(db.session.execute(statement).all())


def campaign_choices() -> list[tuple[int, str]]:
    """The latest campaigns (drafts have no messages) for the filter's drop-down."""
    rows = db.session.execute(select(Campaign.id, Campaign.name).where(Campaign.status != "draft")
                              .order_by(Campaign.id.desc()).limit(CAMPAIGN_CHOICES))
    return [tuple(row) for row in rows]


def count_up_to(criteria: MessageFilter, region: str, zone: ZoneInfo, cap: int) -> int:
    """How many messages match, counting no further than `cap` + 1 (enough to tell "more than cap")."""
    limited = select(Message.id).where(*conditions(criteria, region, zone)).limit(cap + 1).subquery()
    return db.session.scalar(select(func.count()).select_from(limited))


def count_all(criteria: MessageFilter, region: str, zone: ZoneInfo) -> int:
    """The exact count, for background exports only (never on a page)."""
    return db.session.scalar(select(func.count()).select_from(Message).where(*conditions(criteria, region, zone)))


def error_choices(current: str = "") -> list[tuple[int, str]]:
    """Every error code we know, with its title, for the filter's drop-down (plus the chosen one if unknown)."""
    choices = {code: info.title for code, info in ERROR_TABLE.items()}
    if (code := numbers.whole_number(current, MAX_CODE)) is not None:
        choices.setdefault(code, "Other error")
    return sorted(choices.items())
