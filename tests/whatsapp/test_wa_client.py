import dataclasses
import socket
import time

import pytest

from app.whatsapp.client import (
    WhatsAppApiError,
    WhatsAppClient,
    body_parameters,
    header_media,
    quick_reply_button,
)
from app.whatsapp.errors import ErrorAction
from app.whatsapp.settings import WhatsAppSettings

ORDER = [body_parameters(["Asha", "#1042"])]
FESTIVAL = [header_media("image", link="https://example.com/diwali.jpg"),
            body_parameters({"first_name": "Asha", "festival": "Diwali", "discount": "20%"}),
            quick_reply_button(1, "STOP")]


def test_template_send_is_accepted_and_recorded(wa_client, sim_api):
    result = wa_client.send_template("+91 98000 00001", "order_update", "en_US", ORDER,
                                     biz_opaque_callback_data="campaign-1:message-1")
    assert result.ok, result
    assert result.wamid.startswith("wamid.")
    assert (result.message_status, result.http_status, result.wa_id) == ("accepted", 200, "919800000001")
    assert result.error_info() is None
    ledger = sim_api.ledger(detail=True)
    assert (ledger["accepted"], ledger["recipients"], ledger["duplicates"]) == (1, 1, 0)
    assert ledger["recent"][0] == {"wamid": result.wamid, "to": "919800000001", "tracker": "campaign-1",
                                   "template": "order_update", "failure_code": None}


def test_named_parameters_with_image_header_and_hindi_template(wa_client):
    assert wa_client.send_template("919800000002", "festival_offer", "en_US", FESTIVAL).ok
    assert wa_client.send_template("919800000002", "order_update", "hi", [body_parameters(["आशा", "#7"])]).ok
    assert wa_client.send_template("919800000002", "hello_world", "en_US").ok


def test_text_send(wa_client):
    result = wa_client.send_text("919800000003", "Your order is on its way", preview_url=True,
                                 biz_opaque_callback_data="inbox:77")
    assert result.ok and result.wamid


@pytest.mark.parametrize(("name", "language", "components", "code"), [
    ("order_update", "en_US", [body_parameters(["only one"])], 132000),
    ("festival_offer", "en_US", [body_parameters({"first_name": "A", "festival": "B", "discount": "C"})], 132012),
    ("festival_offer", "en_US", FESTIVAL[:1] + [body_parameters({"first_name": "A"})], 132000),
    ("order_update", "en_US", [body_parameters(["line\nbreak", "x"])], 132018),
    ("no_such_template", "en_US", None, 132001),
    ("order_update", "fr", ORDER, 132001),
    ("summer_clearance", "en_US", [body_parameters(["50%"])], 132015),
])
def test_template_validation_errors_are_meta_shaped(wa_client, sim_api, name, language, components, code):
    result = wa_client.send_template("919800000004", name, language, components)
    assert not result.ok
    assert (result.error_code, result.http_status) == (code, 404 if code == 132001 else 400)  # as Meta answers
    assert result.error_details and result.error_message.startswith(f"(#{code})")
    assert result.fbtrace_id
    assert not result.outcome_unknown
    assert sim_api.ledger()["accepted"] == 0


def test_empty_text_is_rejected(wa_client):
    result = wa_client.send_text("919800000005", " ")
    assert (result.ok, result.error_code) == (False, 100)
    assert result.error_info().action is ErrorAction.PERMANENT


@pytest.mark.parametrize(("code", "http_status", "action"), [
    (131026, 400, ErrorAction.PERMANENT),
    (131048, 400, ErrorAction.PAUSE),
    (131049, 400, ErrorAction.DEFER_RECIPIENT),
    (368, 403, ErrorAction.STOP),
    (131000, 500, ErrorAction.RETRY),
    (131056, 400, ErrorAction.RETRY),
])
def test_scripted_errors_map_to_actions(wa_client, sim_api, code, http_status, action):
    sim_api.configure(fixed_outcomes={"+91 98000 00006": {"code": code, "mode": "sync"}})
    result = wa_client.send_template("919800000006", "order_update", "en_US", ORDER)
    assert (result.ok, result.error_code, result.http_status) == (False, code, http_status)
    info = result.error_info()
    assert info.action is action and info.explanation
    assert result.error_title == info.title
    assert wa_client.send_template("919800000007", "order_update", "en_US", ORDER).ok


