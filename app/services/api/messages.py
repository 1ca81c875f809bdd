"""Messages through the API: an approved template with its variables, or text inside the 24-hour window, to one
number. Queued through the one send path (app.services.sending.direct), so the shared rate limit, opt-out check and
retries apply; the caller queues the direct lane after the commit (once per commit group). Like a campaign's
messages (and unlike a staff reply) an API send does not open or move an inbox conversation: a shop's order updates
would bury the customers who wrote. It shows in the message log, and in the contact's thread when there is one.

A send is checked here, with reads only, and then written by this process's group commit (message_writer): the
message, the (key, idempotency key) row and a new number's contact in one transaction shared with the sends that
arrived at the same moment, committed before the request is answered. `Idempotency-Key`: the idempotency row has a
unique constraint, so of concurrent retries exactly one message stays; the others answer with that one's message.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, bindparam, select

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
from app.services.api import message_writer, problems, render
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
# A template WhatsApp pauses or rejects, or staff edit, is sent as it was for at most this long by a process that
# used it just before; in exchange a send saves a query and an ORM load (about a fifth of its own work).
APPROVED_FOR = 5.0
APPROVED_LIMIT = 256
_approved: dict[tuple[Engine, str, str], tuple[float, MessageTemplate]] = {}
_CONTACTS = Contact.__table__
# Built once and run on the session's connection: the ORM's execute path and a fresh statement's cache key were
# most of what this lookup cost.
_CONTACT_BY_PHONE = (select(_CONTACTS.c.id, _CONTACTS.c.phone, _CONTACTS.c.name, _CONTACTS.c.attributes,
                            _CONTACTS.c.deleted_at, _CONTACTS.c.opted_out_at)
                     .where(_CONTACTS.c.phone == bindparam("phone")))
OPTED_OUT = "This customer opted out of messages; they can opt back in by writing START."


def fingerprint(data: MessageIn) -> str:
    """The request's content, so a reused idempotency key with a different request is refused, not replayed."""
    return hashlib.sha256(json.dumps(data.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def check_idempotency_key(value: str | None) -> str | None:
    if value is not None and not IDEMPOTENCY_KEY.match(value):
        raise problems.invalid([field_error("Idempotency-Key", "Use 1 to 255 printable ASCII characters.")])
    return value


@dataclass(frozen=True)
class Sent:
    message: MessageOut
    replayed: bool  # a retry: `message` is the first request's
    queue_lane: bool  # the first new message of its commit group: the caller queues the direct lane after it


def send(caller: Caller, data: MessageIn, idempotency_key: str | None) -> Sent:
    """Queue the message, committed before this returns; a retry with the same idempotency key gets the first."""
    request_hash = fingerprint(data)
    try:
        pending = _prepare(caller, data, idempotency_key, request_hash)
    except Problem:
        # A retry of an accepted send answers with it, even when it would be refused now (opted out since, say).
        replayed = _replay(caller.id, idempotency_key, request_hash) if idempotency_key else None
        if replayed is None:
            raise
        return Sent(render.message_out(replayed), True, False)
    db.session.close()  # end this request's reads: no connection or snapshot is held while the writer works
    try:
        written = message_writer.write(db.engine, pending)
    except message_writer.WriterUnavailable as error:
        raise Problem(503, "The message could not be stored in time; retry with the same Idempotency-Key.",
                      headers={"Retry-After": "1"}) from error
    if written.message_id is None:  # a concurrent retry with this key was stored first
        replayed = _replay(caller.id, idempotency_key, request_hash)
        if replayed is None:
            raise Problem(409, "The message sent with this Idempotency-Key no longer exists.")
        return Sent(render.message_out(replayed), True, False)
    message = Message(**{**pending.message, "id": written.message_id, "contact_id": written.contact_id})
    return Sent(render.message_out(message, to=pending.to), False, written.first_in_group)


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


def _prepare(caller: Caller, data: MessageIn, idempotency_key: str | None,
             request_hash: str) -> message_writer.PendingSend:
    """The rows to write, after every check a request can fail; reads only."""
    phone = api_contacts.parse_phone(data.to, "to")
    contact = _contact(phone)
    now = utcnow()
    contact_id = contact.id if contact is not None else None
    if data.text is not None:
        last_inbound_at = _last_inbound_at(contact_id) if contact_id is not None else None
        if not conversations.window_for(last_inbound_at, now).open:
            raise problems.invalid([field_error("text", replies.CLOSED_WINDOW)], replies.CLOSED_WINDOW)
        row = direct.text_row(contact_id, data.text, MessageSource.API, now, api_key_id=caller.id)
    else:
        row = _template_row(caller, data, contact or Contact(phone=phone, attributes={}), contact_id, now)
    new_contact = None if contact is not None else {
        "phone": phone, "wa_id": phones.wa_id(phone), "timezone": phones.time_zone(phone), "name": None,
        "attributes": {}, "created_at": now, "updated_at": now}
    idempotency = None if idempotency_key is None else {
        "api_key_id": caller.id, "key": idempotency_key, "request_hash": request_hash, "created_at": now}
    return message_writer.PendingSend(row, phone, new_contact, idempotency)


def _template_row(caller: Caller, data: MessageIn, contact: rendering.ContactFields, contact_id: int | None,
                  now: datetime) -> dict[str, Any]:
    template = _approved_template(data.template.name, data.template.language)
    _check_variables(template, data.variables)
    mapping = {key: {"source": "literal", "value": value} for key, value in data.variables.items()}
    rendered = rendering.render(Campaign(template=template, variables=mapping), contact)
    return direct.template_row(contact_id, TemplateRef(template.name, template.language), rendered.components,
                               rendered.preview, MessageSource.API, now, template_id=template.id,
                               api_key_id=caller.id)


def _contact(phone: str) -> Row | None:
    """The number's contact (None when new: the writer creates it); refused when deleted or opted out."""
    contact = db.session.connection().execute(_CONTACT_BY_PHONE, {"phone": phone}).first()
    if contact is not None and contact.deleted_at is not None:
        raise Problem(409, api_contacts.DELETED, [field_error("to", api_contacts.DELETED)])
    if contact is not None and contact.opted_out_at is not None:
        raise Problem(422, OPTED_OUT, [field_error("to", OPTED_OUT)], kind="opted-out")
    return contact


def _last_inbound_at(contact_id: int):
    return db.session.scalar(select(Conversation.last_inbound_at).where(Conversation.contact_id == contact_id))


def _approved_template(name: str, language: str) -> MessageTemplate:
    """The approved template, looked up once per APPROVED_FOR seconds per process rather than on every send."""
    key = (db.engine, name, language)
    cached = _approved.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    template = db.session.scalar(select(MessageTemplate).where(MessageTemplate.name == name,
                                                               MessageTemplate.language == language))
    if template is None:
        raise problems.invalid([field_error("template", f"There is no template “{name}” in {language}.")])
    if template.status != TemplateStatus.APPROVED:
        raise problems.invalid([field_error("template", f"The template “{name}” is {template.status.lower()}, "
                                                        "not approved; only approved templates can be sent.")])
    db.session.expunge(template)  # shared by the process's threads: read only, never expired by a commit
    if len(_approved) >= APPROVED_LIMIT:
        _approved.clear()
    _approved[key] = (time.monotonic() + APPROVED_FOR, template)
    return template


def forget_approved_templates() -> None:
    """Look every template up again on its next send (tests change templates between requests)."""
    _approved.clear()


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

