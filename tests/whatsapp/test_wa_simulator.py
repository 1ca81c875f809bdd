import json
from collections import Counter

import pytest
import requests

from app.whatsapp.client import body_parameters
from app.whatsapp.events import InboundMessage, StatusEvent, TemplateStatusEvent, UserPreferenceEvent
from app.whatsapp.webhook import parse_envelope, verify_signature

APP_SECRET = "test-app-secret"  # the sim_server fixture's settings
ACCESS_TOKEN = "test-access-token"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
ORDER = [body_parameters(["Asha", "#1042"])]
ALWAYS_READ = {"enabled": True, "delivered_probability": 1.0, "read_probability": 1.0}
EVERYONE_WROTE = ["*"]  # free-form text is delivered only inside the customer's 24-hour window


def all_signed(receiver):
    return all(verify_signature(body, signature, APP_SECRET) for signature, body in receiver.received)


def test_status_webhooks_are_signed_meta_envelopes(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks=ALWAYS_READ)
    result = wa_client.send_template("919800000201", "order_update", "en_US", ORDER,
                                     biz_opaque_callback_data="campaign-9:message-5")
    sim_receiver.wait_for(lambda r: len(r.statuses()) == 3)
    assert all_signed(sim_receiver)
    body = sim_receiver.bodies()[0]
    assert body["object"] == "whatsapp_business_account" and body["entry"][0]["id"] == WABA_ID
    events = [event for _, raw in sim_receiver.received for event in parse_envelope(raw).events]
    assert all(isinstance(event, StatusEvent) for event in events)
    assert sorted(event.status for event in events) == ["delivered", "read", "sent"]
    assert {event.wamid for event in events} == {result.wamid}
    assert {event.biz_opaque_callback_data for event in events} == {"campaign-9:message-5"}
    assert {event.phone_number_id for event in events} == {PHONE_NUMBER_ID}
    sent = next(event for event in events if event.status == "sent")
    assert (sent.pricing_category, sent.conversation_origin, sent.recipient_id) == ("utility", "utility",
                                                                                    "919800000201")


def test_probabilities_can_stop_at_sent(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks={"enabled": True, "delivered_probability": 0.0}, wrote_recently=EVERYONE_WROTE)
    wa_client.send_text("919800000202", "hi")
    sim_receiver.wait_for(lambda r: len(r.statuses()) >= 1)
    assert [status["status"] for status in sim_receiver.statuses()] == ["sent"]
    assert "pricing" in sim_receiver.statuses()[0]


def test_async_failure_arrives_as_failed_status(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks={"enabled": True}, fixed_outcomes={"919800000203": 131026})
    result = wa_client.send_template("919800000203", "order_update", "en_US", ORDER, biz_opaque_callback_data="c:9")
    assert result.ok, "Meta accepts first and reports undeliverable numbers by webhook"
    sim_receiver.wait_for(lambda r: len(r.statuses()) == 1)
    status = parse_envelope(sim_receiver.received[0][1]).statuses[0]
    assert (status.status, status.wamid, status.biz_opaque_callback_data) == ("failed", result.wamid, "c:9")
    assert status.errors[0].code == 131026 and status.errors[0].title


def test_batching_puts_several_statuses_in_one_post(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks={"enabled": True, "batch_size": 50, "batch_window_ms": 200,
                                "delivered_probability": 0.0}, wrote_recently=EVERYONE_WROTE)
    for i in range(10):
        assert wa_client.send_text(f"9198000003{i:02d}", "hi").ok
    sim_receiver.wait_for(lambda r: len(r.statuses()) == 10)
    assert len(sim_receiver.received) <= 2
    assert max(len(body["entry"][0]["changes"][0]["value"]["statuses"]) for body in sim_receiver.bodies()) >= 5
    assert all_signed(sim_receiver)


