"""Customers opting out (STOP, local stop words, the Stop button, WhatsApp's own setting) and back in (START).

An opt-out by message is confirmed once: the confirmation is a pending outbound Message created in the same
transaction as the opt-out, so it exists exactly once however often the webhook is delivered, and the send path's
direct lane sends it like any other message sent on its own.
Only the customer can undo their own opt-out; staff and import opt-outs are never lifted by a START.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from app.clock import utcnow
from app.models import Contact, MessageSource, OptOutSource
from app.services.admin import settings
from app.services.api.outbound import events as outbound_events
from app.services.sending import direct
from app.services.webhooks.inbound import AUTOMATIC_TYPES, StoredMessage, contact_for
from app.whatsapp.events import InboundMessage, UserPreferenceEvent

CUSTOMER_SOURCES = (OptOutSource.KEYWORD, OptOutSource.BUTTON, OptOutSource.USER_PREFERENCES)
STOP_BUTTONS = frozenset({"stop", "stop promotions"})
_EDGE_PUNCTUATION = " .!?।"
OUT, IN = "out", "in"
STOP, RESUME, SIGNUP = "stop", "resume", "signup"  # the values of WhatsApp's marketing-messages setting
PREFERENCES = (STOP, RESUME, SIGNUP)


@dataclass(frozen=True)
class Keywords:
    opt_out: frozenset[str]
    opt_in: frozenset[str]

    @classmethod
    def from_settings(cls) -> Keywords:
        return cls(frozenset(map(normalise, settings.get("opt_out_keywords"))),
                   frozenset(map(normalise, settings.get("opt_in_keywords"))))


def normalise(text: str | None) -> str:
    """Compare keywords casefolded, with spaces collapsed and edge punctuation ("Stop.", "रोकें।") dropped."""
    text = " ".join(unicodedata.normalize("NFKC", text or "").split())
    return text.strip(_EDGE_PUNCTUATION).casefold()


def intent(message: InboundMessage, keywords: Keywords) -> tuple[str, OptOutSource] | None:
    """(OUT or IN, how) when the message asks to stop or restart messages; None for anything else."""
    if message.type in AUTOMATIC_TYPES:
        return None
    if message.type == "text":
        words, source, stop_words = [message.text], OptOutSource.KEYWORD, keywords.opt_out
    elif message.type in ("button", "interactive"):
        words = [message.button_payload, message.button_text, message.interactive_id, message.interactive_title]
        source, stop_words = OptOutSource.BUTTON, keywords.opt_out | STOP_BUTTONS
    else:
        return None
    said = {normalise(word) for word in words if word}
    if said & stop_words:
        return OUT, source
    if said & keywords.opt_in:
        return IN, source
    return None


def handle_messages(stored: Iterable[StoredMessage], counts: Counter, now: datetime) -> list[int]:
    """Apply STOP/START in newly stored messages; returns the contacts that now await a confirmation."""
    keywords, confirm = None, []
    for item in stored:
        keywords = keywords or Keywords.from_settings()
        found = intent(item.event, keywords)
        if found is None:
            continue
        action, source = found
        at = item.event.timestamp or now
        if action == OUT and opt_out(item.contact, source, at):
            counts["opt-outs"] += 1
            confirm.append(queue_confirmation(item.contact, item.event.wamid, now))
        elif action == IN and opt_in(item.contact, at):
            counts["opt-ins"] += 1
    return confirm


def handle_preferences(events: Iterable[UserPreferenceEvent], counts: Counter, now: datetime) -> None:
    """WhatsApp's marketing-messages setting: stop, resume, or signup (the customer asked for offers). The latest
    choice is kept on the contact; stop opts out, resume and signup lift the customer's own opt-out as START does.
    No confirmation: WhatsApp confirms it itself."""
    for event in sorted(events, key=lambda e: e.timestamp or now):
        value, at = event.value.lower(), event.timestamp or now
        known = value in PREFERENCES
        create = value in (STOP, SIGNUP)
        contact = contact_for(event.wa_id, None, now, create=create) if event.wa_id.isdigit() and known else None
        if not known:
            counts[f"unknown marketing preferences ({value[:32]})"] += 1
            continue
        if contact is None:
            counts["preferences for unknown customers"] += 1
            continue
        record_preference(contact, value, at, counts)
        if value == STOP and opt_out(contact, OptOutSource.USER_PREFERENCES, at):
            counts["opt-outs"] += 1
        elif value in (RESUME, SIGNUP) and opt_in(contact, at):
            counts["opt-ins"] += 1


def record_preference(contact: Contact, value: str, at: datetime, counts: Counter) -> None:
    """Keep the customer's latest marketing choice; an older one delivered late never replaces a newer one."""
    if contact.marketing_preference_at is not None and at < contact.marketing_preference_at:
        return
    if (contact.marketing_preference, contact.marketing_preference_at) != (value, at):
        contact.marketing_preference, contact.marketing_preference_at = value, at
        counts["marketing preferences recorded"] += 1


def opt_out(contact: Contact, source: OptOutSource, at: datetime) -> bool:
    """Opt the contact out unless they already are (the first opt-out's time and source are kept)."""
    changed = contact.record_opt_out(source, at)
    if changed:
        outbound_events.contact_opted(contact, True, source, at, utcnow())  # the outbox, if anyone listens
    return changed


def opt_in(contact: Contact, at: datetime) -> bool:
    """Lift the customer's own earlier opt-out; never a staff or import one, nor one made after this request."""
    if contact.opted_out_at is None or contact.opt_out_source not in CUSTOMER_SOURCES or at < contact.opted_out_at:
        return False
    contact.opted_out_at, contact.opt_out_source = None, None
    outbound_events.contact_opted(contact, False, None, at, utcnow())  # the outbox, if anyone listens
    return True


def queue_confirmation(contact: Contact, in_reply_to: str, now: datetime) -> int:
    """The one confirmation of this opt-out, queued to be sent on its own; returns the contact id. It is sent only
    while the customer is still opted out (sending.direct.SEND_ONLY_IF)."""
    direct.queue_text(contact.id, settings.get("opt_out_confirmation"), MessageSource.OPT_OUT_CONFIRMATION, now,
                      in_reply_to=in_reply_to)
    return contact.id