def test_random_error_rate(wa_client, sim_api):
    sim_api.configure(error_rates={"131016": 1.0})
    result = wa_client.send_text("919800000008", "hi")
    assert (result.error_code, result.http_status, result.error_info().action) == (131016, 503, ErrorAction.RETRY)
    sim_api.configure(error_rates={})
    assert wa_client.send_text("919800000008", "hi").ok


def test_wrong_token_is_a_stop_error(wa_settings):
    bad = WhatsAppClient(WhatsAppSettings(**{**wa_settings.__dict__, "access_token": "expired"}))
    result = bad.send_template("919800000009", "hello_world", "en_US")
    bad.close()
    assert (result.error_code, result.http_status) == (190, 401)
    assert result.error_info().action is ErrorAction.STOP


def test_unknown_phone_number_id(wa_settings):
    other = WhatsAppClient(WhatsAppSettings(**{**wa_settings.__dict__, "phone_number_id": "999"}))
    result = other.send_text("919800000009", "hi")
    other.close()
    assert (result.error_code, result.error_subcode, result.http_status) == (100, 33, 400)


def test_throughput_limit_answers_429_with_retry_after(wa_client, sim_api):
    sim_api.configure(max_messages_per_second=2)
    results = [wa_client.send_text(f"91980000010{i}", "hi") for i in range(6)]
    limited = [r for r in results if not r.ok]
    assert sum(r.ok for r in results) >= 2 and limited
    assert all((r.error_code, r.http_status, r.retry_after) == (130429, 429, 1) for r in limited)
    assert limited[0].error_info().action is ErrorAction.RETRY
    time.sleep(0.6)
    assert wa_client.send_text("919800000110", "hi").ok


def test_latency_within_timeout_still_succeeds(wa_client, sim_api):
    sim_api.configure(latency_ms=150)
    started = time.monotonic()
    assert wa_client.send_text("919800000120", "hi").ok
    assert time.monotonic() - started >= 0.15


def test_read_timeout_is_outcome_unknown_and_the_send_did_happen(wa_settings, sim_api):
    sim_api.configure(fixed_outcomes={"919800000130": {"latency_ms": 800}})
    client = WhatsAppClient(WhatsAppSettings(**{**wa_settings.__dict__, "read_timeout": 0.2}))
    result = client.send_text("919800000130", "hi", biz_opaque_callback_data="c:1")
    client.close()
    assert (result.ok, result.outcome_unknown, result.http_status) == (False, True, None)
    assert "ReadTimeoutError" in result.error_message
    assert result.error_info().action is ErrorAction.RETRY
    assert result.error_info().retry_after_min >= 300
    assert sim_api.ledger()["accepted"] == 1


def test_connection_refused_is_not_outcome_unknown(wa_settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = WhatsAppClient(WhatsAppSettings(**{**wa_settings.__dict__, "base_url": f"http://127.0.0.1:{port}"}))
    result = client.send_text("919800000140", "hi")
    client.close()
    assert (result.ok, result.outcome_unknown, result.http_status) == (False, False, None)
    assert result.error_info().action is ErrorAction.RETRY
    assert "not sent" in result.error_info().explanation


def test_connect_timeout_is_not_outcome_unknown(wa_settings):
    with socket.socket() as listener:  # a full accept backlog makes the next connect hang
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        client = WhatsAppClient(WhatsAppSettings(**{**wa_settings.__dict__, "base_url": url, "connect_timeout": 0.2,
                                                    "read_timeout": 0.2}))
        result = client.send_text("919800000150", "hi")
        client.close()
        for filler in fillers:
            filler.close()
    assert not result.ok
    if result.error_message.startswith("ReadTimeoutError"):
        pytest.skip("this kernel accepted the connection despite the full backlog")
    assert result.outcome_unknown is False


def test_concurrent_sends_share_keep_alive_connections(wa_client, sim_api):
    from concurrent.futures import ThreadPoolExecutor

    sim_api.configure(max_messages_per_second=0)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: wa_client.send_text(f"9198{i:08d}", "hi", biz_opaque_callback_data=f"c:{i}"),
                                range(200)))
    assert all(r.ok for r in results)
    assert len({r.wamid for r in results}) == 200
    ledger = sim_api.ledger()
    assert (ledger["accepted"], ledger["recipients"], ledger["duplicates"]) == (200, 200, 0)


