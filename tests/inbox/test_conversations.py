"""The inbox: conversations from inbound messages, unread counts, the 24-hour window, replies, assignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.extensions import db
from app.models import Message, MessageTemplate, TemplateStatus
from app.services.inbox import conversations as inbox
from tests.conftest import csrf_token_from, run_jobs
from tests.factories import webhooks as support
from tests.factories.inbox import ASHA, RAVI, contact_id, conversation_of, post_form, unread_in_list, writes
from tests.factories.webhooks import inbound_body, statuses_body, text

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
ORDER = [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."}]


def _template(app, components=ORDER, name="order_update") -> int:
    with app.app_context():
        template = MessageTemplate(name=name, language="en_US", category="UTILITY", status=TemplateStatus.APPROVED,
                                   components=components)
        db.session.add(template)
        db.session.commit()
        return template.id


def _replies(app, wa_id=ASHA) -> list[Message]:
    return [m for m in support.messages_of(app, wa_id, direction="out")
            if m.source == "inbox_reply"]


def test_window_is_24_hours_from_the_customers_last_message():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert inbox.window_for(None, now) == inbox.Window(False, None)
    assert inbox.window_for(now - timedelta(hours=23, minutes=59), now).open
    assert not inbox.window_for(now - timedelta(hours=24), now).open
    assert inbox.window_for(now - timedelta(hours=30), now).closes_at == now - timedelta(hours=6)


def test_window_counts_only_the_customers_own_messages(hooks):
    writes(hooks, ASHA, "hello", ago_hours=30)
    writes(hooks, ASHA, "", kind="system", system={"body": "Asha changed her number", "type": "user_changed_number"})
    conversation = conversation_of(hooks.app, ASHA)
    assert not inbox.window_for(conversation.last_inbound_at).open


def test_a_customer_message_starts_a_conversation_with_unread_counts(hooks, staff_client):
    writes(hooks, ASHA, "Is the blue kurta in stock?")
    writes(hooks, ASHA, "Size M please")
    writes(hooks, RAVI, "Hello", name="Ravi Kumar")
    html = staff_client.get("/inbox/").get_data(as_text=True)
    asha, ravi = contact_id(hooks.app, ASHA), contact_id(hooks.app, RAVI)
    assert "Asha Rao" in html and "Ravi Kumar" in html and "Size M please" in html
    assert unread_in_list(html, asha) == 2 and unread_in_list(html, ravi) == 1
    assert html.index("Ravi Kumar") < html.index("Asha Rao")  # latest activity first
    assert 'title="2 conversations with unread messages">2<' in html  # the nav badge

    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    assert "Is the blue kurta in stock?" in page
    assert conversation_of(hooks.app, ASHA).unread == 2  # a GET (a link from anywhere) changes nothing
    assert f'hx-post="/inbox/{asha}/read" hx-trigger="load"' in page  # the open page marks it read

    read = _read(staff_client, asha, page)
    assert read.status_code == 200 and read.headers["HX-Trigger"] == "inbox-read"  # the list refreshes
    body = read.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="thread"') and "Is the blue kurta in stock?" in body
    assert 'id="nav-unread" hx-swap-oob="true"' in body and 'title="1 conversation with unread messages">1<' in body
    html = staff_client.get("/inbox/?filter=unread").get_data(as_text=True)
    assert "Asha Rao" not in html and unread_in_list(html, ravi) == 1
    assert conversation_of(hooks.app, ASHA).unread == 0
    assert "HX-Trigger" not in _read(staff_client, asha, page).headers  # nothing more to mark


def _read(client, contact: int, page: str):
    """What the conversation page's htmx sends to mark it read: a POST with the page's CSRF header."""
    return client.post(f"/inbox/{contact}/read", headers={"HX-Request": "true", "X-CSRFToken": csrf_token_from(page)})


def test_marking_read_needs_a_post_with_the_csrf_token(hooks, staff_client):
    writes(hooks, ASHA, "hello")
    asha = contact_id(hooks.app, ASHA)
    assert staff_client.get(f"/inbox/{asha}/read").status_code == 405
    assert staff_client.post(f"/inbox/{asha}/read", headers={"HX-Request": "true"}).status_code == 400
    assert conversation_of(hooks.app, ASHA).unread == 1
    assert staff_client.post("/inbox/999999/read", headers={
        "X-CSRFToken": csrf_token_from(staff_client.get("/inbox/").get_data(as_text=True))}).status_code == 404


def test_search_by_name_or_phone(hooks, staff_client):
    writes(hooks, ASHA, "hi")
    writes(hooks, RAVI, "hi", name="Ravi Kumar")
    assert "Ravi Kumar" not in staff_client.get("/inbox/?filter=all&q=asha").get_data(as_text=True)
    html = staff_client.get("/inbox/?filter=all&q=9800000002").get_data(as_text=True)
    assert "Ravi Kumar" in html and "Asha Rao" not in html


def test_list_and_thread_are_live_fragments(hooks, staff_client):
    writes(hooks, ASHA, "first")
    asha = contact_id(hooks.app, ASHA)
    fragment = staff_client.get("/inbox/", headers={"HX-Request": "true", "HX-Target": "conversation-list"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="conversation-list"')
    assert 'hx-trigger="every 4s, inbox-read from:body"' in body
    assert "<html" not in body
    writes(hooks, ASHA, "second, while staff watch")
    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    assert f'hx-post="/inbox/{asha}/read" hx-trigger="every 3s"' in page  # new messages are read as they come
    body = _read(staff_client, asha, page).get_data(as_text=True)
    assert body.lstrip().startswith('<div id="thread"') and "second, while staff watch" in body and "<html" not in body


def test_free_text_inside_the_window_is_sent_and_gets_its_ticks(hooks, staff_client):
    writes(hooks, ASHA, "When will my order arrive?", ago_hours=2)
    asha = contact_id(hooks.app, ASHA)
    response = post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/reply", kind="text", body="Tomorrow!")
    assert response.status_code == 302
    run_jobs(hooks.app)
    [reply] = _replies(hooks.app)
    assert (reply.status, reply.body, reply.campaign_id, reply.message_type) == ("sent", "Tomorrow!", None, "text")
    [send] = hooks.sends(ASHA)
    assert send["wamid"] == reply.wamid and send["tracker"] == f"m:{reply.id}"
    assert 'data-status="sent">✓<' in staff_client.get(f"/inbox/{asha}").get_data(as_text=True)

    hooks.deliver(statuses_body(support.status(reply.wamid, "delivered", recipient=ASHA)))
    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    assert 'data-status="delivered">✓✓<' in page
    hooks.deliver(statuses_body(support.status(reply.wamid, "read", recipient=ASHA)))
    assert 'class="tick tick-read"' in staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    assert conversation_of(hooks.app, ASHA).last_preview == "You: Tomorrow!"


def test_free_text_is_refused_outside_the_window(hooks, staff_client):
    writes(hooks, ASHA, "hello", ago_hours=25)
    asha = contact_id(hooks.app, ASHA)
    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    assert "Free text is not possible now." in page and 'id="reply-body"' not in page
    response = post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/reply", kind="text", body="Hi again")
    assert response.status_code == 422
    assert "More than 24 hours have passed since this customer last wrote" in response.get_data(as_text=True)
    assert _replies(hooks.app) == [] and hooks.sends(ASHA) == []


def test_a_template_can_be_sent_outside_the_window(hooks, staff_client):
    template_id = _template(hooks.app)
    writes(hooks, ASHA, "hello", ago_hours=48)
    asha = contact_id(hooks.app, ASHA)
    fields = staff_client.get(f"/inbox/{asha}/template-fields?template_id={template_id}").get_data(as_text=True)
    assert 'name="var-body.1-text"' in fields and 'value="Asha Rao"' in fields
    missing = post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/reply", kind="template",
                        template_id=template_id, **{"var-body.1-text": "Asha", "var-body.2-text": ""})
    assert missing.status_code == 422 and "Fill in every variable" in missing.get_data(as_text=True)
    response = post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/reply", kind="template",
                         template_id=template_id, **{"var-body.1-text": "Asha", "var-body.2-text": "#1042"})
    assert response.status_code == 302
    run_jobs(hooks.app)
    [reply] = _replies(hooks.app)
    assert reply.status == "sent" and reply.message_type == "template"
    assert reply.body == "Hi Asha, your order #1042 is on its way."
    [send] = hooks.sends(ASHA)
    assert send["wamid"] == reply.wamid


def test_an_opted_out_customer_who_wrote_can_be_answered_inside_the_window(hooks, staff_client):
    writes(hooks, ASHA, "STOP", ago_hours=1)
    writes(hooks, ASHA, "but where is my refund?")
    asha = contact_id(hooks.app, ASHA)
    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    assert "opted out" in page and "Opt-out confirmation" in page
    response = post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/reply", kind="text", body="Sent today.")
    assert response.status_code == 302
    run_jobs(hooks.app)
    assert [m.status for m in _replies(hooks.app)] == ["sent"]


def test_a_retryable_error_puts_the_reply_back_with_backoff(hooks, staff_client):
    hooks.app.config.update(SEND_RETRY_BASE_SECONDS=60)
    hooks.sim.configure(fixed_outcomes={ASHA: {"code": 131000, "mode": "sync"}})
    writes(hooks, ASHA, "hi")
    asha = contact_id(hooks.app, ASHA)
    post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/reply", kind="text", body="Hello!")
    run_jobs(hooks.app)
    [reply] = _replies(hooks.app)
    assert (reply.status, reply.attempts) == ("pending", 1)
    assert reply.next_attempt_at > datetime.now(UTC) + timedelta(seconds=50)
    assert reply.error_title


def test_assign_done_and_reopen_on_a_new_message(hooks, staff_client, make_user):
    writes(hooks, ASHA, "hi")
    asha = contact_id(hooks.app, ASHA)
    post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/assign", user_id="me")
    assert "Asha Rao" in staff_client.get("/inbox/?filter=mine").get_data(as_text=True)
    other = make_user()
    post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/assign", user_id=str(other.id))
    assert conversation_of(hooks.app, ASHA).assigned_to_id == other.id
    assert "Asha Rao" not in staff_client.get("/inbox/?filter=mine").get_data(as_text=True)

    response = post_form(staff_client, f"/inbox/{asha}", f"/inbox/{asha}/done")
    assert response.status_code == 302 and conversation_of(hooks.app, ASHA).done_at is not None
    assert "Asha Rao" not in staff_client.get("/inbox/").get_data(as_text=True)  # open conversations only
    assert "Asha Rao" in staff_client.get("/inbox/?filter=done").get_data(as_text=True)

    writes(hooks, ASHA, "one more question")
    conversation = conversation_of(hooks.app, ASHA)
    assert conversation.done_at is None and conversation.unread == 1
    assert "Asha Rao" in staff_client.get("/inbox/").get_data(as_text=True)


def test_history_shows_campaign_messages_and_media(hooks, staff_client, make_contact):
    asha = make_contact("+919800000001", name="Asha Rao")
    campaign_id = support.make_campaign(hooks.app, name="Diwali offer")
    wamid = support.new_wamid()
    support.make_message(hooks.app, campaign_id, asha, status="delivered", wamid=wamid)
    hooks.deliver(inbound_body(text(ASHA, "", kind="image", context=wamid,
                                    image={"id": "media-1", "mime_type": "image/jpeg", "caption": "This one?"})))
    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    assert "Campaign · " in page and "Diwali offer" in page
    assert "🖼 Image" in page and "This one?" in page


def test_unknown_conversation_is_404(staff_client):
    assert staff_client.get("/inbox/999").status_code == 404


def test_the_inbox_needs_a_sign_in(client):
    assert client.get("/inbox/").status_code == 302
