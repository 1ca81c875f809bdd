"""account_update webhooks: WhatsApp restricting, disabling or warning the account is recorded, shown to admins on
every page, pauses campaigns and holds other sends while the account cannot send, and lifts when Meta says so."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.clock import utcnow
from app.extensions import db
from app.models import AccountProblem, CampaignStatus, Message, Role
from app.services.admin import account_status
from app.services.sending import direct
from tests.conftest import AuthActions, csrf_token_from
from tests.factories import campaigns as dispatch
from tests.factories import webhooks as support
from tests.factories.webhooks import T0, envelope

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
C = CampaignStatus
DISABLED_WORDS = "WhatsApp has disabled this business account"
RESTRICTED_WORDS = "WhatsApp has stopped this account from starting conversations"


def account_update(value: dict, seconds: int = 0) -> dict:
    """An account_update as Meta sends it: the time and the account id are the entry's."""
    body = envelope("account_update", value)
    body["entry"][0]["time"] = T0 + seconds
    return body


def disabled(state: str = "DISABLE", seconds: int = 0) -> dict:
    return account_update({"event": "DISABLED_UPDATE",
                           "ban_info": {"waba_ban_state": state, "waba_ban_date": "December 7, 2026"}}, seconds)


def restricted(*restrictions: tuple[str, timedelta], seconds: int = 0) -> dict:
    """Meta lists every restriction in force, each with its end."""
    return account_update({"event": "ACCOUNT_RESTRICTION", "restriction_info": [
        {"restriction_type": kind, "expiration": int((utcnow() + ends_in).timestamp())}
        for kind, ends_in in restrictions]}, seconds)


def _admin(hooks, make_user):
    client = hooks.app.test_client()
    AuthActions(client).login(make_user(Role.ADMIN).email)
    return client


