"""Shared by the inbox and auto-reply tests (there are no tests here): customers writing now, page helpers."""

from __future__ import annotations

import re
import time

from sqlalchemy import select

from app.extensions import db
from app.models import Contact, Conversation
from tests.conftest import csrf_token_from
from tests.factories.webhooks import T0, inbound_body, text

ASHA, RAVI = "919800000001", "919800000002"


def now_seconds() -> int:
    """`seconds` for the webhook helpers meaning "now" (they count from the fixed time T0)."""
    return int(time.time()) - T0


def writes(hooks, sender: str, body: str, ago_hours: float = 0, kind: str = "text", name: str = "Asha Rao",
           **content):
    """The customer sends a message `ago_hours` ago; the webhook is processed like a worker would."""
    message = text(sender, body, seconds=now_seconds() - int(ago_hours * 3600), kind=kind, **content)
    hooks.deliver(inbound_body(message, name=name))
    return message["id"]


def contact_id(app, wa_id: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Contact.id).where(Contact.wa_id == wa_id))


def conversation_of(app, wa_id: str) -> Conversation:
    with app.app_context():
        conversation = db.session.scalars(select(Conversation).join(Contact, Conversation.contact_id == Contact.id)
                                          .where(Contact.wa_id == wa_id)).one()
        db.session.expunge_all()
        return conversation


def post_form(client, page_url: str, action: str, **data):
    token = csrf_token_from(client.get(page_url).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **data})


def unread_in_list(html: str, contact: int) -> int | None:
    """The unread count shown on a contact's row of the conversation list (None: no count shown)."""
    row = re.search(rf'data-contact-id="{contact}">(.*?)</a>', html, re.S)
    assert row, f"contact {contact} is not in the list"
    found = re.search(r'class="inbox-unread"[^>]*>(\d+)<', row.group(1))
    return int(found.group(1)) if found else None
