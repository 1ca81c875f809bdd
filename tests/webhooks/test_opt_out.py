"""Opting out (keywords, the Stop button, WhatsApp's own setting), one confirmation, and opting back in."""

from __future__ import annotations

import pytest

from app.models import OptOutSource
from app.services.admin import settings
from app.services.webhooks import processing
from jobs.sending import sweep_direct
from tests.factories import campaigns as dispatch
from tests.factories import webhooks as support
from tests.factories.webhooks import at, button, inbound_body, preference_body, run_jobs, statuses_body, text

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
ASHA = "919800000001"
CONFIRMATION = settings.DEFAULT_CONFIRMATION


def _opt_out_state(app, wa_id=ASHA):
    contact = support.contact_row(app, wa_id)
    return (contact.opted_out_at, contact.opt_out_source) if contact else None


def _confirmations(app, wa_id=ASHA):
    return [m for m in support.messages_of(app, wa_id, direction="out") if m.source == "opt_out_confirmation"]


@pytest.mark.parametrize("said", ["STOP", "stop", "  Stop \n", "UNSUBSCRIBE", "Cancel", "stop all", "STOP   ALL",
                                  "Stop.", "रोकें", " बंद  करें "])
def test_each_stop_word_opts_out_and_is_confirmed_once(hooks, said):
    hooks.deliver(inbound_body(text(ASHA, said, seconds=7)))
    assert _opt_out_state(hooks.app) == (at(7), OptOutSource.KEYWORD)
    [confirmation] = _confirmations(hooks.app)
    assert (confirmation.status, confirmation.message_type, confirmation.campaign_id) == ("sent", "text", None)
    assert confirmation.body == CONFIRMATION
    [send] = hooks.sends(ASHA)
    assert send["wamid"] == confirmation.wamid and send["tracker"] == f"m:{confirmation.id}"


@pytest.mark.parametrize("said", ["stop sending me offers", "STOPPED", "don't stop", "stopp", "START"])
def test_other_messages_do_not_opt_out(hooks, said):
    hooks.deliver(inbound_body(text(ASHA, said)))
    assert _opt_out_state(hooks.app) == (None, None)
    assert hooks.sends(ASHA) == []


@pytest.mark.parametrize("message", [
    button(ASHA, "Stop promotions", seconds=3),
    button(ASHA, "STOP", seconds=3, label="Unsubscribe me"),
    text(ASHA, "", seconds=3, kind="interactive", interactive={"type": "button_reply",
                                                              "button_reply": {"id": "stop", "title": "Stop"}}),
])
def test_stop_buttons_opt_out(hooks, message):
    hooks.deliver(inbound_body(message))
    assert _opt_out_state(hooks.app) == (at(3), OptOutSource.BUTTON)
    assert len(hooks.sends(ASHA)) == 1


def test_configured_local_words_replace_the_list(hooks):
    with hooks.app.app_context():
        settings.update({"opt_out_keywords": "STOP\nरुको\nband karo", "opt_out_confirmation": "Done, no more."}, None)
    hooks.deliver(inbound_body(text("919800000002", "cancel")), inbound_body(text(ASHA, " Band   KARO ")))
    assert _opt_out_state(hooks.app, "919800000002") == (None, None)
    assert _opt_out_state(hooks.app)[1] == OptOutSource.KEYWORD
    assert [m.body for m in _confirmations(hooks.app)] == ["Done, no more."]


def test_confirmation_is_sent_once_however_often_stop_arrives(hooks):
    stop = inbound_body(text(ASHA, "STOP", seconds=1, wamid="wamid.STOP1"))
    hooks.deliver(stop, stop, inbound_body(text(ASHA, "stop!!", seconds=2)))
    hooks.deliver(stop)
    assert len(_confirmations(hooks.app)) == 1
    assert len(hooks.sends(ASHA)) == 1 and hooks.sim.ledger()["duplicates"] == 0
    assert _opt_out_state(hooks.app) == (at(1), OptOutSource.KEYWORD)  # the first opt-out's time is kept


