"""The inbox: conversations (one per contact who wrote to us), their state, and the 24-hour service window.

A conversation is created by the customer's first message and reopened by each later one. Staff may assign it,
mark it done, and reading it clears its unread count. The window for free text is measured from the customer's
last own message (not from ours, and not from automatic ones such as system notices).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from app.clock import utcnow
from app.extensions import db
from app.models import Contact, Conversation, Message, User
from app.services.errors import NotFound, ServiceError
from app.services.inbox import notes, numbers
from app.services.webhooks.inbound import AUTOMATIC_TYPES, CHANGE_TYPES, StoredMessage, readable_text

WINDOW = timedelta(hours=24)
PAGE_SIZE = 50
THREAD_LIMIT = 500
DELETED = "Deleted by the customer"
FILTERS = {"open": "Open", "unread": "Unread", "mine": "Assigned to me", "done": "Done", "all": "All"}


@dataclass(frozen=True)
class Window:
    open: bool
    closes_at: datetime | None  # when the window closes (or closed); None if the customer never wrote

    @property
    def remaining(self) -> timedelta:
        return max(self.closes_at - utcnow(), timedelta(0)) if self.closes_at else timedelta(0)


@dataclass
class Thread:
    conversation: Conversation
    messages: list[Message]
    window: Window

    def not_sent(self, message: Message) -> str | None:
        """The one-line note shown instead of a bubble for a message that never went out."""
        return notes.not_sent(message)

    def new_number(self, message: Message) -> str | None:
        """The number a changed-number notice offers staff to move the contact to."""
        return numbers.offered_number(message)


def window_for(last_inbound_at: datetime | None, now: datetime | None = None) -> Window:
    """The customer-service window: open for 24 hours after the customer's last own message."""
    if last_inbound_at is None:
        return Window(False, None)
    closes_at = last_inbound_at + WINDOW
    return Window((now or utcnow()) < closes_at, closes_at)


def record_inbound(stored: Iterable[StoredMessage], now: datetime) -> int:
    """Open, reopen and count unread for each contact who wrote; in the caller's transaction."""
    count = 0
    for item in stored:
        at = item.event.timestamp or now
        conversation = _conversation_for(item.contact.id, at)
        if item.event.type in CHANGE_TYPES:
            # An edit or deletion changes a message staff may have read already; the list shows its result.
            conversation.last_preview = _latest_preview(item.contact.id) or conversation.last_preview
            continue
        conversation.unread += 1
        conversation.done_at = None
        _touch(conversation, at, readable_text(item.event) or f"[{item.event.type}]")
        if item.event.type not in AUTOMATIC_TYPES:
            conversation.last_inbound_at = max(filter(None, (conversation.last_inbound_at, at)))
        count += 1
    return count


def record_outbound(contact_id: int, preview: str, at: datetime) -> None:
    """A staff or automatic reply moves its conversation up the list; in the caller's transaction."""
    _touch(_conversation_for(contact_id, at), at, preview)


def _touch(conversation: Conversation, at: datetime, preview: str) -> None:
    if conversation.last_message_at is None or at >= conversation.last_message_at:
        conversation.last_message_at, conversation.last_preview = at, preview[:255]


def _latest_preview(contact_id: int) -> str | None:
    latest = db.session.scalars(select(Message).where(Message.contact_id == contact_id,
                                                      Message.message_type.not_in(sorted(CHANGE_TYPES)))
                                .order_by(Message.created_at.desc(), Message.id.desc()).limit(1)).first()
    if latest is None or latest.direction != "in":
        return None
    return DELETED if (latest.content or {}).get("revoked_at") else latest.body or f"[{latest.message_type}]"


def shown(message: Message) -> bool:
    """Whether the thread shows this row: not an edit or deletion already applied to its original (which shows
    the change instead); one whose original has not arrived shows on its own."""
    return message.message_type not in CHANGE_TYPES or "applied_to" not in (message.content or {})


