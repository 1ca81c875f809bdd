"""The simulator's media, read-receipt and template-summary calls, answered as Meta answers them."""

import hashlib

import pytest
import requests

from app.whatsapp.sim_media import MediaStore

ACCESS_TOKEN = "test-access-token"  # the sim_server fixture's settings
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"
AUTH = {"Authorization": f"Bearer {ACCESS_TOKEN}"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 60
MB = 1024 * 1024


def upload(sim, content=PNG, mime="image/png", fields=None, headers=AUTH, phone_number_id=PHONE_NUMBER_ID):
    data = {"messaging_product": "whatsapp", "type": mime} if fields is None else fields
    return requests.post(f"{sim.url}/v23.0/{phone_number_id}/media", data=data, headers=headers, timeout=10,
                         files={"file": ("upload.bin", content, mime)})


def media(sim, method, media_id, headers=AUTH, **kwargs):
    return requests.request(method, f"{sim.url}/v23.0/{media_id}", headers=headers, timeout=5, **kwargs)


def graph_error(response, status=400):
    """The error object of a Graph-level refusal, which carries no error_data."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert "error_data" not in error and error["fbtrace_id"]
    return error


def test_upload_then_url_download_and_delete(sim_api):
    uploaded = upload(sim_api)
    assert uploaded.status_code == 200 and list(uploaded.json()) == ["id"]
    media_id = uploaded.json()["id"]
    assert media_id.isdigit() and sim_api.simulator.media_exists(media_id)

    info = media(sim_api, "GET", media_id).json()
    assert info == {"messaging_product": "whatsapp", "url": f"{sim_api.url}/_sim/media/{media_id}",
                    "mime_type": "image/png", "sha256": hashlib.sha256(PNG).hexdigest(), "file_size": len(PNG),
                    "id": media_id}
    download = requests.get(info["url"], headers=AUTH, timeout=5)
    assert (download.status_code, download.content, download.headers["Content-Type"]) == (200, PNG, "image/png")
    assert requests.get(info["url"], timeout=5).status_code == 401, "the download URL needs the access token"

    assert media(sim_api, "DELETE", media_id).json() == {"success": True}
    assert not sim_api.simulator.media_exists(media_id)
    assert requests.get(info["url"], headers=AUTH, timeout=5).status_code == 404


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_media_is_an_unsupported_request(sim_api, method):
    error = graph_error(media(sim_api, method, "1234567890123456"))
    assert (error["code"], error["error_subcode"], error["type"]) == (100, 33, "GraphMethodException")
    assert error["message"].startswith(f"Unsupported {method.lower()} request. Object with ID '1234567890123456' "
                                       "does not exist, cannot be loaded due to missing permissions")


def test_media_of_another_phone_number_is_not_found(sim_api):
    media_id = upload(sim_api).json()["id"]
    assert media(sim_api, "GET", media_id, params={"phone_number_id": PHONE_NUMBER_ID}).status_code == 200
    assert graph_error(media(sim_api, "GET", media_id, params={"phone_number_id": "999"}))["error_subcode"] == 33
    assert graph_error(media(sim_api, "DELETE", media_id, params={"phone_number_id": "999"}))["code"] == 100
    assert sim_api.simulator.media_exists(media_id)


def test_upload_refuses_types_meta_does_not_take(sim_api):
    error = graph_error(upload(sim_api, b"PK\x03\x04", "application/zip"))
    assert (error["code"], error["type"]) == (100, "OAuthException")
    assert error["message"].startswith("(#100) Param file must be a file with one of the following types: audio/aac,")
    assert error["message"].endswith("video/mp4, video/3gpp. Received file of type 'application/zip'.")


@pytest.mark.parametrize(("mime", "size", "accepted"), [
    ("image/jpeg", 5 * MB, True), ("image/png", 5 * MB + 1, False),
    ("application/pdf", 17 * MB, True),  # above the server's usual 16 MB body limit: uploads may be larger
    ("video/mp4", 16 * MB + 1, False), ("audio/ogg", 16 * MB, True),
])
def test_upload_size_limits_per_type(sim_api, mime, size, accepted):
    response = upload(sim_api, b"\x00" * size, mime)
    if accepted:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 400 and response.json()["error"]["code"] == 100
        assert "File Too Large" in response.json()["error"]["error_data"]["details"]


def test_stickers_are_limited_by_kind(sim_api):
    static = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * (100 * 1024)
    animated = b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00\x00\x00\x00\x02" + b"\x00" * (200 * 1024)
    assert upload(sim_api, static, "image/webp").status_code == 400
    assert upload(sim_api, animated, "image/webp").status_code == 200


@pytest.mark.parametrize(("fields", "message"), [
    ({"type": "image/png"}, "(#100) The parameter messaging_product is required."),
    ({"messaging_product": "sms"}, "(#100) The parameter messaging_product is required."),
])
def test_upload_needs_messaging_product(sim_api, fields, message):
    assert graph_error(upload(sim_api, fields=fields))["message"] == message


def test_upload_needs_a_file(sim_api):
    response = requests.post(f"{sim_api.url}/v23.0/{PHONE_NUMBER_ID}/media", headers=AUTH, timeout=5,
                             data={"messaging_product": "whatsapp"})
    assert graph_error(response)["message"] == "(#100) The parameter file is required."


def test_media_calls_need_the_token_and_the_right_number(sim_api):
    error = graph_error(upload(sim_api, headers={"Authorization": "Bearer wrong"}), status=401)
    assert (error["code"], error["message"]) == (190, "Invalid OAuth access token - Cannot parse access token")
    assert graph_error(media(sim_api, "GET", "1", headers={}), status=401)["code"] == 190
    assert graph_error(upload(sim_api, phone_number_id="999"))["message"].startswith("Unsupported post request.")


def test_media_store_keeps_a_bounded_total():
    store = MediaStore(limit_bytes=100)
    first = store.add(b"a" * 60, "image/png", PHONE_NUMBER_ID)
    second = store.add(b"b" * 30, "image/png", PHONE_NUMBER_ID)
    third = store.add(b"c" * 30, "image/png", PHONE_NUMBER_ID)
    assert first.id not in store and second.id in store and third.id in store
    assert store.snapshot() == {"stored": 2, "bytes": 60}


def read_receipt(sim, **body):
    payload = {"messaging_product": "whatsapp", "status": "read", **body}
    return requests.post(f"{sim.url}/v23.0/{PHONE_NUMBER_ID}/messages", json=payload, headers=AUTH, timeout=5)


def test_mark_read_and_typing_indicator(sim_api):
    wamid = sim_api.inbound(**{"from": "919800001001", "text": "Is my order shipped?"}).json()["wamid"]
    assert read_receipt(sim_api, message_id=wamid).json() == {"success": True}
    response = read_receipt(sim_api, message_id=wamid, typing_indicator={"type": "text"})
    assert (response.status_code, response.json()) == (200, {"success": True})
    ledger = sim_api.ledger()
    assert ledger["read_receipts"] == {"received": 1, "marked_read": 1, "typing_indicators": 1}
    assert ledger["accepted"] == 0, "a read receipt is not a send"


@pytest.mark.parametrize(("body", "message"), [
    ({"message_id": "wamid.unknown"}, "(#100) Invalid parameter"),
    ({"message_id": "{wamid}", "status": "delivered"}, "(#100) Invalid parameter"),
    ({"message_id": "{wamid}", "typing_indicator": {"type": "voice"}}, "(#100) Invalid parameter"),
    ({"message_id": "{wamid}", "messaging_product": None}, "(#100) The parameter messaging_product is required."),
    ({}, "(#100) The parameter message_id is required."),
])
def test_mark_read_refusals(sim_api, body, message):
    wamid = sim_api.inbound(**{"from": "919800001002", "text": "hello"}).json()["wamid"]
    body = {key: (wamid if value == "{wamid}" else value) for key, value in body.items()}
    response = read_receipt(sim_api, **body)
    assert response.status_code == 400 and response.json()["error"]["message"] == message
    assert response.json()["error"]["code"] == 100


def test_a_sent_message_cannot_be_marked_read(wa_client, sim_api):
    sent = wa_client.send_text("919800001003", "hi")
    assert read_receipt(sim_api, message_id=sent.wamid).status_code == 400


def templates(sim, **params):
    response = requests.get(f"{sim.url}/v23.0/{WABA_ID}/message_templates", params=params, headers=AUTH, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()


def test_template_list_summary(sim_api):
    assert "summary" not in templates(sim_api)
    assert templates(sim_api, summary="total_count", limit=1)["summary"] == {"total_count": 6}
    assert templates(sim_api, summary="true", status="PAUSED")["summary"] == {"total_count": 1}
    summary = templates(sim_api, summary="total_count,message_template_count,message_template_limit",
                        status="APPROVED")["summary"]
    assert summary == {"total_count": 5, "message_template_count": 6, "message_template_limit": 250}


def test_template_list_fields(sim_api):
    data = templates(sim_api, fields="name,status", limit=2)["data"]
    assert [sorted(item) for item in data] == [["id", "name", "status"]] * 2