def test_no_reply_to_statuses_or_automatic_messages(hooks, make_contact):
    contact_id = make_contact(f"+{ASHA}")
    support.make_message(hooks.app, None, contact_id, "sent", "wamid.OURS")
    automatic = [text(ASHA, "", kind=kind, **{kind: payload}) for kind, payload in [
        ("system", {"body": "STOP", "type": "customer_identity_changed"}),
        ("reaction", {"message_id": "wamid.OURS", "emoji": "🛑"}),
        ("unsupported", {}), ("ephemeral", {})]]
    hooks.deliver(statuses_body(support.status("wamid.OURS", "delivered", 1)), inbound_body(*automatic))
    assert hooks.sends(ASHA) == [] and _opt_out_state(hooks.app) == (None, None)
    assert len(support.messages_of(hooks.app, ASHA, direction="in")) == 4


def test_start_lifts_a_customer_opt_out(hooks):
    for stop, start in [(1, 60), (90, 120)]:
        hooks.deliver(inbound_body(text(ASHA, "STOP", seconds=stop)))
        assert _opt_out_state(hooks.app) == (at(stop), OptOutSource.KEYWORD)
        hooks.deliver(inbound_body(text(ASHA, "start" if stop == 1 else " Subscribe", seconds=start)))
        assert _opt_out_state(hooks.app) == (None, None)
    assert len(hooks.sends(ASHA)) == 2  # one confirmation per opt-out


@pytest.mark.parametrize("source", [OptOutSource.STAFF, OptOutSource.IMPORT])
def test_start_never_lifts_a_staff_or_import_opt_out(hooks, make_contact, source):
    make_contact(f"+{ASHA}", opted_out_at=at(0), opt_out_source=source)
    hooks.deliver(inbound_body(text(ASHA, "START", seconds=60)), preference_body(ASHA, "resume", 70))
    assert _opt_out_state(hooks.app) == (at(0), source)


def test_start_sent_before_the_stop_does_not_undo_it(hooks):
    hooks.deliver(inbound_body(text(ASHA, "STOP", seconds=50)), inbound_body(text(ASHA, "START", seconds=10)))
    assert _opt_out_state(hooks.app) == (at(50), OptOutSource.KEYWORD)


def test_stop_then_start_before_the_confirmation_went_cancels_it(hooks):
    hooks.deliver(inbound_body(text(ASHA, "STOP", seconds=1), text(ASHA, "START", seconds=2)))
    assert _opt_out_state(hooks.app) == (None, None)
    assert [m.status for m in _confirmations(hooks.app)] == ["cancelled"]
    assert hooks.sends(ASHA) == []


def test_user_preferences_stop_and_resume(hooks):
    hooks.deliver(preference_body(ASHA, "stop", 5))
    assert _opt_out_state(hooks.app) == (at(5), OptOutSource.USER_PREFERENCES)
    assert support.contact_row(hooks.app, ASHA).phone == f"+{ASHA}"  # unknown number: kept as an opted-out contact
    assert hooks.sends(ASHA) == [] and _confirmations(hooks.app) == []  # WhatsApp confirms this one itself
    hooks.deliver(preference_body(ASHA, "resume", 9))
    assert _opt_out_state(hooks.app) == (None, None)


def test_user_preferences_resume_for_an_unknown_number_creates_nothing(hooks):
    hooks.deliver(preference_body("919800000077", "resume", 5))
    assert support.contact_row(hooks.app, "919800000077") is None


def test_confirmation_left_behind_by_a_lost_job_is_sent_by_the_sweeper(hooks):
    hooks.post(inbound_body(text(ASHA, "STOP")))
    with hooks.app.app_context():
        event_id = hooks.events()[0].id
        hooks.app.extensions["queues"]["high"].empty()  # as if Redis lost the queued jobs
        processing.process_event(event_id)
        hooks.app.extensions["queues"]["high"].empty()
    run_jobs(hooks.app)
    assert [m.status for m in _confirmations(hooks.app)] == ["pending"]
    with hooks.app.app_context():
        assert sweep_direct()["next_in"] == 0  # due now: the direct lane is queued again
        assert sweep_direct()["next_in"] == 0  # asking twice queues it once
    run_jobs(hooks.app)
    assert [m.status for m in _confirmations(hooks.app)] == ["sent"] and len(hooks.sends(ASHA)) == 1


