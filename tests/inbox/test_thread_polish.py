"""What a new user noticed in their first hour: messages that never went out, times that fit, a live unread badge,
and a customer's new number offered where staff read about it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.extensions import db
from app.models import Contact
from app.services.admin import settings
from app.services.campaigns import lifecycle
from app.template_helpers import short_time
from tests.conftest import csrf_token_from
from tests.factories import campaigns as campaign_support
from tests.factories import webhooks as support
from tests.factories.inbox import ASHA, RAVI, contact_id, now_seconds, post_form, writes
from tests.factories.webhooks import inbound_body, text
from tests.webhooks.test_inbound_changes import bubbles

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
NEW_NUMBER = "919800000011"


def test_a_message_that_never_went_out_is_a_one_line_note(hooks, staff_client):
    writes(hooks, ASHA, "STOP", ago_hours=1)  # Asha opts out
    writes(hooks, RAVI, "hi", name="Ravi Kumar")
    skipped = campaign_support.make_campaign(hooks.app, name="Diwali offer")
    campaign_support.launch(hooks.app, skipped, run=False)  # Asha is skipped when the audience is frozen
    cancelled = campaign_support.make_campaign(hooks.app, name="New year sale")
    campaign_support.launch(hooks.app, cancelled, run=False)
    with hooks.app.app_context():
        lifecycle.cancel(cancelled)
        opted_out_on = db.session.get(Contact, contact_id(hooks.app, ASHA)).opted_out_at
        local = opted_out_on.astimezone(ZoneInfo(settings.get("timezone")))

    asha = bubbles(staff_client, hooks.app, ASHA)
    day = f"{local.day} {local:%b}"  # the shop's date, not the UTC one
    assert asha[-2:] == [f"Diwali offer · Not sent: opted out on {day}",
                         f"New year sale · Not sent: opted out on {day}"]
    page = staff_client.get(f"/inbox/{contact_id(hooks.app, ASHA)}").get_data(as_text=True)
    assert page.count('class="chat-note"') == 2 and 'class="chat-bubble"></div>' not in page
    assert bubbles(staff_client, hooks.app, RAVI)[-1] == "New year sale · Not sent: the campaign was cancelled"


def test_list_times_read_like_a_chat_app(app):
    now = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)  # a Wednesday
    with app.test_request_context():
        assert short_time(now - timedelta(minutes=5), now)[:2].isdigit()  # "17:25" in the shop's timezone
        assert short_time(now - timedelta(days=2), now) == "Mon"
        assert short_time(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), now) == "1 Dec"
        assert short_time(None, now) == "—"


def test_the_list_shows_todays_time_whole(hooks, staff_client):
    writes(hooks, ASHA, "hello")
    html = staff_client.get("/inbox/").get_data(as_text=True)
    shown = re.search(r'<time class="inbox-time"[^>]*>([^<]*)</time>', html).group(1)
    assert re.fullmatch(r"\d\d:\d\d", shown)


def test_the_nav_badge_is_as_live_as_the_conversation_list(hooks, staff_client):
    writes(hooks, ASHA, "hello")
    page = staff_client.get("/inbox/").get_data(as_text=True)
    assert page.count('id="nav-unread"') == 1 and 'title="1 conversation with unread messages">1<' in page
    writes(hooks, RAVI, "hi", name="Ravi Kumar")
    # What the list's poll (every 4s) gets back: the list, and the badge out of band, from one count.
    fragment = staff_client.get("/inbox/", headers={"HX-Request": "true", "HX-Target": "conversation-list"})
    body = fragment.get_data(as_text=True)
    assert body.lstrip().startswith('<div id="conversation-list"') and 'hx-trigger="every 4s' in body
    assert 'id="nav-unread" hx-swap-oob="true"' in body and 'title="2 conversations with unread messages">2<' in body
    asha = contact_id(hooks.app, ASHA)
    fragment = staff_client.get(f"/inbox/{asha}", headers={"HX-Request": "true", "HX-Target": "conversation-list"})
    assert 'id="nav-unread" hx-swap-oob="true"' in fragment.get_data(as_text=True)


def _changed_number(hooks) -> None:
    hooks.deliver(inbound_body(text(ASHA, "", seconds=now_seconds(), kind="system", system={
        "body": f"User A changed from {ASHA} to {NEW_NUMBER}", "wa_id": NEW_NUMBER,
        "type": "user_changed_number"}), name=None))


def test_staff_move_the_contact_to_the_new_number_the_notice_gives(hooks, staff_client):
    writes(hooks, ASHA, "hello")
    _changed_number(hooks)
    asha = contact_id(hooks.app, ASHA)
    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    assert f"User A changed from {ASHA} to {NEW_NUMBER}" in page
    button = f"Use the new number +{NEW_NUMBER}"
    assert button in page
    action = re.search(r'action="([^"]*/use-number)"', page).group(1)
    assert staff_client.post(action).status_code == 400  # no CSRF token: refused
    assert contact_id(hooks.app, NEW_NUMBER) is None

    response = post_form(staff_client, f"/inbox/{asha}", action)
    assert response.status_code == 302
    page = staff_client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Asha Rao now has the number +{NEW_NUMBER}." in page and button not in page
    assert contact_id(hooks.app, NEW_NUMBER) == asha and contact_id(hooks.app, ASHA) is None


def test_a_new_number_another_contact_has_is_refused_clearly(hooks, staff_client, make_contact):
    other = make_contact(f"+{NEW_NUMBER}", "Asha (new phone)")
    _changed_number(hooks)
    asha = contact_id(hooks.app, ASHA)
    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    action = re.search(r'action="([^"]*/use-number)"', page).group(1)
    response = staff_client.post(action, data={"csrf_token": csrf_token_from(page)}, follow_redirects=True)
    assert f"Another contact already has the number +{NEW_NUMBER}." in response.get_data(as_text=True)
    assert (contact_id(hooks.app, ASHA), contact_id(hooks.app, NEW_NUMBER)) == (asha, other)


def test_a_notice_is_no_handle_to_change_other_contacts(hooks, staff_client):
    _changed_number(hooks)
    writes(hooks, RAVI, "hi", name="Ravi Kumar")
    asha, ravi = contact_id(hooks.app, ASHA), contact_id(hooks.app, RAVI)
    page = staff_client.get(f"/inbox/{asha}").get_data(as_text=True)
    message_id = re.search(r"/messages/(\d+)/use-number", page).group(1)
    response = post_form(staff_client, f"/inbox/{ravi}", f"/inbox/{ravi}/messages/{message_id}/use-number")
    assert response.status_code == 404 and contact_id(hooks.app, RAVI) == ravi
