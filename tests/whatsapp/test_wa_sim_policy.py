"""What the simulator accepts and then fails by webhook because of the customer (the 24-hour window, marketing
opt-outs), its throughput cap, and the errors Graph answers before the Cloud API looks at a message."""

import time

import pytest
import requests

from app.whatsapp.client import body_parameters
from app.whatsapp.sim_config import SimulatorConfig
from app.whatsapp.simulator import _arguments
from tests.whatsapp.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID

ORDER = [body_parameters(["Asha", "#1042"])]
FESTIVAL = [{"type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/d.jpg"}}]},
            body_parameters({"first_name": "Asha", "festival": "Diwali", "discount": "20%"})]
WEBHOOKS_ON = {"enabled": True, "delivered_probability": 0.0}


def outcome(sim_api, wamid):
    """The code the simulator failed an accepted message with (None: it went out), from its ledger."""
    return next(send["failure_code"] for send in sim_api.ledger(detail=True)["recent"] if send["wamid"] == wamid)


def test_free_text_outside_the_window_is_accepted_then_failed_with_131047(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks=WEBHOOKS_ON)
    result = wa_client.send_text("919800002001", "Your order shipped", biz_opaque_callback_data="inbox:1")
    assert result.ok and result.message_status == "accepted"
    sim_receiver.wait_for(lambda r: len(r.statuses()) == 1)
    status = sim_receiver.statuses()[0]
    assert (status["id"], status["status"], status["biz_opaque_callback_data"]) == (result.wamid, "failed", "inbox:1")
    error = status["errors"][0]
    assert (error["code"], error["title"], error["message"]) == (131047, "Re-engagement message",
                                                                 "Re-engagement message")
    assert "24 hours" in error["error_data"]["details"] and error["href"]


def test_a_customer_message_opens_the_window(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks=WEBHOOKS_ON)
    assert sim_api.inbound(**{"from": "+91 98000 02002", "text": "Is my order ready?"}).status_code == 200
    assert sim_api.inbound(**{"from": "919800002003", "button": {"payload": "Track"}}).status_code == 200
    sent = [wa_client.send_text(number, "Yes, it is").wamid for number in ("919800002002", "919800002003")]
    sim_receiver.wait_for(lambda r: len(r.statuses()) == 2)
    assert {(s["id"], s["status"]) for s in sim_receiver.statuses()} == {(wamid, "sent") for wamid in sent}


def test_the_window_closes_after_24_hours(wa_client, sim_api):
    sim_api.simulator.customers.wrote("919800002004", at=time.time() - 24 * 3600 - 60)
    sim_api.simulator.customers.wrote("919800002005", at=time.time() - 23 * 3600)
    assert outcome(sim_api, wa_client.send_text("919800002004", "hi").wamid) == 131047
    assert outcome(sim_api, wa_client.send_text("919800002005", "hi").wamid) is None


def test_templates_need_no_window_and_other_free_form_kinds_do(wa_client, sim_api):
    assert outcome(sim_api, wa_client.send_template("919800002006", "order_update", "en_US", ORDER).wamid) is None
    image = {"messaging_product": "whatsapp", "to": "919800002006", "type": "image",
             "image": {"link": "https://example.com/d.jpg"}}
    assert outcome(sim_api, wa_client.send_payload(image).wamid) == 131047


def test_numbers_configured_as_having_written_recently(wa_client, sim_api):
    config = sim_api.configure(wrote_recently=["+91 98000 02007"])
    assert config["wrote_recently"] == ["919800002007"]
    assert outcome(sim_api, wa_client.send_text("919800002007", "hi").wamid) is None
    assert outcome(sim_api, wa_client.send_text("919800002008", "hi").wamid) == 131047
    sim_api.configure(wrote_recently=["*"])
    assert outcome(sim_api, wa_client.send_text("919800002008", "hi").wamid) is None


def test_marketing_to_a_customer_who_stopped_it_fails_with_131050(wa_client, sim_api, sim_receiver):
    sim_api.configure(webhooks=WEBHOOKS_ON)
    assert sim_api.inbound(**{"from": "919800002009", "preference": "stop"}).status_code == 200
    sim_receiver.clear()
    stopped = wa_client.send_template("919800002009", "festival_offer", "en_US", FESTIVAL)
    assert stopped.ok, "Meta accepts first and reports the opt-out by webhook"
    sim_receiver.wait_for(lambda r: len(r.statuses()) == 1)
    error = sim_receiver.statuses()[0]["errors"][0]
    assert (sim_receiver.statuses()[0]["status"], error["code"]) == ("failed", 131050)
    assert "stop receiving marketing messages" in error["title"]
    utility = wa_client.send_template("919800002009", "order_update", "en_US", ORDER)
    assert outcome(sim_api, utility.wamid) is None, "only marketing is stopped"
    assert sim_api.inbound(**{"from": "919800002009", "preference": "resume"}).status_code == 200
    resumed = wa_client.send_template("919800002009", "festival_offer", "en_US", FESTIVAL)
    assert outcome(sim_api, resumed.wamid) is None


def test_customer_actions_count_even_without_a_webhook_url(wa_client, sim_api):
    sim_api.configure(webhook_url=None)
    response = sim_api.inbound(**{"from": "919800002010", "preference": "stop"})
    assert response.status_code == 409 and "recorded" in response.json()["error"]
    assert outcome(sim_api, wa_client.send_template("919800002010", "festival_offer", "en_US", FESTIVAL).wamid) \
        == 131050