def test_confirmation_failed_by_whatsapp_is_recorded_as_failed(hooks):
    hooks.sim.configure(fixed_outcomes={ASHA: 131047})  # Meta accepts it, then reports the failure by webhook
    hooks.deliver(inbound_body(text(ASHA, "STOP")))
    assert [m.status for m in _confirmations(hooks.app)] == ["sent"]
    assert dispatch.report_failures(hooks.app, hooks.sim) == 1
    [confirmation] = _confirmations(hooks.app)
    assert (confirmation.status, confirmation.error_code) == ("failed", 131047)
    assert "24 hours" in confirmation.error_detail


def test_confirmation_hitting_a_temporary_error_is_retried_later(hooks):
    hooks.sim.configure(fixed_outcomes={ASHA: {"code": 131000, "mode": "sync"}})
    hooks.deliver(inbound_body(text(ASHA, "STOP")))
    [confirmation] = _confirmations(hooks.app)
    assert (confirmation.status, confirmation.attempts) == ("pending", 1)
    assert confirmation.next_attempt_at is not None and _opt_out_state(hooks.app)[1] == OptOutSource.KEYWORD
    assert hooks.sends(ASHA) == []


def test_customers_who_opted_out_any_way_are_skipped_by_the_next_campaign(hooks, make_contact):
    keyword, stop_button, preference, subscribed = "919800000011", "919800000012", "919800000013", "919800000014"
    for wa_id in (keyword, stop_button, preference, subscribed):
        make_contact(f"+{wa_id}")
    hooks.deliver(inbound_body(text(keyword, "STOP", seconds=1)), inbound_body(button(stop_button, "Stop promotions",
                                                                                      seconds=2)),
                  preference_body(preference, "stop", 3))
    campaign_id = dispatch.make_campaign(hooks.app)  # to everyone, from the simulator's number
    dispatch.launch(hooks.app, campaign_id)  # the service, then its send batches, as the Launch button does

    recipients = {phone[1:]: message for phone, message in dispatch.messages(hooks.app, campaign_id).items()}
    reason = f"Opted out of messages on {at(0).date().isoformat()}"
    for wa_id in (keyword, stop_button, preference):
        assert (recipients[wa_id].status, recipients[wa_id].skip_reason) == ("skipped", reason)
        assert [send["template"] for send in hooks.sends(wa_id)] == ["text"] * (wa_id != preference)  # confirmations
    assert recipients[subscribed].status == "sent"
    assert [send["template"] for send in hooks.sends(subscribed)] == ["hello_world"]
    assert support.counters(hooks.app, campaign_id) == {"targeted": 4, "skipped": 3, "sent": 1, "delivered": 0,
                                                        "read": 0, "failed": 0, "replied": 0}


def test_signup_is_recorded_on_the_contact_shown_on_its_page_and_lifts_their_own_opt_out(hooks, staff_client):
    hooks.deliver(inbound_body(text(ASHA, "STOP", seconds=1)), preference_body(ASHA, "signup", 20))
    contact = support.contact_row(hooks.app, ASHA)
    assert (contact.marketing_preference, contact.marketing_preference_at) == ("signup", at(20))
    assert _opt_out_state(hooks.app) == (None, None)  # asking for offers undoes their own earlier STOP
    assert hooks.events()[-1].outcome == "1 marketing preferences recorded, 1 opt-ins"
    page = staff_client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "signed up for marketing messages on" in page and "Subscribed" in page


def test_an_older_preference_delivered_late_does_not_replace_a_newer_one(hooks, staff_client):
    hooks.deliver(preference_body(ASHA, "signup", 30), preference_body(ASHA, "stop", 10))
    contact = support.contact_row(hooks.app, ASHA)
    assert (contact.marketing_preference, contact.marketing_preference_at) == ("signup", at(30))
    page = staff_client.get(f"/contacts/{contact.id}").get_data(as_text=True)
    assert "signed up for marketing messages" in page and "chose to stop" not in page
