"""Meta's template rules, one row per rule: the form names the field and the problem before anything is sent."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.services.templates.rules import ButtonDraft, TemplateDraft, components, parameter_format, problems

VALID = TemplateDraft(name="order_shipped", language="en_US", category="UTILITY", header_text="Order {{1}}",
                      body="Hi {{1}}, your order {{2}} has shipped.", footer="Thank you",
                      examples={"header.1": "#1042", "body.1": "Asha", "body.2": "#1042"})


def _buttons(*specs: tuple[str, str, str]) -> list[ButtonDraft]:
    return [ButtonDraft(kind, text, value, "x" if "{{1}}" in value else "") for kind, text, value in specs]


QUICK = ("QUICK_REPLY", "Yes", "")
URL = ("URL", "Open", "https://shop.example/a")
PHONE = ("PHONE_NUMBER", "Call", "+919800000000")


def test_a_valid_template_has_no_problems_and_builds_metas_shape():
    assert problems(VALID) == {}
    assert parameter_format(VALID) == "POSITIONAL"
    assert components(VALID) == [
        {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["#1042"]}},
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has shipped.",
         "example": {"body_text": [["Asha", "#1042"]]}},
        {"type": "FOOTER", "text": "Thank you"},
    ]


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"name": ""}, "name", "Give the template a name"),
    ({"name": "Order Shipped"}, "name", "lowercase letters, digits and underscores"),
    ({"name": "order-shipped"}, "name", "lowercase letters, digits and underscores"),
    ({"name": "a" * 513}, "name", "at most 512"),
    ({"language": "xx"}, "language", "Choose a language"),
    ({"category": "AUTHENTICATION"}, "category", "Choose a category"),
    ({"body": ""}, "body", "Write the message text"),
    ({"body": "x" * 1025}, "body", "Meta allows at most 1,024"),
    ({"body": "Hi {{1}}, order {{3}} shipped."}, "body", "from 1 with no gaps: {{1}}, {{2}}"),
    ({"body": "Hi {{2}}, order {{3}} shipped."}, "body", "from 1 with no gaps"),
    ({"body": "{{1}}, your order {{2}} has shipped."}, "body", "can't start with a variable"),
    ({"body": "Hi {{1}}, your order has shipped {{2}}"}, "body", "can't end with a variable"),
    ({"body": "Hi {{1}}, your order {{first_name}} shipped."}, "body", "not both"),
    ({"body": "Hi {{ 1 }}, your order {{2}} shipped."}, "body", "no spaces"),
    ({"body": "Hi {{First Name}}, your order shipped."}, "body", "no spaces"),
    ({"body": "Hi {{1}, your order shipped."}, "body", "stray brace"),
    ({"header_text": "x" * 61}, "header_text", "at most 60"),
    ({"header_text": "Order {{1}} for {{2}}"}, "header_text", "at most one variable"),
    ({"header_text": "Order {{2}}", "examples": {"header.2": "x", "body.1": "a", "body.2": "b"}}, "header_text",
     "must be {{1}}"),
    ({"header_text": "Hello {{name}}", "examples": {"header.name": "x", "body.1": "a", "body.2": "b"}}, "body",
     "not both"),
    ({"footer": "x" * 61}, "footer", "at most 60"),
    ({"footer": "Bye {{1}}"}, "footer", "can't have variables"),
    ({"examples": {"header.1": "#1", "body.1": "Asha"}}, "examples.body.2", "Give an example for {{2}}"),
    ({"examples": {"body.1": "Asha", "body.2": "x"}}, "examples.header.1", "Give an example for {{1}}"),
    ({"buttons": _buttons(*[QUICK] * 4)}, "buttons", "at most 3 “Quick reply” buttons"),
    ({"buttons": _buttons(URL, ("URL", "B", "https://b.example"), ("URL", "C", "https://c.example"))}, "buttons",
     "at most 2 “Visit website” buttons"),
    ({"buttons": _buttons(PHONE, ("PHONE_NUMBER", "Call 2", "+919800000001"))}, "buttons",
     "at most 1 “Call phone number” button"),
    ({"buttons": _buttons(*[("QUICK_REPLY", f"Q{i}", "") for i in range(3)], URL, ("URL", "B", "https://b.e"),
                          PHONE, ("COPY_CODE", "", "CODE1"), ("PHONE_NUMBER", "X", "+91980000000"),
                          ("URL", "C", "https://c.e"), ("QUICK_REPLY", "Q9", ""), ("QUICK_REPLY", "Q10", ""))},
     "buttons", "at most 10 buttons"),
    ({"buttons": _buttons(QUICK, URL, ("QUICK_REPLY", "No", ""))}, "buttons", "Keep the quick-reply buttons together"),
    ({"buttons": _buttons(("QUICK_REPLY", "x" * 26, ""))}, "buttons", "Button 1: the text is 26 characters"),
    ({"buttons": _buttons(("QUICK_REPLY", "", ""))}, "buttons", "Button 1: give it a text"),
    ({"buttons": _buttons(QUICK, ("QUICK_REPLY", "YES", ""))}, "buttons", "different text"),
    ({"buttons": _buttons(("URL", "Open", "shop.example"))}, "buttons", "starting with https://"),
    ({"buttons": _buttons(("URL", "Open", "https://shop.example/{{1}}/x"))}, "buttons", "at its very end"),
    ({"buttons": [ButtonDraft("URL", "Open", "https://shop.example/{{1}}", "")]}, "buttons",
     "give an example for the end of the link"),
    ({"buttons": _buttons(("PHONE_NUMBER", "Call", "98000 00000"))}, "buttons", "with its country code"),
    ({"buttons": _buttons(("COPY_CODE", "", "DIWALI-20"))}, "buttons", "Copy-code button is only allowed"),
    ({"category": "MARKETING", "buttons": _buttons(("COPY_CODE", "", "DIWALI-20"))}, "buttons",
     "up to 15 letters and digits"),
])
def test_each_rule_names_its_field(changes, field, message):
    found = problems(replace(VALID, **changes))
    assert field in found, found
    assert message.lower() in found[field].lower(), found[field]


def test_allowed_button_mixes_pass():
    draft = replace(VALID, category="MARKETING", buttons=[
        *_buttons(QUICK, ("QUICK_REPLY", "No", ""), ("QUICK_REPLY", "Later", ""), URL,
                  ("URL", "Track", "https://shop.example/t/{{1}}"), PHONE),
        ButtonDraft("COPY_CODE", "", "DIWALI20")])
    assert problems(draft) == {}
    built = components(draft)[-1]["buttons"]
    assert built[4] == {"type": "URL", "text": "Track", "url": "https://shop.example/t/{{1}}",
                        "example": ["https://shop.example/t/x"]}
    assert built[5] == {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+919800000000"}
    assert built[6] == {"type": "COPY_CODE", "example": "DIWALI20"}


def test_named_variables_use_named_examples():
    draft = TemplateDraft(name="welcome", category="MARKETING", body="Hi {{first_name}}, welcome to {{shop}}!",
                          examples={"body.first_name": "Asha", "body.shop": "Lotus"})
    assert problems(draft) == {}
    assert parameter_format(draft) == "NAMED"
    assert components(draft)[0]["example"] == {"body_text_named_params": [
        {"param_name": "first_name", "example": "Asha"}, {"param_name": "shop", "example": "Lotus"}]}
