"""A customer's new number, announced by WhatsApp in a `user_changed_number` system notice.

Staff apply it with one button in the thread rather than it being applied on arrival: moving a contact to another
number changes who every later campaign reaches, and when another contact already has that number (the customer
wrote from it first, or it was imported) a person has to decide which contact to keep; the notice stays offered
until then.
"""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import Contact, Message
from app.services.admin import settings
from app.services.contacts import edits
from app.services.errors import NotFound, ServiceError

CHANGED_NUMBER = "user_changed_number"


def offered_number(message: Message) -> str | None:
    """The new number (E.164) a changed-number notice offers, unless the contact already has it."""
    system = (message.content or {}).get("system") or {}
    digits = str(system.get("wa_id") or system.get("new_wa_id") or "")
    if message.message_type != "system" or system.get("type") != CHANGED_NUMBER or not digits.isdigit():
        return None
    number = f"+{digits}"
    return None if message.contact is not None and message.contact.phone == number else number


def use_new_number(contact_id: int, message_id: int) -> Contact:
    """Give the contact the number their changed-number notice carries; ServiceError if it is taken. Commits."""
    message = db.session.scalars(select(Message).where(Message.id == message_id, Message.contact_id == contact_id,
                                                       Message.direction == "in")).first()
    if message is None:
        raise NotFound("No such message in this conversation.")
    number = offered_number(message)
    if number is None:
        raise ServiceError("This notice carries no new number to use.")
    return edits.change_phone(contact_id, number, settings.get("default_region"))