def test_duplicates_and_shuffle(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks={**ALWAYS_READ, "duplicate_probability": 1.0, "shuffle": True, "batch_size": 5},
                      wrote_recently=EVERYONE_WROTE)
    wamids = [wa_client.send_text(f"9198000004{i:02d}", "hi").wamid for i in range(20)]
    sim_receiver.wait_for(lambda r: len(r.statuses()) == 120)
    counts = Counter((status["id"], status["status"]) for status in sim_receiver.statuses())
    assert set(counts.values()) == {2}
    assert {wamid for wamid, _ in counts} == set(wamids)
    ranks = {"sent": 0, "delivered": 1, "read": 2}
    order = [(status["id"], ranks[status["status"]]) for status in sim_receiver.statuses()]
    out_of_order = sum(1 for i, (wamid, rank) in enumerate(order)
                       if any(w == wamid and r > rank for w, r in order[:i]))
    assert out_of_order > 0, "shuffle should let a later status overtake an earlier one"


def test_webhook_delivery_is_retried(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks={"enabled": True, "delivered_probability": 0.0, "max_attempts": 3},
                      wrote_recently=EVERYONE_WROTE)
    sim_receiver.fail_next = 2
    wa_client.send_text("919800000501", "hi")
    sim_receiver.wait_for(lambda r: len(r.statuses()) == 1 and sim_api.ledger()["webhooks"]["posted"] == 1)
    webhooks = sim_api.ledger()["webhooks"]
    assert (webhooks["retried"], webhooks["posted"], webhooks["failed"]) == (2, 1, 0)


def test_webhooks_off_sends_nothing(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks={"enabled": False})
    assert wa_client.send_text("919800000502", "hi").ok
    assert sim_api.ledger()["webhooks"]["pending"] == 0
    assert sim_receiver.received == []


def test_ledger_counts_duplicates_per_tracker(wa_client, sim_api):
    sends = [("919800000601", "camp-1:m1"), ("919800000601", "camp-1:m1-retry"), ("919800000601", "camp-2:m9"),
             ("919800000602", "camp-1:m2"), ("919800000603", "plain"), ("919800000603", "plain"),
             ("919800000604", None), ("919800000604", None), ("919800000605", "a:b:c"), ("919800000605", "a:b:d")]
    for to, callback in sends:
        assert wa_client.send_template(to, "order_update", "en_US", ORDER, biz_opaque_callback_data=callback).ok
    ledger = sim_api.ledger(detail=True)
    assert (ledger["accepted"], ledger["recipients"], ledger["duplicates"]) == (10, 5, 4)
    assert ledger["per_recipient"]["919800000601"] == 3
    duplicates = {(d["tracker"], d["recipient"]): d["count"] for d in ledger["duplicate_sends"]}
    assert duplicates == {("camp-1", "919800000601"): 2, ("plain", "919800000603"): 2,
                          ("order_update", "919800000604"): 2, ("a:b", "919800000605"): 2}


def test_reset_clears_ledger_and_config(wa_client, sim_api):
    sim_api.configure(latency_ms=5)
    wa_client.send_text("919800000701", "hi")
    assert requests.post(f"{sim_api.url}/_sim/reset", json={"keep_config": True}, timeout=5).ok
    assert sim_api.ledger()["accepted"] == 0
    assert requests.get(f"{sim_api.url}/_sim/config", timeout=5).json()["latency_ms"] == 5
    assert requests.post(f"{sim_api.url}/_sim/reset", json={}, timeout=5).ok
    assert requests.get(f"{sim_api.url}/_sim/config", timeout=5).json()["latency_ms"] == 0


