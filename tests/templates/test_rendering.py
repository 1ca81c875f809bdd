"""Rendering a campaign's template for a contact, and the review's empty-value count and launch problems built on it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select

from app.extensions import db
from app.models import Campaign, Contact, MessageTemplate, TemplateStatus
from app.services.campaigns import review
from app.services.templates import rendering
from app.whatsapp.client import WhatsAppClient
from app.whatsapp.settings import WhatsAppSettings
from app.whatsapp.sim_store import seed_templates

pytest_plugins = ["tests.factories.composer"]

POSITIONAL_MAPPING = {
    "header.1": {"source": "attribute", "value": "order", "fallback": "(new)"},
    "body.1": {"source": "name", "value": "", "fallback": "there"},
    "body.2": {"source": "attribute", "value": "order", "fallback": ""},
    "body.3": {"source": "literal", "value": "Pune", "fallback": ""},
    "button.0": {"source": "attribute", "value": "order", "fallback": "latest"},
}
NAMED_MAPPING = {
    "header.media": {"source": "literal", "value": "https://shop.example/diwali.jpg", "fallback": ""},
    "body.first_name": {"source": "name", "value": "", "fallback": "friend"},
    "body.discount": {"source": "attribute", "value": "discount", "fallback": "10%"},
    "body.festival": {"source": "literal", "value": "Diwali", "fallback": ""},
    "button.2": {"source": "attribute", "value": "coupon", "fallback": ""},
}


def _campaign(app, template_id: int | None, variables: dict, **columns) -> int:
    with app.app_context():
        campaign = Campaign(name="Test", template_id=template_id, phone_number_id="106540352242922",
                            variables=variables, audience=columns.pop("audience", {}), **columns)
        db.session.add(campaign)
        db.session.commit()
        return campaign.id


def _render(app, campaign_id: int, contact_id: int) -> rendering.Rendered:
    with app.app_context():
        return rendering.render(db.session.get(Campaign, campaign_id), db.session.get(Contact, contact_id))


def test_template_variables_of_a_positional_template(app, make_template):
    with app.app_context():
        template = db.session.get(MessageTemplate, make_template())
        found = rendering.template_variables(template)
    assert [(v.key, v.component, v.example) for v in found] == [
        ("header.1", "header", "#1042"), ("body.1", "body", "Asha"), ("body.2", "body", "#1042"),
        ("body.3", "body", "Pune"), ("button.0", "button", "A1042")]
    assert found[1].label == "{{1}} in the message" and found[4].label == "End of the “Track order” link"


def test_template_variables_of_a_named_template(app, named_template):
    with app.app_context():
        found = rendering.template_variables(db.session.get(MessageTemplate, named_template))
    assert [(v.key, v.kind) for v in found] == [
        ("header.media", "image"), ("body.first_name", "text"), ("body.discount", "text"),
        ("body.festival", "text"), ("button.2", "coupon_code")]
    assert found[1].example == "Asha"


def test_render_positional_gives_the_cloud_api_components(app, make_template, make_contact):
    contact = make_contact("+919800000001", "Asha Verma", attributes={"order": "A1042"})
    campaign = _campaign(app, make_template(), POSITIONAL_MAPPING)
    rendered = _render(app, campaign, contact)
    assert rendered.components == [
        {"type": "header", "parameters": [{"type": "text", "text": "A1042"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Asha Verma"}, {"type": "text", "text": "A1042"},
                                        {"type": "text", "text": "Pune"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "A1042"}]},
    ]
    assert rendered.preview == "Order A1042\nHi Asha Verma, your order A1042 ships to Pune today.\n" \
                               "Thank you for shopping with us"
    assert rendered.empty == []


def test_render_named_carries_parameter_names_media_and_coupon(app, named_template, make_contact):
    contact = make_contact("+919800000001", "Asha", attributes={"discount": "25%", "coupon": "ASHA25"})
    rendered = _render(app, _campaign(app, named_template, NAMED_MAPPING), contact)
    assert rendered.components == [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://shop.example/diwali.jpg"}}]},
        {"type": "body", "parameters": [
            {"type": "text", "text": "Asha", "parameter_name": "first_name"},
            {"type": "text", "text": "25%", "parameter_name": "discount"},
            {"type": "text", "text": "Diwali", "parameter_name": "festival"}]},
        {"type": "button", "sub_type": "copy_code", "index": "2",
         "parameters": [{"type": "coupon_code", "coupon_code": "ASHA25"}]},
    ]
    assert rendered.preview.startswith("Hi Asha, enjoy 25% off this Diwali!")


def test_fallbacks_fill_empty_values_and_the_rest_are_reported(app, make_template, make_contact):
    contact = make_contact("+919800000001", None, attributes={"order": "  "})
    rendered = _render(app, _campaign(app, make_template(), POSITIONAL_MAPPING), contact)
    body = rendered.components[1]["parameters"]
    assert [parameter["text"] for parameter in body] == ["there", "", "Pune"]
    assert rendered.components[0]["parameters"][0]["text"] == "(new)"
    assert rendered.empty == ["body.2"]


def test_values_lose_new_lines_tabs_and_runs_of_spaces(app, make_template, make_contact):
    contact = make_contact("+919800000001", "Asha\n\tVerma     Jr", attributes={"order": 1042})
    rendered = _render(app, _campaign(app, make_template(), POSITIONAL_MAPPING), contact)
    assert [p["text"] for p in rendered.components[1]["parameters"]][:2] == ["Asha Verma Jr", "1042"]


def test_positional_parameters_follow_the_variable_numbers(app, make_template, make_contact):
    template = make_template("swapped", [{"type": "BODY", "text": "Order {{2}} for {{1}} is ready."}])
    variables = {"body.1": {"source": "literal", "value": "Asha"}, "body.2": {"source": "literal", "value": "A1"}}
    rendered = _render(app, _campaign(app, template, variables), make_contact("+919800000001"))
    assert rendered.components == [{"type": "body", "parameters": [{"type": "text", "text": "Asha"},
                                                                   {"type": "text", "text": "A1"}]}]


def test_render_runs_no_queries(app, make_template, make_contact):
    contact_id = make_contact("+919800000001", "Asha", attributes={"order": "A1"})
    campaign_id = _campaign(app, make_template(), POSITIONAL_MAPPING)
    with app.app_context():
        campaign, contact = db.session.get(Campaign, campaign_id), db.session.get(Contact, contact_id)
        statements: list[str] = []

        def listener(connection, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            for _ in range(100):
                rendering.render(campaign, contact)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    assert statements == []


def test_rendered_components_are_accepted_by_the_simulator(app, sim, make_template, make_contact):
    seeded = {(data["name"], data["language"]): data for data in seed_templates()}
    positional = make_template("order_update", seeded[("order_update", "en_US")]["components"])
    named = make_template("festival_offer", seeded[("festival_offer", "en_US")]["components"],
                          category="MARKETING", parameter_format="NAMED")
    contact = make_contact("+919800000001", "Asha", attributes={"order": "#1042"})
    campaigns = [
        (positional, "order_update", {"body.1": {"source": "name"},
                                      "body.2": {"source": "attribute", "value": "order"}}),
        (named, "festival_offer", {key: value for key, value in NAMED_MAPPING.items() if key != "button.2"}),
    ]
    with WhatsAppClient(WhatsAppSettings.from_mapping(app.config)) as client:
        for template_id, name, variables in campaigns:
            rendered = _render(app, _campaign(app, template_id, variables), contact)
            result = client.send_template("919800000001", name, "en_US", rendered.components)
            assert result.ok, (name, result.error_message)


@pytest.fixture
def audience_of_three(make_contact):
    return [make_contact("+919800000001", "Asha", tags=["VIP"], attributes={"order": "A1"}),
            make_contact("+919800000002", None, tags=["VIP"], attributes={"order": ""}),
            make_contact("+919800000003", "Ravi", tags=["VIP"]),
            make_contact("+919800000004", None, tags=["VIP"], opted_out_at=datetime(2026, 1, 1, tzinfo=UTC)),
            make_contact("+919800000005", "Not VIP", tags=[])]


def test_empty_counts_agree_with_render(app, make_template, audience_of_three):
    mapping = {**POSITIONAL_MAPPING, "body.1": {"source": "name", "value": "", "fallback": ""}}
    campaign_id = _campaign(app, make_template(), mapping, audience={"tags_any": ["vip"]})
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        counts = review.empty_counts(campaign)
        eligible = db.session.scalars(select(Contact).where(Contact.id.in_(audience_of_three[:3]))).all()
        empties = [rendering.render(campaign, contact).empty for contact in eligible]
    assert counts.total == sum(1 for empty in empties if empty) == 2
    assert counts.by_key == {"body.1": 1, "body.2": 2}


def test_literal_without_fallback_counts_everyone(app, make_template, audience_of_three):
    mapping = {**POSITIONAL_MAPPING, "body.3": {"source": "literal", "value": " ", "fallback": ""},
               "body.2": {"source": "phone", "value": "", "fallback": ""}}
    campaign_id = _campaign(app, make_template(), mapping, audience={"tags_any": ["vip"]})
    with app.app_context():
        assert review.empty_counts(db.session.get(Campaign, campaign_id)).by_key == {"body.3": 3}


def _problems(app, campaign_id: int) -> list[str]:
    with app.app_context():
        return review.launch_problems(db.session.get(Campaign, campaign_id))


def test_a_complete_campaign_has_no_launch_problems(app, make_template, audience_of_three):
    mapping = {key: {**value, "fallback": value["fallback"] or "x"} for key, value in POSITIONAL_MAPPING.items()}
    assert _problems(app, _campaign(app, make_template(), mapping, audience={"tags_any": ["vip"]})) == []


@pytest.mark.parametrize(("case", "expected"), [
    ("no template", "Choose a message template."),
    ("paused", "The template “order_update” is paused by Meta; choose an approved template."),
    ("pending", "still waiting for Meta's approval"),
    ("unmapped", "Choose what fills {{3}} in the message, End of the “Track order” link."),
    ("nobody", "No contacts match this audience."),
    ("all opted out", "Everyone in this audience has opted out"),
    ("empty values", "2 recipients would get an empty value"),
])
def test_launch_problems(app, make_template, audience_of_three, case, expected):
    status = {"paused": TemplateStatus.PAUSED, "pending": TemplateStatus.PENDING}.get(case, TemplateStatus.APPROVED)
    template = None if case == "no template" else make_template(status=status)
    mapping = dict(POSITIONAL_MAPPING)
    if case == "unmapped":
        del mapping["body.3"]
        mapping["button.0"] = {"source": "attribute", "value": ""}
    audience = {"tags_any": ["vip"]}
    if case == "nobody":
        audience = {"tags_any": ["no such tag"]}
    elif case == "all opted out":
        audience = {"attributes": [{"key": "order", "op": "equals", "value": "nothing"}]}
        with app.app_context():
            db.session.get(Contact, audience_of_three[0]).attributes = {"order": "nothing"}
            db.session.get(Contact, audience_of_three[0]).opted_out_at = datetime(2026, 1, 1, tzinfo=UTC)
            db.session.commit()
    problems = _problems(app, _campaign(app, template, mapping, audience=audience))
    assert any(expected in problem for problem in problems), problems


def test_accepting_fallbacks_lets_empty_values_through(app, make_template, audience_of_three):
    campaign_id = _campaign(app, make_template(), POSITIONAL_MAPPING, audience={"tags_any": ["vip"]},
                            accept_fallbacks=True)
    assert _problems(app, campaign_id) == []


def test_a_changed_template_is_parsed_again(app, make_template, make_contact):
    contact = make_contact("+919800000001", "Asha")
    template_id = make_template("greeting", [{"type": "BODY", "text": "Hello {{1}}!"}])
    campaign_id = _campaign(app, template_id, {"body.1": {"source": "name"}})
    assert _render(app, campaign_id, contact).preview == "Hello Asha!"
    with app.app_context():
        db.session.get(MessageTemplate, template_id).components = [{"type": "BODY", "text": "Welcome back, {{1}}."}]
        db.session.commit()
    assert _render(app, campaign_id, contact).preview == "Welcome back, Asha."
