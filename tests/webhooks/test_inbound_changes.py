"""Edits, deletions, flow answers, call-permission answers and system notices, posted as Meta shapes them and
checked in the inbox thread staff read."""

from __future__ import annotations

import json
import re

from sqlalchemy import select

from app.extensions import db
from app.models import Message
from app.services.webhooks.inbound import FLOW_ANSWERS_MAX_CHARS
from tests.factories import webhooks as support
from tests.factories.inbox import ASHA, RAVI, contact_id, conversation_of, now_seconds
from tests.factories.webhooks import inbound_body, text

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver


def _says(sender: str, body: str, wamid: str, seconds: int = 0) -> dict:
    return inbound_body(text(sender, body, seconds=now_seconds() + seconds, wamid=wamid))


def _edit(sender: str, original: str, body: str, seconds: int = 0) -> dict:
    return inbound_body(text(sender, "", seconds=now_seconds() + seconds, kind="edit", edit={
        "original_message_id": original, "message": {"type": "text", "text": {"body": body}}}))


def _revoke(sender: str, original: str, seconds: int = 0) -> dict:
    return inbound_body(text(sender, "", seconds=now_seconds() + seconds, kind="revoke",
                             revoke={"original_message_id": original}))


def _interactive(sender: str, kind: str, reply: dict) -> dict:
    return inbound_body(text(sender, "", seconds=now_seconds(), kind="interactive",
                             interactive={"type": kind, kind: reply}))


def bubbles(client, app, wa_id: str = ASHA) -> list[str]:
    """The thread as staff read it: each message's visible words (times left out), in order."""
    page = client.get(f"/inbox/{contact_id(app, wa_id)}").get_data(as_text=True)
    assert page.count('<div id="thread"') == 1
    thread = page.split('<div id="thread"', 1)[1].split('<p class="inbox-window', 1)[0]
    rows = thread.split('<div class="chat-row')[1:]
    words = [re.sub(r"<[^>]+>", " ", re.sub(r"<time.*?</time>", "", row.split(">", 1)[1], flags=re.S)) for row in rows]
    return [" ".join(row.split()) for row in words]


def test_an_edit_replaces_the_text_and_says_edited(hooks, staff_client):
    hooks.deliver(_says(ASHA, "Size M please", "wamid.ORIGINAL"), _edit(ASHA, "wamid.ORIGINAL", "Size L please", 5))
    [bubble] = bubbles(staff_client, hooks.app)
    assert bubble == "Size L please edited"
    conversation = conversation_of(hooks.app, ASHA)
    assert (conversation.last_preview, conversation.unread) == ("Size L please", 1)  # the edit is no new message
    original = support.message_row(hooks.app, wamid="wamid.ORIGINAL")
    assert original.content["original_body"] == "Size M please"  # kept, not shown


def test_a_deletion_hides_the_text_in_the_thread_and_the_list(hooks, staff_client):
    hooks.deliver(_says(ASHA, "my card number is 4111", "wamid.ORIGINAL"), _revoke(ASHA, "wamid.ORIGINAL", 5))
    [bubble] = bubbles(staff_client, hooks.app)
    assert bubble == "Deleted by the customer"
    assert "4111" not in staff_client.get("/inbox/").get_data(as_text=True)
    assert conversation_of(hooks.app, ASHA).last_preview == "Deleted by the customer"


def test_changes_that_arrive_before_their_original_wait_for_it(hooks, staff_client):
    hooks.deliver(_edit(ASHA, "wamid.LATE", "Size L please", 5), _revoke(ASHA, "wamid.GONE", 6))
    assert bubbles(staff_client, hooks.app) == [
        "Edited a message that has not arrived here yet; it now reads: Size L please",
        "The customer deleted a message that had not arrived here"]

    hooks.deliver(_says(ASHA, "Size M please", "wamid.LATE"), _says(ASHA, "secret", "wamid.GONE", 1))
    assert bubbles(staff_client, hooks.app) == ["Size L please edited", "Deleted by the customer"]


