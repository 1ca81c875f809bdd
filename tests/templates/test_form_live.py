"""The new-template form as it is typed (the live check and the preview) and a template in review updating itself."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import MessageTemplate, TemplateStatus
from tests.conftest import csrf_token_from, run_jobs
from tests.factories.webhooks import post_template_verdict

pytest_plugins = ["tests.factories.composer"]

LIVE = {"HX-Request": "true"}


@pytest.fixture
def staff_client(quick_staff_client):
    return quick_staff_client


def _check(client, data: dict, with_token: bool = True):
    """The form's live check, as HTMX posts it: the token in the X-CSRFToken header (static/js/app.js)."""
    token = csrf_token_from(client.get("/templates/new").get_data(as_text=True))
    headers = {**LIVE, "X-CSRFToken": token} if with_token else LIVE
    return client.post("/templates/new", data=data, headers=headers)


def html_of(client) -> str:
    return client.get("/templates/new").get_data(as_text=True)


def _slot(html: str, name: str) -> str:
    """The out-of-band slot of one field's message, as swapped in beside it."""
    start = html.index(f'<div id="{name}-error" class="field-slot" aria-live="polite" hx-swap-oob="innerHTML">')
    return html[start:html.index("</div>", start)]


def _template_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(MessageTemplate))


def test_the_live_check_gives_each_field_its_submit_sentence_and_saves_nothing(app, sim, staff_client):
    typed = {"name": "Diwali Offer!", "body": "{{1}} is here", "example_keys": ["body.1"]}
    response = _check(staff_client, typed)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert "Use only lowercase letters, digits and underscores, e.g. diwali_offer_2025." in _slot(html, "name")
    assert "The message can&#39;t start with a variable; put some words before it." in _slot(html, "body")
    assert "field-error" not in _slot(html, "footer")
    # An example not typed yet is not a problem while typing; on submit it is.
    assert "Give an example for" not in html and "field-error" not in _slot(html, "example-body-1")
    assert _template_count(app) == 0 and sim.simulator.templates.get("Diwali Offer!", "en_US") is None

    token = csrf_token_from(html_of(staff_client))
    submitted = staff_client.post("/templates/new", data={**typed, "csrf_token": token})
    page = submitted.get_data(as_text=True)
    assert submitted.status_code == 422
    for sentence in ("Use only lowercase letters, digits and underscores, e.g. diwali_offer_2025.",
                     "The message can&#39;t start with a variable; put some words before it.",
                     "Give an example for {{1}}: Meta requires one."):
        assert sentence in page


def test_an_empty_form_shows_no_messages_while_typing(staff_client):
    html = _check(staff_client, {"name": "", "body": ""}).get_data(as_text=True)
    assert "field-error" not in html
    emptied = 'id="body-error" class="field-slot" aria-live="polite" hx-swap-oob="innerHTML"></div>'
    assert emptied in html  # an empty slot too, so a message for a field put right goes away


def test_a_taken_name_is_flagged_while_typing(staff_client, make_template):
    make_template("diwali_offer", language="en_US")
    html = _check(staff_client, {"name": "diwali_offer", "language": "en_US", "body": "Hello"}).get_data(as_text=True)
    assert "A template called diwali_offer in en_US already exists; choose another name." in _slot(html, "name")


def test_a_bad_example_is_flagged_beside_its_input(staff_client):
    data = {"name": "ok_name", "body": "Hi {{1}}, welcome.", "example_keys": ["body.1"], "example-body.1": "x" * 201}
    html = _check(staff_client, data).get_data(as_text=True)
    assert "Keep the example on one line and under 200 characters." in _slot(html, "example-body-1")


def test_the_live_check_needs_the_csrf_header(staff_client):
    assert _check(staff_client, {"name": "x"}, with_token=False).status_code == 400


def test_the_preview_shows_the_example_values_and_placeholders_for_the_rest(staff_client):
    data = {"header_text": "Hello {{1}}", "example-header.1": "Asha", "body": "Hi {{1}}, enjoy {{2}} off today.",
            "example-body.1": "Asha", "example-body.2": "", "example_keys": ["header.1", "body.1", "body.2"]}
    html = _check(staff_client, data).get_data(as_text=True)
    assert '<mark class="wa-var" title="body.1">Asha</mark>' in html
    assert '<mark class="wa-var" title="header.1">Asha</mark>' in html
    assert '<mark class="wa-var" title="body.2">{{2}}</mark>' in html  # no example yet: the placeholder, not red
    form = staff_client.post("/templates/new", data={**data, "csrf_token": csrf_token_from(html_of(staff_client))})
    assert '<mark class="wa-var" title="body.1">Asha</mark>' in form.get_data(as_text=True)  # the re-shown form too


def test_new_example_inputs_are_drawn_only_when_the_variables_change(staff_client):
    data = {"body": "Hi {{1}}, your code is {{2}}. Thanks!"}
    html = _check(staff_client, data).get_data(as_text=True)
    assert 'id="example-fields" hx-swap-oob="true"' in html and 'name="example-body.2"' in html
    same = _check(staff_client, {**data, "example_keys": ["body.1", "body.2"]}).get_data(as_text=True)
    assert 'id="example-fields"' not in same and 'id="example-body-2-error"' in same  # inputs keep focus


def test_a_template_in_review_refreshes_itself_until_meta_decides(app, sim, staff_client, monkeypatch):
    data = {"name": "back_in_stock", "body": "Hi {{1}}, it is back!", "example-body.1": "Asha"}
    created = staff_client.post("/templates/new", data={**data, "csrf_token": csrf_token_from(html_of(staff_client))})
    detail_url = created.headers["Location"]
    page = staff_client.get(detail_url).get_data(as_text=True)
    assert "In review" in page and 'hx-trigger="every 5s"' in page and "This page updates by itself" in page
    listing = staff_client.get("/templates/").get_data(as_text=True)
    assert 'id="template-table"' in listing and 'hx-trigger="every 5s"' in listing

    post_template_verdict(app, monkeypatch, "back_in_stock")
    run_jobs(app)

    fragment = staff_client.get(detail_url, headers=LIVE).get_data(as_text=True)
    assert "<html" not in fragment and "Approved" in fragment and "In review" not in fragment
    assert "Use in a campaign" in fragment and "hx-trigger" not in fragment  # decided: the polling stops
    table = staff_client.get("/templates/", headers={**LIVE, "HX-Target": "template-table"}).get_data(as_text=True)
    assert "<html" not in table and "Approved" in table and "hx-trigger" not in table
    with app.app_context():
        assert db.session.scalar(select(MessageTemplate.status)) == TemplateStatus.APPROVED