@pytest.mark.parametrize(("changes", "message"), [
    ({"latency": 5}, "Unknown setting latency"),
    ({"latency_ms": "slow"}, "latency_ms has an invalid value"),
    ({"latency_ms": -1}, "must not be negative"),
    ({"webhooks": {"read_probability": 1.5}}, "between 0 and 1"),
    ({"webhooks": {"batch_size": 0}}, "at least 1"),
    ({"webhooks": {"enabled": "yes"}}, "webhooks.enabled"),
    ({"error_rates": {"abc": 0.1}}, "error_rates"),
    ({"fixed_outcomes": {"9198": {"mode": "later"}}}, "mode"),
    ({"template_review_outcome": "MAYBE"}, "template_review_outcome"),
])
def test_config_validation(sim_api, changes, message):
    response = requests.post(f"{sim_api.url}/_sim/config", json=changes, timeout=5)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_config_round_trip(sim_api):
    config = sim_api.configure(error_rates={"130429": 0.25}, fixed_outcomes={"+91 98000 00801": 131050},
                               webhooks={"batch_size": 3})
    assert config["error_rates"] == {"130429": 0.25}
    assert config["fixed_outcomes"] == {"919800000801": {"code": 131050, "mode": None, "latency_ms": None}}
    assert config["webhooks"]["batch_size"] == 3 and config["webhooks"]["read_probability"] == 0.6


def test_inbound_text_and_reply_context(wa_client, sim_api, sim_receiver):
    sent = wa_client.send_template("919800000901", "order_update", "en_US", ORDER)
    response = sim_api.inbound(**{"from": "919800000901", "profile_name": "Asha", "text": "Where is it?",
                                  "reply_to_last": True})
    assert response.status_code == 200 and response.json()["delivered"] is True
    assert all_signed(sim_receiver)
    message = parse_envelope(sim_receiver.received[-1][1]).messages[0]
    assert isinstance(message, InboundMessage)
    assert (message.text, message.profile_name, message.from_wa_id) == ("Where is it?", "Asha", "919800000901")
    assert message.context_id == sent.wamid == response.json()["context_id"]
    assert message.wamid == response.json()["wamid"]


@pytest.mark.parametrize(("spec", "check"), [
    ({"text": "STOP"}, lambda m: m.type == "text" and m.visible_text == "STOP"),
    ({"button": {"payload": "Stop promotions"}},
     lambda m: (m.type, m.button_payload, m.button_text) == ("button", "Stop promotions", "Stop promotions")),
    ({"interactive": {"type": "list_reply", "id": "size-m", "title": "Medium"}},
     lambda m: (m.interactive_type, m.interactive_id, m.interactive_title) == ("list_reply", "size-m", "Medium")),
    ({"interactive": {"id": "yes", "title": "Yes"}, "context_id": "wamid.given"},
     lambda m: (m.interactive_type, m.context_id) == ("button_reply", "wamid.given")),
])
def test_inbound_kinds(sim_api, sim_receiver, spec, check):
    response = sim_api.inbound(**{"from": "+91 98000 00902", **spec})
    assert response.status_code == 200, response.text
    message = parse_envelope(sim_receiver.received[-1][1]).messages[0]
    assert message.from_wa_id == "919800000902"
    assert check(message)


def test_inbound_user_preference(sim_api, sim_receiver):
    assert sim_api.inbound(**{"from": "919800000903", "preference": "stop"}).status_code == 200
    event = parse_envelope(sim_receiver.received[-1][1]).of_type(UserPreferenceEvent)[0]
    assert (event.wa_id, event.category, event.value) == ("919800000903", "marketing_messages", "stop")


def test_inbound_rejects_bad_requests_and_reports_failed_delivery(sim_api, sim_receiver):
    assert sim_api.inbound(text="no sender").status_code == 400
    assert sim_api.inbound(**{"from": "919800000904"}).status_code == 400
    sim_api.configure(webhooks={"max_attempts": 1})
    sim_receiver.fail_next = 1
    response = sim_api.inbound(**{"from": "919800000904", "text": "hello"})
    assert (response.status_code, response.json()["delivered"], response.json()["outcome"]) == (502, False,
                                                                                               "HTTP 500")


