import pytest

from app.whatsapp.payloads import (
    body_parameters,
    copy_code_button,
    header_media,
    header_text_parameters,
    quick_reply_button,
    template_message,
    template_placeholders,
    text_message,
    url_button,
)


def test_positional_body_parameters():
    assert body_parameters(["Asha", 1042]) == {"type": "body", "parameters": [
        {"type": "text", "text": "Asha"}, {"type": "text", "text": "1042"}]}


def test_named_body_parameters_carry_parameter_name():
    assert body_parameters({"first_name": "Asha", "discount": "20%"})["parameters"] == [
        {"type": "text", "text": "Asha", "parameter_name": "first_name"},
        {"type": "text", "text": "20%", "parameter_name": "discount"}]
    assert body_parameters([("first_name", "Asha")], named=True)["parameters"] == [
        {"type": "text", "text": "Asha", "parameter_name": "first_name"}]


def test_ready_made_parameter_objects_pass_through():
    currency = {"type": "currency", "currency": {"fallback_value": "₹899", "code": "INR", "amount_1000": 899000}}
    assert body_parameters([currency])["parameters"] == [currency]


def test_header_and_button_components():
    assert header_text_parameters(["Diwali"]) == {"type": "header", "parameters": [{"type": "text", "text": "Diwali"}]}
    assert header_media("IMAGE", link="https://example.com/a.jpg") == {
        "type": "header", "parameters": [{"type": "image", "image": {"link": "https://example.com/a.jpg"}}]}
    assert header_media("document", media_id="55", filename="bill.pdf")["parameters"][0]["document"] == {
        "id": "55", "filename": "bill.pdf"}
    assert quick_reply_button(1, "STOP") == {"type": "button", "sub_type": "quick_reply", "index": "1",
                                              "parameters": [{"type": "payload", "payload": "STOP"}]}
    assert url_button(0, "order/1042")["parameters"] == [{"type": "text", "text": "order/1042"}]
    assert copy_code_button(0, "DIWALI20")["parameters"] == [{"type": "coupon_code", "coupon_code": "DIWALI20"}]


def test_header_media_rejects_bad_input():
    with pytest.raises(ValueError):
        header_media("gif", link="https://example.com/a.gif")
    with pytest.raises(ValueError):
        header_media("image")


def test_full_messages():
    message = template_message("+919800000001", "order_update", "en_US", [body_parameters(["A", "B"])], "c:1")
    assert message["messaging_product"] == "whatsapp" and message["type"] == "template"
    assert message["template"]["language"] == {"code": "en_US"}
    assert message["biz_opaque_callback_data"] == "c:1"
    assert "components" not in template_message("1", "hello_world", "en_US")["template"]
    assert text_message("1", "hi")["text"] == {"body": "hi", "preview_url": False}


def test_template_placeholders():
    assert template_placeholders("Hi {{1}}, order {{2}} ({{1}})") == ["1", "2"]
    assert template_placeholders("Hi {{ first_name }}") == ["first_name"]
    assert template_placeholders(None) == []
