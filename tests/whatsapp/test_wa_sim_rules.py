"""What the simulator refuses at send time, as Meta does: one request, one expected error code."""

import pytest
import requests

from tests.whatsapp.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID

TO = "919800001001"
ORDER = {"name": "order_update", "language": {"code": "en_US"}}
FESTIVAL = {"name": "festival_offer", "language": {"code": "en_US"}}
TRACKING = {"name": "order_tracking", "language": {"code": "en_US"}}
LEAFLET = {"name": "store_leaflet", "language": {"code": "en_US"}}
IMAGE = "https://example.com/diwali.jpg"


def text(value):
    return {"type": "text", "text": value}


def body(*values):
    return {"type": "body", "parameters": [text(value) if isinstance(value, str) else value for value in values]}


def named_body(**values):
    return {"type": "body", "parameters": [{**text(value), "parameter_name": name} for name, value in values.items()]}


def image_header(**media):
    return {"type": "header", "parameters": [{"type": "image", "image": media}]}


def button(index, sub_type, *parameters):
    return {"type": "button", "sub_type": sub_type, "index": index, "parameters": list(parameters)}


def url_suffix(value):
    return button("0", "url", text(value))


def template(spec, *components):
    return {"type": "template", "template": {**spec, "components": list(components)}}


def festival(header=None, **overrides):
    values = {"first_name": "Asha", "festival": "Diwali", "discount": "20%", **overrides}
    return template(FESTIVAL, header or image_header(link=IMAGE), named_body(**values))


def reply_buttons(*titles, ids=None, body_text="Pick one"):
    buttons = [{"type": "reply", "reply": {"id": (ids or titles)[i], "title": title}} for i, title in enumerate(titles)]
    return {"type": "interactive", "interactive": {"type": "button", "body": {"text": body_text},
                                                   "action": {"buttons": buttons}}}


def rows(count, start=0, **row):
    return [{"id": f"row-{start + i}", "title": f"Row {start + i}", **row} for i in range(count)]


def list_message(*sections, label="Choose"):
    action = {"button": label, "sections": list(sections)}
    return {"type": "interactive", "interactive": {"type": "list", "body": {"text": "Our menu"}, "action": action}}


@pytest.fixture
def send(sim_api):
    sim_api.simulator.templates.create({"name": "order_tracking", "language": "en_US", "category": "UTILITY",
                                        "components": [
                                            {"type": "BODY", "text": "Your order {{1}} is on its way."},
                                            {"type": "BUTTONS", "buttons": [
                                                {"type": "URL", "text": "Track", "url": "https://shop.example/t/{{1}}"},
                                                {"type": "QUICK_REPLY", "text": "Stop"}]}]})
    sim_api.simulator.templates.create({"name": "store_leaflet", "language": "en_US", "category": "MARKETING",
                                        "components": [
                                            {"type": "BODY", "text": "Our new leaflet is out."},
                                            {"type": "BUTTONS", "buttons": [
                                                {"type": "URL", "text": "Open", "url": "https://shop.example/l"}]}]})
    for name in ("order_tracking", "store_leaflet"):
        sim_api.simulator.templates.set_status(sim_api.simulator.templates.get(name, "en_US").data["id"], "APPROVED")

    def post(message):
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": TO, **message}
        return requests.post(f"{sim_api.url}/v23.0/{PHONE_NUMBER_ID}/messages", json=payload, timeout=5,
                             headers={"Authorization": f"Bearer {ACCESS_TOKEN}"})

    return post


def assert_refused(response, code, details=None):
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["code"], error["type"]) == (code, "OAuthException")
    assert error["message"].startswith(f"(#{code}) ") and error["fbtrace_id"]
    assert error["error_data"]["messaging_product"] == "whatsapp" and error["error_data"]["details"]
    if details:
        assert details in error["error_data"]["details"]