def test_the_control_api_takes_only_json_posts(sim_api, sim_receiver):
    # What a page on another site can send without asking first: a "simple" text/plain or form POST.
    body = json.dumps({"from": "919800000905", "text": "injected"})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = requests.post(f"{sim_api.url}/_sim/inbound", data=body, headers=headers, timeout=5)
        assert response.status_code == 415 and "application/json" in response.json()["error"]
    assert requests.post(f"{sim_api.url}/_sim/reset", timeout=5).status_code == 415
    assert sim_receiver.received == []
    assert sim_api.inbound(**{"from": "919800000905", "text": "from a test"}).status_code == 200


def test_the_control_api_refuses_other_origins(sim_api, sim_receiver):
    spec = {"from": "919800000906", "text": "injected"}
    for origin in ("http://evil.example", "null", sim_api.url.replace("127.0.0.1", "localhost")):
        response = requests.post(f"{sim_api.url}/_sim/inbound", json=spec, headers={"Origin": origin}, timeout=5)
        assert response.status_code == 403 and "origin" in response.json()["error"]
        assert requests.get(f"{sim_api.url}/_sim/config", headers={"Origin": origin}, timeout=5).status_code == 403
    assert sim_receiver.received == []
    own = requests.post(f"{sim_api.url}/_sim/inbound", json=spec, headers={"Origin": sim_api.url}, timeout=5)
    assert own.status_code == 200  # the simulator's own page, and tools that send no Origin, are served


def test_the_control_api_never_shows_the_secrets(sim_api):
    shown = requests.get(f"{sim_api.url}/_sim/config", timeout=5)
    updated = requests.post(f"{sim_api.url}/_sim/config", json={"app_secret": "a-new-app-secret-1234"}, timeout=5)
    for text in (shown.text, updated.text):
        assert ACCESS_TOKEN not in text and APP_SECRET not in text and "a-new-app-secret" not in text
    assert shown.json()["access_token"] == "…oken" and updated.json()["app_secret"] == "…1234"
    assert sim_api.simulator.config.app_secret == "a-new-app-secret-1234"  # set, only not echoed


def test_template_creation_posts_status_webhook(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks={"enabled": True})
    created = wa_client.create_template("restock_alert", "en_US", "UTILITY",
                                        [{"type": "BODY", "text": "{{1}} is back in stock."}])
    sim_receiver.wait_for(lambda r: len(r.received) == 1)
    event = parse_envelope(sim_receiver.received[0][1]).of_type(TemplateStatusEvent)[0]
    assert (event.template_id, event.name, event.event, event.reason) == (created.id, "restock_alert", "APPROVED",
                                                                         "NONE")
    assert all_signed(sim_receiver)


def test_template_rejection(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks={"enabled": True}, template_review_outcome="REJECTED")
    wa_client.create_template("bad_idea", "en_US", "MARKETING", [{"type": "BODY", "text": "Buy now"}])
    sim_receiver.wait_for(lambda r: len(r.received) == 1)
    event = parse_envelope(sim_receiver.received[0][1]).of_type(TemplateStatusEvent)[0]
    assert (event.event, event.reason) == ("REJECTED", "INVALID_FORMAT")
    assert next(t for t in wa_client.list_templates() if t.name == "bad_idea").status == "REJECTED"


def test_unknown_routes(sim_api):
    assert requests.get(f"{sim_api.url}/_sim/nothing", timeout=5).status_code == 404
    response = requests.get(f"{sim_api.url}/v23.0/1/2/3", timeout=5)
    assert response.status_code == 400 and response.json()["error"]["code"] == 100
    raw = requests.post(f"{sim_api.url}/v23.0/{PHONE_NUMBER_ID}/messages", data=b"not json",
                        headers={"Authorization": "Bearer test-access-token"}, timeout=5)
    assert raw.status_code == 400 and json.loads(raw.content)["error"]["code"] == 100
