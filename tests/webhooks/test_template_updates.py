"""Template webhooks: status, category and quality follow Meta; a paused or disabled template pauses its campaigns."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Campaign, CampaignStatus, MessageTemplate
from app.whatsapp.errors import classify
from tests.factories import webhooks as support
from tests.factories.webhooks import template_body

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
C = CampaignStatus


def _template(app, name="diwali_blast", meta_id="1200000000000099", status="APPROVED", language="en_US"):
    with app.app_context():
        template = MessageTemplate(name=name, language=language, category="MARKETING", status=status,
                                   meta_id=meta_id, components=[])
        db.session.add(template)
        db.session.commit()
        return template.id


def _fixture(name: str) -> bytes:
    return (support.wa.FIXTURES / name).read_bytes()


def _get(app, model, row_id):
    with app.app_context():
        row = db.session.get(model, row_id)
        db.session.expunge(row)
        return row


def test_rejection_is_recorded_on_the_template_found_by_meta_id(hooks):
    template_id = _template(hooks.app, status="PENDING")
    hooks.deliver(_fixture("template_status_update.json"))
    template = _get(hooks.app, MessageTemplate, template_id)
    assert (template.status, template.status_reason) == ("REJECTED", "INVALID_FORMAT")


def test_template_without_meta_id_is_found_by_name_and_language_and_learns_its_id(hooks):
    other_language = _template(hooks.app, meta_id=None, language="hi", status="PENDING")
    template_id = _template(hooks.app, meta_id=None, status="PENDING")
    hooks.deliver(template_body("APPROVED", "diwali_blast", template_id=555))
    template = _get(hooks.app, MessageTemplate, template_id)
    assert (template.status, template.status_reason, template.meta_id) == ("APPROVED", None, "555")
    assert _get(hooks.app, MessageTemplate, other_language).status == "PENDING"


@pytest.mark.parametrize("event, code", [("PAUSED", 132015), ("DISABLED", 132016)])
def test_paused_or_disabled_template_pauses_only_its_running_campaigns(hooks, event, code):
    template_id = _template(hooks.app)
    other_template = _template(hooks.app, name="other", meta_id="77")
    running = support.make_campaign(hooks.app, C.RUNNING, template_id, name="Diwali run")
    untouched = [support.make_campaign(hooks.app, status, template_id) for status in (C.DRAFT, C.SCHEDULED,
                                                                                      C.COMPLETED)]
    elsewhere = support.make_campaign(hooks.app, C.RUNNING, other_template)
    hooks.deliver(template_body(event, "diwali_blast", reason="LOW_QUALITY"))
    assert _get(hooks.app, MessageTemplate, template_id).status == event
    paused = _get(hooks.app, Campaign, running)
    assert paused.status == C.PAUSED and classify(code).explanation in paused.pause_reason
    assert [_get(hooks.app, Campaign, cid).status for cid in untouched] == [C.DRAFT, C.SCHEDULED, C.COMPLETED]
    assert _get(hooks.app, Campaign, elsewhere).status == C.RUNNING
    with hooks.app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions == ["template.status", "campaign.pause"]
    assert "1 campaigns paused" in hooks.events()[0].outcome


def test_category_and_quality_updates(hooks):
    order = _template(hooks.app, name="order_update", meta_id="1200000000000002")
    offer = _template(hooks.app, name="festival_offer", meta_id="1200000000000004")
    hooks.deliver(_fixture("template_category_update.json"), _fixture("template_quality_update.json"))
    assert _get(hooks.app, MessageTemplate, order).category == "MARKETING"
    assert _get(hooks.app, MessageTemplate, offer).quality == "YELLOW"


def test_event_for_a_template_we_do_not_have_changes_nothing(hooks):
    hooks.deliver(template_body("PAUSED", "never_synced", template_id=999))
    [event] = hooks.events()
    assert event.processed_at is not None and event.outcome == "1 unknown templates"


def test_an_event_for_another_template_id_leaves_a_template_with_its_own_id_alone(hooks):
    ours = _template(hooks.app, meta_id="1200000000000001", status="APPROVED")
    hooks.deliver(template_body("REJECTED", "diwali_blast", template_id=1200000000000777, reason="SCAM"))
    template = _get(hooks.app, MessageTemplate, ours)
    assert (template.status, template.status_reason, template.meta_id) == ("APPROVED", None, "1200000000000001")
    assert hooks.events()[0].outcome == "1 unknown templates"


def test_the_meta_id_wins_over_name_and_language(hooks):
    by_name = _template(hooks.app, meta_id=None, status="PENDING")
    by_id = _template(hooks.app, name="renamed_here", meta_id="1200000000000099", status="PENDING")
    hooks.deliver(template_body("APPROVED", "diwali_blast"))
    assert _get(hooks.app, MessageTemplate, by_id).status == "APPROVED"
    assert _get(hooks.app, MessageTemplate, by_name).status == "PENDING"


def test_a_rejection_keeps_metas_words_and_the_template_pages_show_them(hooks, staff_client):
    template_id = _template(hooks.app, status="PENDING")
    body = template_body("REJECTED", "diwali_blast", reason="INVALID_FORMAT")
    body["entry"][0]["changes"][0]["value"]["rejection_info"] = {
        "reason": "The variable {{1}} is at the start of the body",
        "recommendation": "Add words before the first variable"}
    hooks.deliver(body)
    template = _get(hooks.app, MessageTemplate, template_id)
    assert template.status_detail == ("The variable {{1}} is at the start of the body. "
                                      "Add words before the first variable.")
    for path in ("/templates/", f"/templates/{template_id}"):
        page = staff_client.get(path).get_data(as_text=True)
        assert "Meta rejected the format: check the variables, their examples and the buttons." in page, path
        assert "Meta says: The variable {{1}} is at the start of the body. Add words before the first" in page, path
    hooks.deliver(template_body("APPROVED", "diwali_blast"))
    assert _get(hooks.app, MessageTemplate, template_id).status_detail is None