ACCEPTED = [
    template(ORDER, body("Asha", "#1042")),
    template(ORDER, body("Asha", "four    spaces are fine")),
    template(ORDER, body("Asha", {"type": "currency", "currency": {"fallback_value": "$5", "code": "USD",
                                                                    "amount_1000": 5000}})),
    festival(),
    festival(header=image_header(link=IMAGE)) | {"biz_opaque_callback_data": "c:1"},
    template(TRACKING, body("#1042"), url_suffix("A1042"),
             button("1", "quick_reply", {"type": "payload", "payload": "STOP"})),
    template(TRACKING, body("#1042"), button(0, "url", text("A1042"))),
    template(LEAFLET),
    {"type": "image", "image": {"link": IMAGE, "caption": "Diwali offers"}},
    {"type": "document", "document": {"link": "https://example.com/menu.pdf", "filename": "menu.pdf"}},
    {"type": "audio", "audio": {"link": "https://example.com/hello.ogg"}},
    reply_buttons("Yes", "No", "Later"),
    list_message({"title": "Starters", "rows": rows(4, description="x" * 72)},
                 {"title": "Mains", "rows": rows(6, start=4)}),
    list_message({"rows": rows(1)}),
]


@pytest.mark.parametrize("message", ACCEPTED)
def test_valid_messages_are_accepted(send, message):
    response = send(message)
    assert response.status_code == 200, response.text
    assert response.json()["messages"][0]["message_status"] == "accepted"


@pytest.mark.parametrize(("message", "code", "details"), [
    (template(ORDER, body("", "#1042")), 131008, "Parameter of type text is missing text value"),
    (template(ORDER, body("Asha", {"type": "text"})), 131008, "missing text value"),
    (template(ORDER, body("Asha", {"text": "#1042"})), 131009, "Parameter type"),
    (template(ORDER, body("Asha", {"type": "currency"})), 131008, "missing currency value"),
    (festival(first_name=""), 131008, "missing text value"),
    (template(ORDER, body("Asha")), 132000, "number of localizable_params (1) does not match the expected number "
                                            "of params (2)"),
    (template(ORDER, body("Asha", "#1", "extra")), 132000, "localizable_params (3)"),
    (template(ORDER), 132000, "localizable_params (0)"),
    (template(ORDER, body("Asha", "#1"), {"type": "header", "parameters": [text("Hi")]}), 132000, "header"),
    (template(FESTIVAL, image_header(link=IMAGE), {"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name"}, {**text("Diwali"), "parameter_name": "festival"},
        {**text("20%"), "parameter_name": "discount"}]}), 131008, "missing text value"),
    (festival(discount_code="X"), 132000, "parameter names"),
])
def test_template_parameters(send, message, code, details):
    assert_refused(send(message), code, details)


@pytest.mark.parametrize("value", ["two\nlines", "a\ttab", "five     spaces", "\n"])
def test_new_lines_tabs_and_runs_of_spaces_in_a_parameter(send, value):
    assert_refused(send(template(ORDER, body("Asha", value))), 132018,
                   "Param text cannot have new-line/tab characters or more than 4 consecutive spaces")


@pytest.mark.parametrize(("message", "details"), [
    (template(TRACKING, body("#1042")), "Button at index 0 of type Url requires a parameter"),
    (template(TRACKING, body("#1042"), url_suffix("")), "missing text value"),
    (template(TRACKING, body("#1042"), button("0", "url")), "requires exactly one parameter"),
    (template(TRACKING, body("#1042"), url_suffix("A1"), url_suffix("A2") | {"index": "5"}), "does not exist"),
    (template(TRACKING, body("#1042"), url_suffix("A1") | {"index": "first"}), "does not exist"),
    (template(TRACKING, body("#1042"), url_suffix("A1"), button("1", "url", text("x"))), "is of type quick_reply"),
    (template(TRACKING, body("#1042"), url_suffix("A1"), button("1", "quick_reply", {"type": "payload"})),
     "missing payload value"),
    (template(ORDER, body("Asha", "#1"), url_suffix("A1")), "the template has no buttons"),
    (template(LEAFLET, url_suffix("A1")), "has a fixed URL"),
])
def test_button_parameters(send, message, details):
    assert_refused(send(message), 131008, details)