def test_the_latest_edit_wins_whatever_the_order_and_a_deletion_wins_over_edits(hooks, staff_client):
    second, first = _edit(ASHA, "wamid.ORIGINAL", "third try", 20), _edit(ASHA, "wamid.ORIGINAL", "second try", 10)
    hooks.deliver(_says(ASHA, "first try", "wamid.ORIGINAL"), second, first, second)
    assert support.message_row(hooks.app, wamid="wamid.ORIGINAL").body == "third try"
    hooks.deliver(_revoke(ASHA, "wamid.ORIGINAL", 30), _edit(ASHA, "wamid.ORIGINAL", "fourth try", 40))
    assert bubbles(staff_client, hooks.app) == ["Deleted by the customer"]


def test_nobody_can_edit_or_delete_another_customers_message(hooks, staff_client):
    hooks.deliver(_says(ASHA, "Size M please", "wamid.ASHAS"), _edit(RAVI, "wamid.ASHAS", "Size XXL", 5),
                  _revoke(RAVI, "wamid.ASHAS", 6))
    assert bubbles(staff_client, hooks.app)[0] == "Size M please"


def test_a_flow_reply_shows_its_answers_as_lines(hooks, staff_client):
    answers = {"flow_token": "order-1042", "screen_0_Delivery_date_0": "2026-12-10", "screen_0_Size_1": "M",
               "screen_1_Colours_0": ["red", "blue"], "gift_wrap": True}
    hooks.deliver(_interactive(ASHA, "nfm_reply", {"name": "flow", "body": "Sent",
                                                    "response_json": json.dumps(answers)}))
    assert bubbles(staff_client, hooks.app) == [
        "Form answers Delivery date: 2026-12-10 Size: M Colours: red, blue Gift wrap: yes"]
    [message] = support.messages_of(hooks.app, ASHA)
    assert message.content["interactive"]["response_json"] == answers  # kept whole, parsed
    assert message.body.splitlines()[0] == "Delivery date: 2026-12-10"


def test_a_huge_or_deeply_nested_flow_reply_gives_a_bounded_text(hooks):
    nested: list = ["deep"]
    for _ in range(200):
        nested = [nested]
    answers = {"choices": ["a", nested]} | {f"field_{n}": "x" * 100 for n in range(2000)}
    hooks.deliver(_interactive(ASHA, "nfm_reply", {"name": "flow", "body": "Sent",
                                                    "response_json": json.dumps(answers)}))
    [message] = support.messages_of(hooks.app, ASHA)
    assert len(message.body) == FLOW_ANSWERS_MAX_CHARS and message.body.endswith("…")
    assert message.body.startswith('Choices: a, [[[[')  # nested answers shown as JSON, not walked
    assert message.content["interactive"]["response_json"] == answers  # kept whole


def test_a_flow_reply_with_unreadable_answers_still_shows_what_it_says(hooks, staff_client):
    hooks.deliver(_interactive(ASHA, "nfm_reply", {"name": "flow", "body": "Sent", "response_json": "{not json"}))
    assert bubbles(staff_client, hooks.app) == ["Form answers Sent"]
    assert support.messages_of(hooks.app, ASHA)[0].content["interactive"]["response_json"] == "{not json"


def test_call_permission_answers_say_allowed_or_declined(hooks, staff_client):
    hooks.deliver(_interactive(ASHA, "call_permission_reply", {
        "response": "accept", "is_permanent": False, "expiration_timestamp": 1_800_000_000,
        "response_source": "user_action"}))
    hooks.deliver(_interactive(ASHA, "call_permission_reply", {"response": "reject", "response_source": "user_action"}))
    assert bubbles(staff_client, hooks.app) == ["Call permission Allowed calls", "Call permission Declined calls"]
    assert conversation_of(hooks.app, ASHA).last_preview == "Declined calls"  # the list says it too
    assert support.messages_of(hooks.app, ASHA)[0].content["interactive"]["response"] == "accept"


def test_a_system_notice_shows_its_words(hooks, staff_client):
    hooks.deliver(inbound_body(text(ASHA, "", seconds=now_seconds(), kind="system", system={
        "body": "Asha's security code changed", "type": "customer_identity_changed"}), name=None))
    assert bubbles(staff_client, hooks.app) == ["WhatsApp notice Asha&#39;s security code changed"]
    with hooks.app.app_context():
        assert db.session.scalar(select(Message.body)) == "Asha's security code changed"
