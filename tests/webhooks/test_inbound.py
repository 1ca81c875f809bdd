"""Customer messages: contact found or created, every kind of message stored once, replies attributed once."""

from __future__ import annotations

from sqlalchemy import func, select

from app.extensions import db
from app.models import Contact, HourlyMessageStats
from tests.factories import webhooks as support
from tests.factories.webhooks import at, inbound_body, text

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
ASHA = "919800000001"


def _fixture(name: str) -> bytes:
    return (support.wa.FIXTURES / name).read_bytes()


def test_text_from_a_new_number_creates_the_contact_and_stores_the_message(hooks):
    hooks.deliver(inbound_body(text(ASHA, "Is the blue kurta in stock?", seconds=5, wamid="wamid.IN1")))
    contact = support.contact_row(hooks.app, ASHA)
    assert (contact.phone, contact.name, contact.opted_out_at) == (f"+{ASHA}", "Asha Rao", None)
    [message] = support.messages_of(hooks.app, ASHA)
    assert (message.direction, message.status, message.message_type, message.body, message.wamid) == (
        "in", "received", "text", "Is the blue kurta in stock?", "wamid.IN1")
    assert message.campaign_id is None and message.created_at == at(5)
    assert message.content == {"profile_name": "Asha Rao"}
    assert hooks.sends(ASHA) == []  # an ordinary message gets no automatic answer


def test_existing_contact_is_linked_and_only_a_missing_name_is_filled(hooks, make_contact):
    named = make_contact(f"+{ASHA}", "Asha (VIP)")
    unnamed = make_contact("+919800000002")
    hooks.deliver(inbound_body(text(ASHA, "Hi")), inbound_body(text("919800000002", "Hello"), name="Ravi"))
    with hooks.app.app_context():
        assert db.session.get(Contact, named).name == "Asha (VIP)"
        assert db.session.get(Contact, unnamed).name == "Ravi"
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 2
    assert [m.contact_id for m in support.messages_of(hooks.app, ASHA)] == [named]


def test_a_message_delivered_twice_is_stored_once(hooks):
    body = inbound_body(text(ASHA, "Hello", wamid="wamid.TWICE"))
    hooks.deliver(body, body)
    assert len(support.messages_of(hooks.app, ASHA)) == 1
    assert "1 duplicate messages" in hooks.events()[1].outcome


def test_reply_to_a_campaign_message_is_attributed_and_counted_once(hooks, make_contact):
    contact_id = make_contact(f"+{ASHA}", "Asha")
    campaign_id = support.make_campaign(hooks.app)
    message_id = support.make_message(hooks.app, campaign_id, contact_id, "delivered", "wamid.CAMPAIGN")
    hooks.deliver(inbound_body(text(ASHA, "Yes please", seconds=10, context="wamid.CAMPAIGN")),
                  inbound_body(text(ASHA, "And the red one?", seconds=20, context="wamid.CAMPAIGN")),
                  inbound_body(text(ASHA, "Unrelated", seconds=30)))
    campaign_message = support.message_row(hooks.app, message_id)
    assert campaign_message.replied_at == at(10)
    assert support.counters(hooks.app, campaign_id)["replied"] == 1
    with hooks.app.app_context():  # the dashboard's Replied card reads the hourly stats
        assert db.session.execute(select(HourlyMessageStats.hour, HourlyMessageStats.replied)).all() == [
            (at(10).replace(minute=0, second=0), 1)]
    replies = support.messages_of(hooks.app, ASHA, direction="in")
    assert [reply.context_wamid for reply in replies] == ["wamid.CAMPAIGN", "wamid.CAMPAIGN", None]


def test_reply_to_an_unknown_or_campaignless_message_counts_nothing(hooks, make_contact):
    contact_id = make_contact(f"+{ASHA}")
    support.make_message(hooks.app, None, contact_id, "sent", "wamid.OWN")
    hooks.deliver(inbound_body(text(ASHA, "ok", context="wamid.OWN")),
                  inbound_body(text(ASHA, "ok", context="wamid.NOT-OURS")))
    assert support.message_row(hooks.app, wamid="wamid.OWN").replied_at is None
    assert len(support.messages_of(hooks.app, ASHA, direction="in")) == 2


def test_every_kind_of_message_is_stored_with_its_details(hooks):
    names = ["audio", "contacts", "document", "image", "interactive_button_reply", "location", "order", "reaction",
             "sticker", "system", "unsupported", "video", "text"]
    hooks.deliver(*[_fixture(f"message_{name}.json") for name in names])
    stored = {message.message_type: message for message in support.messages_of(hooks.app, ASHA)}
    assert sorted(stored) == sorted({name.split("_")[0] for name in names})
    assert stored["image"].body == "This one in red?"
    assert stored["image"].content["media"] == {
        "id": "1003383421387256", "mime_type": "image/jpeg", "caption": "This one in red?",
        "sha256": "a3f1c9e0b2d4f6a8c0e2f4a6b8d0f2a4c6e8a0b2d4f6a8c0e2f4a6b8d0f2a4c6"}
    assert stored["document"].content["media"]["filename"] == "invoice-1042.pdf"
    assert stored["location"].content["location"] == {"latitude": 12.9716, "longitude": 77.5946,
                                                      "name": "MG Road store", "address": "1 MG Road, Bengaluru"}
    assert stored["interactive"].body == "Confirm"
    assert stored["interactive"].content["interactive"] == {"type": "button_reply", "id": "confirm-order-1042",
                                                            "title": "Confirm"}
    assert stored["interactive"].context_wamid == "wamid.HBgMOTE5ODAwMDAwMDAxFQIAERgSSU5URVJBQ1RJVkUxMjM0AA"
    assert stored["contacts"].content["contacts"][0]["name"]["formatted_name"] == "Ravi Kumar"
    assert stored["reaction"].content["reaction"]["emoji"] == "👍"
    assert stored["order"].content["order"]["product_items"][0]["product_retailer_id"] == "kurta-blue-m"
    assert stored["system"].content["system"]["type"] == "user_changed_number"
    assert stored["unsupported"].content["errors"][0]["code"] == 131051
    assert all(event.processed_at is not None for event in hooks.events())
    assert hooks.sends(ASHA) == []  # none of these asks for, or gets, an automatic reply


def test_sender_that_is_not_a_phone_number_is_not_made_a_contact(hooks):
    hooks.deliver(inbound_body(text("not-a-number", "hi")))
    with hooks.app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 0
    assert "1 messages from invalid senders" in hooks.events()[0].outcome