@pytest.mark.parametrize(("header", "code", "details"), [
    (image_header(link=""), 131008, "missing link or id"),
    (image_header(), 131008, "missing link or id"),
    (image_header(link=IMAGE, id="4242"), 131009, "not both"),
    (image_header(id="4242"), 131009, "media id 4242"),
    (image_header(id=""), 131008, "missing id value"),
    (image_header(link="ftp://example.com/a.jpg"), 131009, "http or https"),
    (image_header(link=IMAGE, caption="Diwali"), 131009, "caption is not allowed"),
    ({"type": "header", "parameters": [{"type": "video", "video": {"link": IMAGE}}]}, 132012,
     "expected IMAGE, received VIDEO"),
])
def test_media_headers(send, header, code, details):
    assert_refused(send(festival(header=header)), code, details)


@pytest.mark.parametrize(("message", "code", "details"), [
    ({"type": "image", "image": {"link": ""}}, 131008, "missing link or id"),
    ({"type": "image", "image": {"link": IMAGE, "id": "4242"}}, 131009, "not both"),
    ({"type": "image", "image": {"id": "4242"}}, 131009, "media id 4242"),
    ({"type": "image", "image": {"link": IMAGE, "caption": "x" * 1025}}, 131009, "at most 1024"),
    ({"type": "audio", "audio": {"link": IMAGE, "caption": "Listen"}}, 131009, "caption is not allowed"),
    ({"type": "sticker", "sticker": {"link": IMAGE, "caption": "Hi"}}, 131009, "caption is not allowed"),
    ({"type": "document"}, 131008, "The parameter document is required"),
])
def test_media_messages(send, message, code, details):
    assert_refused(send(message), code, details)


def test_uploaded_media_ids_are_accepted(send, sim_api, monkeypatch):
    monkeypatch.setattr(sim_api.simulator, "media_exists", lambda media_id: media_id == "4242")
    assert send({"type": "image", "image": {"id": "4242"}}).status_code == 200
    assert send(festival(header=image_header(id="4242"))).status_code == 200
    assert_refused(send({"type": "image", "image": {"id": "4243"}}), 131009)


@pytest.mark.parametrize(("message", "code", "details"), [
    ({"type": "interactive", "interactive": {"type": "", "body": {"text": "Hi"}}}, 131009, "is not valid"),
    ({"type": "interactive", "interactive": {"type": "buttons", "body": {"text": "Hi"}}}, 131009, "is not valid"),
    ({"type": "interactive", "interactive": {"body": {"text": "Hi"}}}, 131009, "is not valid"),
    ({"type": "interactive"}, 131008, "interactive is required"),
    (reply_buttons("A", "B", "C", "D"), 131009, "Max count: 3"),
    (reply_buttons("x" * 21), 131009, "Button title length invalid. Min length: 1, Max length: 20"),
    (reply_buttons(""), 131009, "Button title length invalid"),
    (reply_buttons("Yes", "Sure", ids=["same", "same"]), 131009, "unique"),
    (reply_buttons("Yes", body_text=""), 131008, "['body']['text'] is required"),
    (reply_buttons("Yes", body_text="x" * 1025), 131009, "Max length: 1024"),
    (reply_buttons(), 131008, "['buttons'] is required"),
    (list_message({"title": "A", "rows": rows(6)}, {"title": "B", "rows": rows(5, start=6)}), 131009,
     "Max count: 10"),
    (list_message({"rows": rows(1, title="x" * 25)}), 131009, "Row title length invalid"),
    (list_message({"rows": rows(1, description="x" * 73)}), 131009, "Row description length invalid"),
    (list_message({"rows": rows(2, id="same")}), 131009, "unique"),
    (list_message({"rows": rows(1)}, label="x" * 21), 131009, "Button text length invalid"),
    (list_message({"rows": rows(1)}, label=None), 131008, "Button text is required"),
    (list_message({"rows": rows(1)}, {"rows": rows(1, start=1)}), 131008, "Section title is required"),
    (list_message({"rows": []}), 131009, "Total row count invalid"),
    (list_message(), 131008, "['sections'] is required"),
])
def test_interactive_messages(send, message, code, details):
    assert_refused(send(message), code, details)
