"""Webhook security and parsing: verify Meta's signature and handshake, turn a body into typed events.

`parse_envelope` never raises. A body that is not a WhatsApp webhook at all is rejected as a whole (`error`);
inside a valid envelope every entry, change and item is parsed on its own, so one broken part becomes an
`UnhandledEvent` and never costs the events next to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from app.whatsapp.events import (
    AccountUpdateEvent,
    Envelope,
    ErrorEvent,
    Event,
    InboundMessage,
    Location,
    Media,
    Reaction,
    Restriction,
    StatusEvent,
    TemplateCategoryEvent,
    TemplateQualityEvent,
    TemplateStatusEvent,
    UnhandledEvent,
    UserPreferenceEvent,
    WebhookError,
)

OBJECT = "whatsapp_business_account"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
_MESSAGES_PARTS = {"messaging_product", "metadata", "contacts", "statuses", "messages", "errors"}
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, OverflowError)


def sign(raw_body: bytes, app_secret: str) -> str:
    """The X-Hub-Signature-256 value Meta sends for this body."""
    digest = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    """True only if `header` is `sha256=<hex HMAC-SHA256 of raw_body keyed with app_secret>`."""
    if not app_secret or not isinstance(header, str):
        return False
    scheme, _, provided = header.strip().partition("=")
    if scheme.lower() != "sha256" or not provided:
        return False
    try:
        provided_bytes = provided.lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = sign(raw_body, app_secret).partition("=")[2].encode("ascii")
    return hmac.compare_digest(expected, provided_bytes)


def verify_handshake(args: Mapping[str, Any], verify_token: str) -> str | None:
    """The hub.challenge to echo when Meta's subscription handshake carries our verify token, else None."""
    mode, token, challenge = args.get("hub.mode"), args.get("hub.verify_token"), args.get("hub.challenge")
    if mode != "subscribe" or not verify_token or not isinstance(token, str) or challenge is None:
        return None
    if not hmac.compare_digest(token.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return str(challenge)


def parse_envelope(raw_body: bytes) -> Envelope:
    """Parse a webhook body into typed events; never raises."""
    try:
        data = json.loads(raw_body)
    except (ValueError, TypeError, RecursionError):
        return Envelope(error="Body is not valid JSON.")
    if not isinstance(data, dict):
        return Envelope(error="Body must be a JSON object.")
    if data.get("object") != OBJECT:
        return Envelope(error=f"Field 'object' is {data.get('object')!r}, expected {OBJECT!r}.")
    entries = data.get("entry")
    if not isinstance(entries, list):
        return Envelope(error="Field 'entry' must be a list.")
    events: list[Event] = []
    for entry in entries:
        events.extend(_entry_events(entry))
    return Envelope(events=tuple(events))


def _entry_events(entry: Any) -> list[Event]:
    if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
        return [UnhandledEvent(None, "Entry has no 'changes' list.", entry)]
    events: list[Event] = []
    for change in entry["changes"]:
        field = change.get("field") if isinstance(change, dict) else None
        events.extend(_guarded(_change_events, change, field))
    # An account update carries no time or account id of its own: they are the entry's.
    return [dataclasses.replace(event, timestamp=_timestamp(entry.get("time")), waba_id=_str(entry.get("id")))
            if isinstance(event, AccountUpdateEvent) else event for event in events]


def _change_events(change: Any) -> list[Event]:
    field = change.get("field") if isinstance(change, dict) else None
    value = change.get("value") if isinstance(change, dict) else None
    if not isinstance(value, dict):
        return [UnhandledEvent(field, "Change has no 'value' object.", change)]
    parser = _CHANGE_PARSERS.get(field)
    if parser is None:
        return [UnhandledEvent(field, "Webhook field is not handled.", change)]
    return parser(value)


def _guarded(parse: Callable[..., list[Event]], raw: Any, field: str | None, *args: Any) -> list[Event]:
    try:
        return parse(raw, *args)
    except _MALFORMED as exc:
        return [UnhandledEvent(field, f"Malformed {field or 'change'}: {exc!r}", raw)]


def _messages_change(value: dict[str, Any]) -> list[Event]:
    phone_number_id = _str(_dict(value.get("metadata")).get("phone_number_id"))
    names = {_str(c.get("wa_id")): _str(_dict(c.get("profile")).get("name"))
             for c in _list(value.get("contacts")) if isinstance(c, dict)}
    events: list[Event] = []
    for item in _items(value, "statuses", "messages", events):
        events.extend(_guarded(_status_event, item, "messages.statuses", phone_number_id))
    for item in _items(value, "messages", "messages", events):
        events.extend(_guarded(_inbound_message, item, "messages.messages", phone_number_id, names))
    for item in _items(value, "errors", "messages", events):
        events.extend(_guarded(_error_event, item, "messages.errors", phone_number_id))
    for key in sorted(value.keys() - _MESSAGES_PARTS):
        events.append(UnhandledEvent(f"messages.{key}", "Part of a messages change is not handled.", value[key]))
    return events


def _status_event(item: Any, phone_number_id: str | None) -> list[Event]:
    pricing, conversation = _dict(item.get("pricing")), _dict(item.get("conversation"))
    billable = pricing.get("billable")
    return [StatusEvent(
        wamid=_required(item, "id"), status=_required(item, "status"), timestamp=_timestamp(item.get("timestamp")),
        recipient_id=_str(item.get("recipient_id")), errors=_errors(item.get("errors")),
        pricing_category=_str(pricing.get("category")), pricing_model=_str(pricing.get("pricing_model")),
        billable=billable if isinstance(billable, bool) else None, conversation_id=_str(conversation.get("id")),
        conversation_origin=_str(_dict(conversation.get("origin")).get("type")),
        biz_opaque_callback_data=_str(item.get("biz_opaque_callback_data")), phone_number_id=phone_number_id,
        raw=item)]


def _inbound_message(item: Any, phone_number_id: str | None, names: dict[str | None, str | None]) -> list[Event]:
    sender = _required(item, "from")
    change = _dict(item.get("edit") or item.get("revoke"))
    edited = _dict(change.get("message"))
    return [_message_fields(
        item, wamid=_required(item, "id"), from_wa_id=sender, timestamp=_timestamp(item.get("timestamp")),
        profile_name=names.get(sender), original_id=_str(change.get("original_message_id")),
        edited=_message_fields(edited, wamid="", from_wa_id=sender, timestamp=None) if edited else None,
        phone_number_id=phone_number_id, raw=item)]


def _message_fields(item: dict[str, Any], **known: Any) -> InboundMessage:
    """What a message says, by its type; an edit's new version (edit.message) has the same shape."""
    kind = _str(item.get("type")) or "unknown"
    button, context = _dict(item.get("button")), _dict(item.get("context"))
    interactive = _dict(item.get("interactive"))
    interactive_type = _str(interactive.get("type"))
    reply = _dict(interactive.get(interactive_type)) if interactive_type else {}
    return InboundMessage(
        type=kind, text=_str(_dict(item.get("text")).get("body")),
        button_payload=_str(button.get("payload")), button_text=_str(button.get("text")),
        interactive_type=interactive_type, interactive_id=_str(reply.get("id")),
        interactive_title=_str(reply.get("title")), interactive_detail=_interactive_detail(reply),
        media=_media(item, kind), location=_location(item, kind),
        contacts=tuple(c for c in _list(item.get("contacts")) if isinstance(c, dict)),
        reaction=_reaction(item.get("reaction")), order=_dict_or_none(item.get("order")),
        system=_dict_or_none(item.get("system")), errors=_errors(item.get("errors")),
        context_id=_str(context.get("id")), context_from=_str(context.get("from")),
        referral=_dict_or_none(item.get("referral")), **known)


def _interactive_detail(reply: dict[str, Any]) -> dict[str, Any] | None:
    """An interactive reply's other fields; a flow's response_json (a JSON string) parsed when it is an object."""
    detail = {key: value for key, value in reply.items() if key not in ("id", "title") and value is not None}
    if isinstance(detail.get("response_json"), str):
        try:
            parsed = json.loads(detail["response_json"])
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            detail["response_json"] = parsed
    return detail or None


def _error_event(item: Any, phone_number_id: str | None) -> list[Event]:
    if not isinstance(item, dict):
        raise TypeError("error is not an object")
    return [ErrorEvent(_webhook_error(item), phone_number_id)]


def _user_preferences_change(value: dict[str, Any]) -> list[Event]:
    phone_number_id = _str(_dict(value.get("metadata")).get("phone_number_id"))
    events: list[Event] = []
    for item in _items(value, "user_preferences", "user_preferences", events):
        events.extend(_guarded(_user_preference, item, "user_preferences", phone_number_id))
    return events


def _user_preference(item: Any, phone_number_id: str | None) -> list[Event]:
    return [UserPreferenceEvent(wa_id=_required(item, "wa_id"), category=_str(item.get("category")) or "",
                                value=_required(item, "value"), timestamp=_timestamp(item.get("timestamp")),
                                detail=_str(item.get("detail")), phone_number_id=phone_number_id)]


def _template_status_change(value: dict[str, Any]) -> list[Event]:
    rejection = _dict(value.get("rejection_info"))
    return [TemplateStatusEvent(
        template_id=_required(value, "message_template_id"), name=_str(value.get("message_template_name")),
        language=_str(value.get("message_template_language")), event=_required(value, "event"),
        reason=_str(value.get("reason")), category=_str(value.get("message_template_category")),
        rejection_reason=_str(rejection.get("reason")), recommendation=_str(rejection.get("recommendation")),
        raw=value)]


def _template_category_change(value: dict[str, Any]) -> list[Event]:
    return [TemplateCategoryEvent(
        template_id=_required(value, "message_template_id"), name=_str(value.get("message_template_name")),
        language=_str(value.get("message_template_language")), new_category=_str(value.get("new_category")),
        previous_category=_str(value.get("previous_category")),
        correct_category=_str(value.get("correct_category")), raw=value)]


def _template_quality_change(value: dict[str, Any]) -> list[Event]:
    return [TemplateQualityEvent(
        template_id=_required(value, "message_template_id"), name=_str(value.get("message_template_name")),
        language=_str(value.get("message_template_language")),
        new_quality_score=_str(value.get("new_quality_score")),
        previous_quality_score=_str(value.get("previous_quality_score")))]


def _account_update_change(value: dict[str, Any]) -> list[Event]:
    ban, violation = _dict(value.get("ban_info")), _dict(value.get("violation_info"))
    restrictions = value.get("restriction_info")
    restrictions = restrictions if isinstance(restrictions, list) else [restrictions] if restrictions else []
    return [AccountUpdateEvent(
        event=_required(value, "event"), timestamp=None, phone_number=_str(value.get("phone_number")),
        ban_state=_str(ban.get("waba_ban_state")), ban_date=_str(ban.get("waba_ban_date")),
        violation_type=_str(violation.get("violation_type")),
        restrictions=tuple(Restriction(_required(item, "restriction_type"), _expiration(item.get("expiration")))
                           for item in restrictions), raw=value)]


def _expiration(value: Any) -> datetime | None:
    """Unix seconds in Meta's payloads; some relays send an ISO time instead."""
    if isinstance(value, str) and not value.strip().isdigit():
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return _timestamp(value)


_CHANGE_PARSERS: dict[Any, Callable[[dict[str, Any]], list[Event]]] = {
    "messages": _messages_change,
    "user_preferences": _user_preferences_change,
    "message_template_status_update": _template_status_change,
    "template_category_update": _template_category_change,
    "message_template_quality_update": _template_quality_change,
    "account_update": _account_update_change,
}


def _items(value: dict[str, Any], key: str, field: str, events: list[Event]) -> Iterable[Any]:
    """The list under `key`; anything else there is reported as unhandled instead of being dropped."""
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        events.append(UnhandledEvent(f"{field}.{key}", f"'{key}' is not a list.", items))
        return []
    return items


def _media(item: dict[str, Any], kind: str) -> Media | None:
    if kind not in MEDIA_KINDS or not isinstance(item.get(kind), dict):
        return None
    media = item[kind]
    return Media(id=_str(media.get("id")), mime_type=_str(media.get("mime_type")), caption=_str(media.get("caption")),
                 filename=_str(media.get("filename")), sha256=_str(media.get("sha256")))


def _location(item: dict[str, Any], kind: str) -> Location | None:
    if kind != "location" or not isinstance(item.get("location"), dict):
        return None
    place = item["location"]
    return Location(latitude=_float(place.get("latitude")), longitude=_float(place.get("longitude")),
                    name=_str(place.get("name")), address=_str(place.get("address")))


def _reaction(value: Any) -> Reaction | None:
    if not isinstance(value, dict):
        return None
    return Reaction(message_id=_str(value.get("message_id")), emoji=_str(value.get("emoji")))


def _errors(value: Any) -> tuple[WebhookError, ...]:
    return tuple(_webhook_error(e) for e in _list(value) if isinstance(e, dict))


def _webhook_error(item: dict[str, Any]) -> WebhookError:
    return WebhookError(code=_int(item.get("code")), title=_str(item.get("title")), message=_str(item.get("message")),
                        details=_str(_dict(item.get("error_data")).get("details")))


def _required(item: Any, key: str) -> str:
    value = _str(item.get(key))
    if not value:
        raise KeyError(key)
    return value


def _timestamp(value: Any) -> datetime | None:
    """Meta sends Unix seconds, as a string in messages and as a number in user_preferences."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return datetime.fromtimestamp(int(float(value)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError, OverflowError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