def _conversation_for(contact_id: int, at: datetime) -> Conversation:
    conversation = db.session.scalars(select(Conversation).where(Conversation.contact_id == contact_id)
                                      .with_for_update(of=Conversation)).first()
    if conversation is None:
        conversation = Conversation(contact_id=contact_id, last_message_at=at, unread=0, created_at=at)
        db.session.add(conversation)
        db.session.flush()
    return conversation


def conversations(filter_name: str, user_id: int, search: str = "", limit: int = PAGE_SIZE) -> list[Conversation]:
    """Conversations for the list, latest activity first."""
    statement = (select(Conversation).join(Contact, Conversation.contact_id == Contact.id)
                 .where(Contact.deleted_at.is_(None))
                 .options(selectinload(Conversation.contact).selectinload(Contact.tags))
                 .order_by(Conversation.last_message_at.desc(), Conversation.id.desc()).limit(limit))
    statement = statement.where(*_filter_conditions(filter_name, user_id))
    if search.strip():
        pattern = f"%{search.strip().lower()}%"
        digits = "".join(ch for ch in search if ch.isdigit())
        matches = [func.lower(Contact.name).like(pattern)]
        if digits:
            matches.append(Contact.phone.like(f"%{digits}%"))
        statement = statement.where(or_(*matches))
    return list(db.session.scalars(statement).unique())


def _filter_conditions(filter_name: str, user_id: int) -> list:
    if filter_name == "unread":
        return [Conversation.unread > 0]
    if filter_name == "mine":
        return [Conversation.assigned_to_id == user_id, Conversation.done_at.is_(None)]
    if filter_name == "done":
        return [Conversation.done_at.is_not(None)]
    if filter_name == "open":
        return [Conversation.done_at.is_(None)]
    return []


def unread_total() -> int:
    """Conversations with unread messages (for the nav badge); one indexed count."""
    statement = select(func.count()).select_from(Conversation).where(Conversation.unread > 0)
    return db.session.scalar(statement) or 0


def thread(contact_id: int) -> Thread:
    """The whole history with a contact, oldest first."""
    conversation = get_conversation(contact_id)
    statement = (select(Message).where(Message.contact_id == contact_id)
                 .options(selectinload(Message.campaign))
                 .order_by(Message.created_at.desc(), Message.id.desc()).limit(THREAD_LIMIT))
    messages = [message for message in reversed(db.session.scalars(statement).unique().all()) if shown(message)]
    return Thread(conversation, messages, window_for(conversation.last_inbound_at))


def mark_read(contact_id: int) -> bool:
    """Staff have the conversation open: clear its unread count (commits); False when nothing was unread."""
    conversation = get_conversation(contact_id)
    if not conversation.unread:
        return False
    conversation.unread, conversation.last_read_at = 0, utcnow()
    db.session.commit()
    return True


def get_conversation(contact_id: int) -> Conversation:
    conversation = db.session.scalars(select(Conversation).where(Conversation.contact_id == contact_id)).first()
    if conversation is None or conversation.contact.deleted_at is not None:
        raise NotFound("No conversation with this contact.")
    return conversation


def assign(contact_id: int, user_id: int | None) -> Conversation:
    """Give the conversation to a staff member (None: unassign). Commits."""
    conversation = get_conversation(contact_id)
    if user_id is not None:
        user = db.session.get(User, user_id)
        if user is None or not user.active:
            raise ServiceError("Choose an active team member.", field="user_id")
    conversation.assigned_to_id = user_id
    db.session.commit()
    return conversation


def set_done(contact_id: int, done: bool) -> Conversation:
    """Mark done (it reopens by itself when the customer writes again) or reopen now. Commits."""
    conversation = get_conversation(contact_id)
    conversation.done_at = utcnow() if done else None
    if done:
        conversation.unread = 0
    db.session.commit()
    return conversation


def team() -> list[User]:
    return list(db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.email)))
