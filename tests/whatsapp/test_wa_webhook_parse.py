import json
from datetime import UTC, datetime

import pytest

from app.whatsapp.events import (
    AccountUpdateEvent,
    ErrorEvent,
    InboundMessage,
    Restriction,
    StatusEvent,
    TemplateCategoryEvent,
    TemplateQualityEvent,
    TemplateStatusEvent,
    UnhandledEvent,
    UserPreferenceEvent,
)
from app.whatsapp.webhook import parse_envelope

PHONE_NUMBER_ID = "106540352242922"


def only(envelope, kind):
    assert envelope.error is None
    assert [type(event) for event in envelope.events] == [kind], envelope.events
    return envelope.events[0]


def test_sent_status(wa_fixture):
    status = only(parse_envelope(wa_fixture("status_sent.json")), StatusEvent)
    assert status.wamid == "wamid.HBgMOTE5ODAwMDAwMDAxFQIAERgSQkNGMTRDMzQ1NkY2NzdBMkEA"
    assert status.status == "sent"
    assert status.timestamp == datetime(2024, 11, 15, 21, 22, 1, tzinfo=UTC)
    assert status.recipient_id == "919800000001"
    assert (status.pricing_category, status.pricing_model, status.billable) == ("marketing", "PMP", True)
    assert (status.conversation_id, status.conversation_origin) == ("2d2a4b5c8e9f0a1b2c3d4e5f6a7b8c9d", "marketing")
    assert status.biz_opaque_callback_data == "campaign-7:message-1042"
    assert status.phone_number_id == PHONE_NUMBER_ID
    assert status.errors == ()


def test_failed_status_carries_its_errors(wa_fixture):
    status = only(parse_envelope(wa_fixture("status_failed.json")), StatusEvent)
    assert status.status == "failed"
    assert len(status.errors) == 1
    error = status.errors[0]
    assert (error.code, error.title, error.message, error.details) == (
        131026, "Message undeliverable", "Message undeliverable", "Message Undeliverable.")


def test_text_message(wa_fixture):
    message = only(parse_envelope(wa_fixture("message_text.json")), InboundMessage)
    assert (message.type, message.text, message.from_wa_id, message.profile_name) == (
        "text", "Is the blue kurta still available?", "919800000001", "Asha Rao")
    assert message.timestamp.tzinfo is UTC
    assert message.context_id is None
    assert message.visible_text == "Is the blue kurta still available?"
    assert message.raw["id"] == message.wamid


def test_reply_context_links_to_our_message(wa_fixture):
    message = only(parse_envelope(wa_fixture("message_reply_context.json")), InboundMessage)
    assert message.context_id == "wamid.HBgMOTE5ODAwMDAwMDAxFQIAERgSQkNGMTRDMzQ1NkY2NzdBMkEA"
    assert message.context_from == "15550783881"


def test_quick_reply_button(wa_fixture):
    message = only(parse_envelope(wa_fixture("message_button.json")), InboundMessage)
    assert (message.type, message.button_payload, message.button_text) == ("button", "Stop promotions",
                                                                          "Stop promotions")
    assert message.visible_text == "Stop promotions"
    assert message.context_id


@pytest.mark.parametrize(("name", "kind", "reply_id", "title"), [
    ("message_interactive_button_reply.json", "button_reply", "confirm-order-1042", "Confirm"),
    ("message_interactive_list_reply.json", "list_reply", "size-m", "Medium"),
])
def test_interactive_replies(wa_fixture, name, kind, reply_id, title):
    message = only(parse_envelope(wa_fixture(name)), InboundMessage)
    assert (message.type, message.interactive_type, message.interactive_id, message.interactive_title) == (
        "interactive", kind, reply_id, title)


@pytest.mark.parametrize(("name", "kind", "mime_type", "caption", "filename"), [
    ("message_image.json", "image", "image/jpeg", "This one in red?", None),
    ("message_video.json", "video", "video/mp4", "Unboxing", None),
    ("message_audio.json", "audio", "audio/ogg; codecs=opus", None, None),
    ("message_document.json", "document", "application/pdf", "GST invoice", "invoice-1042.pdf"),
    ("message_sticker.json", "sticker", "image/webp", None, None),
])
def test_media_messages(wa_fixture, name, kind, mime_type, caption, filename):
    message = only(parse_envelope(wa_fixture(name)), InboundMessage)
    assert message.type == kind
    assert message.media.id.startswith("10033834213872")
    assert (message.media.mime_type, message.media.caption, message.media.filename) == (mime_type, caption, filename)


def test_location_contacts_reaction_order_system(wa_fixture):
    location = only(parse_envelope(wa_fixture("message_location.json")), InboundMessage).location
    assert (location.latitude, location.longitude, location.name) == (12.9716, 77.5946, "MG Road store")
    contacts = only(parse_envelope(wa_fixture("message_contacts.json")), InboundMessage).contacts
    assert contacts[0]["phones"][0]["wa_id"] == "919800000009"
    reaction = only(parse_envelope(wa_fixture("message_reaction.json")), InboundMessage).reaction
    assert (reaction.message_id.startswith("wamid."), reaction.emoji) == (True, "\U0001F44D")
    order = only(parse_envelope(wa_fixture("message_order.json")), InboundMessage).order
    assert order["product_items"][0]["product_retailer_id"] == "kurta-blue-m"
    system = only(parse_envelope(wa_fixture("message_system.json")), InboundMessage)
    assert system.system["type"] == "user_changed_number" and system.profile_name is None


def test_unsupported_message_keeps_its_error(wa_fixture):
    message = only(parse_envelope(wa_fixture("message_unsupported.json")), InboundMessage)
    assert message.type == "unsupported"
    assert message.errors[0].code == 131051