def _page(client, path: str = "/") -> str:
    response = client.get(path, follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_a_disabled_account_pauses_running_campaigns_and_is_bannered_on_every_admin_page(hooks, make_user, auth,
                                                                                          client):
    running = support.make_campaign(hooks.app, C.RUNNING, name="Diwali run")
    draft = support.make_campaign(hooks.app, C.DRAFT, name="Later")
    hooks.deliver(disabled())
    paused = dispatch.campaign_row(hooks.app, running)
    assert paused.status == C.PAUSED and DISABLED_WORDS in paused.pause_reason
    assert dispatch.campaign_row(hooks.app, draft).status == C.DRAFT
    [event] = hooks.events()
    assert event.outcome == "1 account problems recorded, 1 campaigns paused"
    admin = _admin(hooks, make_user)
    for path in ("/", "/contacts", "/campaigns", "/admin/webhook-events"):
        page = _page(admin, path)
        assert DISABLED_WORDS in page and "on December 7, 2026" in page, path
        assert "Running campaigns were paused and new ones cannot start while this lasts." in page
    auth.login(make_user(Role.STAFF).email)
    assert DISABLED_WORDS not in _page(client)  # the banner is for admins, who can act on it


def test_launch_and_resume_are_refused_while_the_account_is_disabled_then_allowed_once_reinstated(hooks, make_user):
    dispatch.add_contacts(hooks.app, 2)
    draft = dispatch.make_campaign(hooks.app, name="New year")
    paused = support.make_campaign(hooks.app, C.PAUSED, name="Old one")
    hooks.deliver(disabled())
    admin = _admin(hooks, make_user)
    token = csrf_token_from(_page(admin))
    page = admin.post(f"/campaigns/{draft}/launch", data={"csrf_token": token}, follow_redirects=True)
    assert "Campaigns cannot start while WhatsApp blocks this account" in page.get_data(as_text=True)
    assert dispatch.campaign_row(hooks.app, draft).status == C.DRAFT
    page = admin.post(f"/campaigns/{paused}/resume", data={"csrf_token": token}, follow_redirects=True)
    assert "Campaigns cannot start while WhatsApp blocks this account" in page.get_data(as_text=True)
    assert dispatch.campaign_row(hooks.app, paused).status == C.PAUSED

    hooks.deliver(disabled("REINSTATE", seconds=60))
    assert hooks.events()[-1].outcome == "1 account problems lifted"
    page = admin.post(f"/campaigns/{draft}/launch", data={"csrf_token": token}, follow_redirects=True)
    assert "Launched: sending has started." in page.get_data(as_text=True)
    assert DISABLED_WORDS not in _page(admin)


def test_an_old_reinstatement_delivered_late_does_not_lift_a_newer_ban(hooks, make_user):
    hooks.deliver(disabled(seconds=100), disabled("REINSTATE", seconds=50))
    assert DISABLED_WORDS in _page(_admin(hooks, make_user))


def test_messages_sent_on_their_own_are_held_while_disabled_and_go_once_reinstated(hooks, make_contact):
    contact_id = make_contact(phone="+919800000077")
    hooks.deliver(disabled())
    with hooks.app.app_context():
        message_id = direct.queue_text(contact_id, "Your order has shipped", "inbox_reply", utcnow()).id
        db.session.commit()
        assert direct.send_due().claimed == 0 and direct.next_due_in() is None
        assert db.session.get(Message, message_id).status == "pending"
    hooks.deliver(disabled("REINSTATE", seconds=60))
    with hooks.app.app_context():
        assert direct.next_due_in() == 0
        assert direct.send_due().sent == 1
    assert len(hooks.sends("919800000077")) == 1
    with hooks.app.app_context():
        assert db.session.get(Message, message_id).status == "sent"


def test_a_restriction_on_starting_conversations_pauses_campaigns_until_it_expires(hooks, make_user, clock):
    running = support.make_campaign(hooks.app, C.RUNNING)
    hooks.deliver(restricted(("RESTRICTED_BIZ_INITIATED_MESSAGING", timedelta(hours=24))))
    assert dispatch.campaign_row(hooks.app, running).status == C.PAUSED
    admin = _admin(hooks, make_user)
    page = _page(admin)
    assert RESTRICTED_WORDS in page and "lasts until" in page
    with hooks.app.app_context():
        assert account_status.direct_block() is None  # replies to customers still go
    clock.now = utcnow() + timedelta(hours=25)
    assert RESTRICTED_WORDS not in _page(admin)


def test_a_new_restriction_list_replaces_the_old_one_and_past_ones_are_ignored(hooks, make_user):
    hooks.deliver(restricted(("RESTRICTED_BIZ_INITIATED_MESSAGING", timedelta(hours=5))))
    hooks.deliver(restricted(("RESTRICTED_ADD_PHONE_NUMBER_ACTION", timedelta(hours=5)),
                             ("RESTRICTED_UTILITY_TEMPLATES", -timedelta(hours=1)), seconds=60))
    page = _page(_admin(hooks, make_user))
    assert "WhatsApp has stopped this account from adding phone numbers." in page
    assert RESTRICTED_WORDS not in page and "creating utility templates" not in page


def test_a_violation_is_a_warning_that_an_admin_can_dismiss(hooks, make_user):
    running = support.make_campaign(hooks.app, C.RUNNING)
    hooks.deliver(account_update({"event": "ACCOUNT_VIOLATION", "violation_info": {"violation_type": "SCAM"}}))
    assert dispatch.campaign_row(hooks.app, running).status == C.RUNNING  # a warning stops nothing
    admin = _admin(hooks, make_user)
    page = _page(admin)
    assert "WhatsApp found a policy violation on this account (scam)." in page and "Dismiss" in page
    with hooks.app.app_context():
        problem_id = db.session.scalar(select(AccountProblem.id))
    response = admin.post(f"/admin/account-problems/{problem_id}/dismiss",
                          data={"csrf_token": csrf_token_from(page)}, follow_redirects=True)
    assert "Account warning dismissed." in response.get_data(as_text=True)
    assert "policy violation" not in _page(admin)


def test_the_same_event_delivered_twice_is_recorded_once(hooks):
    hooks.deliver(disabled(), disabled())
    assert [event.outcome for event in hooks.events()] == ["1 account problems recorded",
                                                          "1 account problems already known"]


def test_an_unhandled_part_gets_its_own_badge_and_shows_among_the_problems(hooks, make_user):
    hooks.deliver(envelope("account_alerts", {"entity_type": "WABA", "alert_severity": "WARNING"}),
                  account_update({"event": "PARTNER_ADDED", "waba_info": {"waba_id": "1"}}))
    unhandled, noted = hooks.events()
    assert unhandled.outcome == "unhandled: 1 unhandled parts (account_alerts)"
    assert noted.outcome == "1 account updates noted"
    page = _page(_admin(hooks, make_user), "/admin/webhook-events?show=problems")
    assert 'badge badge-warn" title="Part of this event was not understood; the rest was applied">unhandled' in page
    assert "unhandled parts (account_alerts)" in page and "1 account updates noted" not in page
    assert "badge-ok" not in page