def test_a_scripted_outcome_wins_over_the_policy(wa_client, sim_api):
    sim_api.configure(fixed_outcomes={"919800002011": {"code": 131000, "mode": "sync"}})
    result = wa_client.send_text("919800002011", "hi")
    assert (result.ok, result.error_code) == (False, 131000)


def test_wrote_recently_must_be_numbers(sim_api):
    for value in (5, ["abc"], [7]):
        response = requests.post(f"{sim_api.url}/_sim/config", json={"wrote_recently": value}, timeout=5)
        assert response.status_code == 400 and "wrote_recently" in response.json()["error"]


# --- throughput --------------------------------------------------------------------------------------------------

def test_default_throughput_is_80_per_second(wa_client, sim_api):
    assert SimulatorConfig().max_messages_per_second == 80
    assert requests.get(f"{sim_api.url}/_sim/config", timeout=5).json()["max_messages_per_second"] == 80
    started = time.monotonic()
    results = [wa_client.send_template(f"919800003{i:03d}", "order_update", "en_US", ORDER) for i in range(200)]
    elapsed = time.monotonic() - started
    assert 80 <= sum(result.ok for result in results) <= 80 + 80 * elapsed + 1  # a full bucket, then 80 a second
    limited = next(result for result in results if not result.ok)
    assert (limited.error_code, limited.http_status, limited.retry_after) == (130429, 429, 1)


def test_retry_after_can_be_left_out(wa_client, sim_api):
    sim_api.configure(max_messages_per_second=1, retry_after_header=False)
    results = [wa_client.send_template(f"9198000031{i:02d}", "order_update", "en_US", ORDER) for i in range(3)]
    limited = next(result for result in results if not result.ok)
    assert (limited.error_code, limited.http_status, limited.retry_after) == (130429, 429, None)


def test_throughput_from_the_command_line_and_environment(monkeypatch):
    monkeypatch.delenv("SIMULATOR_THROUGHPUT", raising=False)
    assert (_arguments([]).throughput, _arguments([]).no_retry_after) == (80, False)
    assert _arguments(["--throughput", "0", "--no-retry-after"]).throughput == 0
    monkeypatch.setenv("SIMULATOR_THROUGHPUT", "250")
    assert _arguments([]).throughput == 250


# --- Graph-level errors and what Graph accepts ---------------------------------------------------------------------

def post(sim_api, payload, headers=None, query="", data=None):
    return requests.post(f"{sim_api.url}/v23.0/{PHONE_NUMBER_ID}/messages{query}", json=payload, data=data,
                         headers={"Authorization": f"Bearer {ACCESS_TOKEN}"} if headers is None else headers,
                         timeout=5)


TEXT = {"messaging_product": "whatsapp", "to": "919800004001", "type": "text", "text": {"body": "hi"}}


@pytest.mark.parametrize(("headers", "payload", "status", "code", "message"), [
    ({"Authorization": "Bearer wrong"}, TEXT, 401, 190, "Invalid OAuth access token - Cannot parse access token"),
    ({}, TEXT, 401, 190, "Invalid OAuth access token - Cannot parse access token"),
    (None, {**TEXT, "messaging_product": None}, 400, 100, "(#100) The parameter messaging_product is required."),
    (None, [TEXT], 400, 100, "(#100) The parameter messaging_product is required."),
])
def test_graph_errors_have_no_error_data(sim_api, headers, payload, status, code, message):
    response = post(sim_api, payload, headers)
    error = response.json()["error"]
    assert (response.status_code, error["code"], error["message"], error["type"]) == (status, code, message,
                                                                                      "OAuthException")
    assert "error_data" not in error and error["fbtrace_id"]


def test_an_unknown_phone_number_id_is_a_graph_method_error(sim_api):
    response = requests.post(f"{sim_api.url}/v23.0/999/messages", json=TEXT, timeout=5,
                             headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})
    error = response.json()["error"]
    assert (error["code"], error["type"], error["error_subcode"]) == (100, "GraphMethodException", 33)
    assert "Object with ID '999' does not exist" in error["message"] and "error_data" not in error


def test_cloud_api_errors_carry_details(sim_api):
    error = post(sim_api, {**TEXT, "to": "12"}).json()["error"]
    assert error["error_data"] == {"messaging_product": "whatsapp",
                                   "details": "Recipient phone number '12' is not a valid phone number."}


def test_the_token_may_come_in_the_query_string(sim_api):
    assert post(sim_api, TEXT, headers={}, query=f"?access_token={ACCESS_TOKEN}").status_code == 200
    assert post(sim_api, TEXT, headers={}, query="?access_token=wrong").status_code == 401
    listed = requests.get(f"{sim_api.url}/v23.0/102290129340398/message_templates",
                          params={"access_token": ACCESS_TOKEN}, timeout=5)
    assert listed.status_code == 200 and listed.json()["data"]


def test_chunked_request_bodies_are_read(sim_api):
    import json

    raw = json.dumps(TEXT).encode()
    response = requests.post(f"{sim_api.url}/v23.0/{PHONE_NUMBER_ID}/messages", timeout=5,
                             data=iter([raw[:10], raw[10:]]),  # a generator body goes out chunked
                             headers={"Authorization": f"Bearer {ACCESS_TOKEN}", "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
