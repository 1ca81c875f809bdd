"""Messages through the API: an approved template with its variables, or text inside the 24-hour window, to one
number. Queued through the one send path (app.services.sending.direct), so the shared rate limit, opt-out check and
retries apply; the caller queues the direct lane after the commit. Like a campaign's messages (and unlike a staff
reply) an API send does not open or move an inbox conversation: a shop's order updates would bury the customers
who wrote. It shows in the message log, and in the contact's thread when there is one.

`Idempotency-Key`: the message and the (key, idempotency key) row commit together under a unique constraint, so of
concurrent retries exactly one commits; the others roll back and answer with that one's message.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import lazyload

from app.clock import utcnow
from app.extensions import db
from app.models import (
    ApiIdempotencyKey,
    Campaign,
    Contact,
    Conversation,
    Message,
    MessageSource,
    MessageTemplate,
    TemplateStatus,
)
from app.services.api import contacts as api_contacts
from app.services.api import problems, render
from app.services.api.keys import Caller
from app.services.api.problems import Problem, field_error
from app.services.api.schemas import MessageIn, MessageOut
from app.services.contacts import phones
from app.services.errors import NotFound
from app.services.inbox import conversations, replies
from app.services.sending import direct
from app.services.sending.sender import TemplateRef
from app.services.templates import rendering

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, as a header carries it
OPTED_OUT = "This customer opted out of messages; they can opt back in by writing START."


def fingerprint(data: MessageIn) -> str:
    """The request's content, so a reused idempotency key with a different request is refused, not replayed."""
    return hashlib.sha256(json.dumps(data.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def check_idempotency_key(value: str | None) -> str | None:
    if value is not None and not IDEMPOTENCY_KEY.match(value):
        raise problems.invalid([field_error("Idempotency-Key", "Use 1 to 255 printable ASCII characters.")])
    return value


def send(caller: Caller, data: MessageIn, idempotency_key: str | None) -> tuple[MessageOut, bool]:
    """Queue the message; (message, replayed). A retry with the same idempotency key returns the first. Commits.

    The answer is read before the commit, which would otherwise expire the row and cost another query."""
    request_hash = fingerprint(data)
    for attempt in range(2):
        replayed = _replay(caller.id, idempotency_key, request_hash) if idempotency_key else None
        if replayed is not None:
            return render.message_out(replayed), True
        try:
            message = _queue(caller, data)
            if idempotency_key:
                db.session.add(ApiIdempotencyKey(api_key_id=caller.id, key=idempotency_key,
                                                 request_hash=request_hash, message_id=message.id))
            answer = render.message_out(message)
            db.session.commit()
            return answer, False
        except IntegrityError:
            # A concurrent retry committed first (the idempotency key), or created this new contact first.
            db.session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _replay(key_id: int, idempotency_key: str, request_hash: str) -> Message | None:
    row = db.session.scalar(select(ApiIdempotencyKey).where(ApiIdempotencyKey.api_key_id == key_id,
                                                            ApiIdempotencyKey.key == idempotency_key))
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Problem(422, "This Idempotency-Key was already used with a different request.",
                      [field_error("Idempotency-Key", "Already used with a different request.")],
                      kind="idempotency-key-reused")
    return db.session.get(Message, row.message_id)


def _queue(caller: Caller, data: MessageIn) -> Message:
    contact = _contact(data.to)
    now = utcnow()
    if data.text is not None:
        if not conversations.window_for(_last_inbound_at(contact.id), now).open:
            raise problems.invalid([field_error("text", replies.CLOSED_WINDOW)], replies.CLOSED_WINDOW)
        message = direct.queue_text(contact.id, data.text, MessageSource.API, now, api_key_id=caller.id)
    else:
        message = _queue_template(caller, data, contact, now)
    message.contact = contact  # already loaded: the answer needs its phone, without loading it again
    return message


def _queue_template(caller: Caller, data: MessageIn, contact: Contact, now: datetime) -> Message:
    template = _approved_template(data.template.name, data.template.language)
    _check_variables(template, data.variables)
    mapping = {key: {"source": "literal", "value": value} for key, value in data.variables.items()}
    rendered = rendering.render(Campaign(template=template, variables=mapping), contact)
    return direct.queue_template(contact.id, TemplateRef(template.name, template.language), rendered.components,
                                 rendered.preview, MessageSource.API, now, template_id=template.id,
                                 api_key_id=caller.id)


def _contact(raw_phone: str) -> Contact:
    """The number's contact, created when new; refused when deleted or opted out."""
    phone = api_contacts.parse_phone(raw_phone, "to")
    # Tags are not needed to send; their selectin load would be one more query per request.
    contact = db.session.scalar(select(Contact).where(Contact.phone == phone).options(lazyload(Contact.tags)))
    if contact is None:
        contact = Contact(phone=phone, wa_id=phones.wa_id(phone), timezone=phones.time_zone(phone), attributes={})
        db.session.add(contact)
        db.session.flush()
    if contact.deleted_at is not None:
        raise Problem(409, api_contacts.DELETED, [field_error("to", api_contacts.DELETED)])
    if contact.opted_out:
        raise Problem(422, OPTED_OUT, [field_error("to", OPTED_OUT)], kind="opted-out")
    return contact


def _last_inbound_at(contact_id: int):
    return db.session.scalar(select(Conversation.last_inbound_at).where(Conversation.contact_id == contact_id))


def _approved_template(name: str, language: str) -> MessageTemplate:
    template = db.session.scalar(select(MessageTemplate).where(MessageTemplate.name == name,
                                                               MessageTemplate.language == language))
    if template is None:
        raise problems.invalid([field_error("template", f"There is no template “{name}” in {language}.")])
    if template.status != TemplateStatus.APPROVED:
        raise problems.invalid([field_error("template", f"The template “{name}” is {template.status.lower()}, "
                                                        "not approved; only approved templates can be sent.")])
    return template


def _check_variables(template: MessageTemplate, values: dict[str, str]) -> None:
    variables = rendering.template_variables(template)
    keys = {variable.key for variable in variables}
    errors = [field_error(f"variables.{v.key}", f"Fill in “{v.label}”.") for v in variables
              if not rendering.clean(values.get(v.key))]
    known = ", ".join(sorted(keys)) or "none"
    errors += [field_error(f"variables.{key}", f"This template has no such variable; it has: {known}.")
               for key in values if key not in keys]
    if errors:
        raise problems.invalid(errors)


def get_message(message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.direction != "out":
        raise NotFound("That message does not exist.")
    return message