def test_list_templates_follows_paging(wa_client):
    templates = wa_client.list_templates(limit=2)
    names = [(t.name, t.language) for t in templates]
    assert ("hello_world", "en_US") in names and ("order_update", "hi") in names
    assert len(names) == len(set(names)) == 6
    festival = next(t for t in templates if t.name == "festival_offer")
    assert (festival.category, festival.parameter_format, festival.status) == ("MARKETING", "NAMED", "APPROVED")
    buttons = next(c for c in festival.components if c["type"] == "BUTTONS")["buttons"]
    assert {"type": "QUICK_REPLY", "text": "Stop promotions"} in buttons


def test_create_template_then_send_once_approved(wa_client):
    created = wa_client.create_template(
        "back_in_stock", "en_US", "MARKETING",
        [{"type": "BODY", "text": "Good news {{name}}: {{item}} is back!",
          "example": {"body_text_named_params": [{"param_name": "name", "example": "Asha"},
                                                 {"param_name": "item", "example": "Blue kurta"}]}}],
        parameter_format="NAMED")
    assert created.status == "PENDING" and created.category == "MARKETING" and created.id
    params = [body_parameters({"name": "Asha", "item": "Blue kurta"})]
    pending = wa_client.send_template("919800000160", "back_in_stock", "en_US", params)
    assert pending.error_code == 132001
    deadline = time.monotonic() + 3
    while not wa_client.send_template("919800000160", "back_in_stock", "en_US", params).ok:
        assert time.monotonic() < deadline, "template never approved"
        time.sleep(0.02)
    statuses = {t.name: t.status for t in wa_client.list_templates()}
    assert statuses["back_in_stock"] == "APPROVED"


def test_create_template_errors_raise_with_meta_fields(wa_client):
    with pytest.raises(WhatsAppApiError) as duplicate:
        wa_client.create_template("order_update", "en_US", "UTILITY", [{"type": "BODY", "text": "x"}])
    assert (duplicate.value.code, duplicate.value.subcode, duplicate.value.http_status) == (100, 2388024, 400)
    with pytest.raises(WhatsAppApiError) as invalid:
        wa_client.create_template("Bad Name", "en_US", "PROMO", [])
    assert invalid.value.info.action is ErrorAction.PERMANENT


def test_list_templates_with_wrong_token_raises(wa_settings):
    bad = WhatsAppClient(WhatsAppSettings(**{**wa_settings.__dict__, "access_token": "nope"}))
    with pytest.raises(WhatsAppApiError) as error:
        bad.list_templates()
    bad.close()
    assert (error.value.code, error.value.info.action) == (190, ErrorAction.STOP)


def test_connection_dropped_after_the_request_is_outcome_unknown(wa_settings):
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    received = []

    def read_then_hang_up():
        connection, _ = listener.accept()
        with connection:  # the whole request arrives, then the peer vanishes without answering
            data = b""
            while b"919800000170" not in data:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                data += chunk
            received.append(data)

    thread = threading.Thread(target=read_then_hang_up, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    client = WhatsAppClient(WhatsAppSettings(**{**wa_settings.__dict__, "base_url": url}))
    result = client.send_text("919800000170", "hi")
    client.close()
    thread.join(timeout=2)
    listener.close()
    assert received and b"919800000170" in received[0]
    assert (result.ok, result.outcome_unknown) == (False, True)
    assert "ProtocolError" in result.error_message


def test_phone_number_info_gives_the_display_number_and_verified_name(wa_client, sim_api):
    info = wa_client.phone_number_info()
    assert (info.id, info.display_phone_number, info.verified_name) == (
        "106540352242922", "+1 555-078-3881", "Broadcaster Demo")
    sim_api.configure(display_phone_number="919876543210", verified_name="Sharma Stores")
    info = wa_client.phone_number_info()
    assert (info.display_phone_number, info.verified_name, info.quality_rating) == (
        "+91 98765 43210", "Sharma Stores", "GREEN")


def test_phone_number_info_raises_when_whatsapp_refuses(wa_settings, sim_api):
    with WhatsAppClient(dataclasses.replace(wa_settings, access_token="wrong")) as client, \
            pytest.raises(WhatsAppApiError) as refused:
        client.phone_number_info()
    assert refused.value.code == 190
    with WhatsAppClient(dataclasses.replace(wa_settings, phone_number_id="999")) as client, \
            pytest.raises(WhatsAppApiError):
        client.phone_number_info()