def test_referral_from_an_ad(wa_fixture):
    message = only(parse_envelope(wa_fixture("message_referral.json")), InboundMessage)
    assert message.referral["ctwa_clid"] == "ARAkLkA8rmlFeiCktEJQ"
    assert message.text == "Hi, I saw your ad"


def test_user_preferences(wa_fixture):
    event = only(parse_envelope(wa_fixture("user_preferences.json")), UserPreferenceEvent)
    assert (event.wa_id, event.category, event.value) == ("919800000001", "marketing_messages", "stop")
    assert event.timestamp == datetime(2024, 11, 15, 21, 22, 1, tzinfo=UTC)
    assert event.phone_number_id == PHONE_NUMBER_ID


def test_template_status_update(wa_fixture):
    event = only(parse_envelope(wa_fixture("template_status_update.json")), TemplateStatusEvent)
    assert (event.template_id, event.name, event.language, event.event, event.reason, event.category) == (
        "1200000000000099", "diwali_blast", "en_US", "REJECTED", "INVALID_FORMAT", "MARKETING")


def test_template_category_update(wa_fixture):
    event = only(parse_envelope(wa_fixture("template_category_update.json")), TemplateCategoryEvent)
    assert (event.template_id, event.previous_category, event.new_category, event.correct_category) == (
        "1200000000000002", "UTILITY", "MARKETING", None)


def test_template_quality_update(wa_fixture):
    event = only(parse_envelope(wa_fixture("template_quality_update.json")), TemplateQualityEvent)
    assert (event.name, event.previous_quality_score, event.new_quality_score) == ("festival_offer", "GREEN", "YELLOW")


def test_webhook_level_errors(wa_fixture):
    event = only(parse_envelope(wa_fixture("webhook_errors.json")), ErrorEvent)
    assert (event.error.code, event.error.details) == (131000, "Unknown error. Please retry the request.")


def test_unknown_field_is_kept_as_unhandled(wa_fixture):
    body = json.loads(wa_fixture("unknown_field.json"))
    body["entry"][0]["changes"][0]["field"] = "account_alerts"  # account_update itself is handled now
    event = only(parse_envelope(json.dumps(body).encode()), UnhandledEvent)
    assert event.field == "account_alerts"
    assert event.raw["value"]["event"] == "VERIFIED_ACCOUNT"


def test_account_update_takes_the_entry_time_and_its_restrictions(wa_fixture):
    body = json.loads(wa_fixture("unknown_field.json"))
    body["entry"][0]["changes"][0]["value"] = {"event": "ACCOUNT_RESTRICTION", "restriction_info": [
        {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1731800000}]}
    event = only(parse_envelope(json.dumps(body).encode()), AccountUpdateEvent)
    assert event.timestamp == datetime.fromtimestamp(body["entry"][0]["time"], tz=UTC)
    assert event.restrictions == (Restriction("RESTRICTED_BIZ_INITIATED_MESSAGING",
                                              datetime.fromtimestamp(1731800000, tz=UTC)),)


def test_broken_parts_do_not_lose_their_neighbours(wa_fixture):
    envelope = parse_envelope(wa_fixture("mixed_batch.json"))
    assert envelope.error is None
    assert [status.wamid for status in envelope.statuses] == ["wamid.BATCH1", "wamid.BATCH3"]
    assert envelope.statuses[1].timestamp is None
    preferences = envelope.of_type(UserPreferenceEvent)
    assert [(p.wa_id, p.value) for p in preferences] == [("919800000004", "resume")]
    unhandled = envelope.of_type(UnhandledEvent)
    assert [u.field for u in unhandled] == ["messages.statuses", "messages", None, "message_template_status_update"]


def test_unknown_part_of_a_messages_change_is_unhandled():
    body = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1"}, "statuses": {"not": "a list"},
        "message_echoes": [{"id": "x"}]}}]}]}
    envelope = parse_envelope(json.dumps(body).encode())
    assert sorted(u.field for u in envelope.of_type(UnhandledEvent)) == ["messages.message_echoes",
                                                                          "messages.statuses"]


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "not valid JSON"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\x00", "not valid JSON"),
    (b"[" * 100000, "not valid JSON"),
    (b"[]", "must be a JSON object"),
    (b'"whatsapp_business_account"', "must be a JSON object"),
    (b'{"object": "page", "entry": []}', "expected 'whatsapp_business_account'"),
    (b'{"entry": []}', "expected 'whatsapp_business_account'"),
    (b'{"object": "whatsapp_business_account"}', "'entry' must be a list"),
    (b'{"object": "whatsapp_business_account", "entry": {"id": 1}}', "'entry' must be a list"),
])
def test_malformed_bodies_are_rejected_cleanly(body, reason):
    envelope = parse_envelope(body)
    assert not envelope.ok
    assert reason in envelope.error
    assert envelope.events == ()


@pytest.mark.parametrize("value", [
    {"statuses": [{"id": "w", "status": "sent", "timestamp": 10 ** 30}]},
    {"statuses": [{"id": ["w"], "status": "sent"}]},
    {"statuses": [None, 3, "x"]},
    {"messages": [{"id": "w", "from": {"x": 1}}]},
    {"messages": [{"id": "w", "from": "1", "type": "image", "image": "not an object"}]},
    {"contacts": "nope", "messages": [{"id": "w", "from": "1", "text": {"body": None}}]},
    {"errors": [None, {"code": "NaN"}, {"code": 1e400}]},
])
def test_hostile_values_never_raise(value):
    body = {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": value}]}]}
    envelope = parse_envelope(json.dumps(body).encode())
    assert envelope.ok
    for event in envelope.events:
        assert isinstance(event, StatusEvent | InboundMessage | ErrorEvent | UnhandledEvent)
