"""The campaign composer: pages, live fragments, saving drafts, validation, cost estimate, CSRF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from werkzeug.datastructures import MultiDict

from app.extensions import db
from app.models import Campaign, CampaignStatus, Contact, Setting, TemplateStatus
from app.services import campaigns
from app.services.errors import ServiceError
from tests.conftest import csrf_token_from

pytest_plugins = ["tests.composer_fixtures"]


@pytest.fixture
def staff_client(quick_staff_client):
    """A signed-in staff member without scrypt's second per user (see tests/composer_fixtures.py)."""
    return quick_staff_client


@pytest.fixture(autouse=True)
def sender(app):
    app.config["WHATSAPP_PHONE_NUMBER_ID"] = "106540352242922"


@pytest.fixture
def shop(make_contact):
    return {
        "asha": make_contact("+919876543210", "Asha Verma", tags=["VIP"], attributes={"city": "Pune", "order": "A1"}),
        "ravi": make_contact("+919812345678", "Ravi Kumar", tags=["VIP", "Delhi"], attributes={"order": "B2"}),
        "sita": make_contact("+919800000003", None, tags=["Delhi"], attributes={"city": "Delhi"}),
        "gone": make_contact("+919800000004", "Opted Out", tags=["VIP"], opted_out_at=datetime(2026, 1, 1, tzinfo=UTC)),
    }


def _form(template_id: int | str = "", **changes) -> MultiDict:
    fields = {"name": "Diwali VIPs", "template_id": str(template_id), "audience_mode": "filter", "tags": "vip",
              "tags_match": "any", "var-header.1-source": "attribute", "var-header.1-field": "order",
              "var-body.1-source": "name", "var-body.1-fallback": "there",
              "var-body.2-source": "attribute", "var-body.2-field": "order", "var-body.2-fallback": "",
              "var-body.3-source": "attribute", "var-body.3-field": "city", "var-body.3-fallback": "your city",
              "var-button.0-source": "attribute", "var-button.0-field": "order", "var-button.0-fallback": "latest",
              "schedule_kind": "now", "quiet_hours_start": "21:00", "quiet_hours_end": "09:00"}
    fields.update(changes)
    return MultiDict(fields)


def _post(client, path: str, form: MultiDict, follow: bool = False):
    page = client.get("/campaigns/new").get_data(as_text=True)
    data = MultiDict(form)
    data["csrf_token"] = csrf_token_from(page)
    return client.post(path, data=data, follow_redirects=follow)


def test_new_campaign_page_is_a_full_page_with_the_composer(staff_client, make_template):
    template_id = make_template()
    make_template("old_offer", status=TemplateStatus.PAUSED)
    html = staff_client.get(f"/campaigns/new?template_id={template_id}").get_data(as_text=True)
    assert "<html" in html and "New campaign" in html
    assert "order_update · en_US" in html and "old_offer" not in html  # approved templates only
    assert 'name="var-body.2-source"' in html  # the chosen template's variables are offered
    assert "campaigns.css" in html


def test_save_draft_stores_audience_variables_and_schedule(app, staff_client, make_template, shop):
    template_id = make_template()
    response = _post(staff_client, "/campaigns/new", _form(template_id, tags_match="all", exclude_tags="delhi",
                                                             rule_key="city", rule_op="equals", rule_value="Pune"))
    assert response.status_code == 302
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        assert campaign.status == CampaignStatus.DRAFT
        assert campaign.audience == {"tags_all": ["vip"], "exclude_tags": ["delhi"],
                                     "attributes": [{"key": "city", "op": "equals", "value": "Pune"}]}
        assert campaign.variables["body.1"] == {"source": "name", "value": "", "fallback": "there"}
        assert campaign.variables["body.3"] == {"source": "attribute", "value": "city", "fallback": "your city"}
        assert campaign.phone_number_id == "106540352242922"
        assert (campaign.quiet_hours_start, campaign.quiet_hours_end) == ("21:00", "09:00")
    assert response.headers["Location"].endswith(f"/campaigns/{campaign.id}/edit")


def test_edit_page_shows_saved_values_and_updates(app, staff_client, make_template, shop):
    template_id = make_template()
    _post(staff_client, "/campaigns/new", _form(template_id))
    with app.app_context():
        campaign_id = db.session.scalar(db.select(Campaign.id))
    html = staff_client.get(f"/campaigns/{campaign_id}/edit").get_data(as_text=True)
    assert 'value="Diwali VIPs"' in html and 'value="there"' in html
    if "campaign_runs.detail" in app.view_functions:  # the dispatch engineer's page, when installed
        assert f'href="/campaigns/{campaign_id}">Review &amp; launch</a>' in html
    response = _post(staff_client, f"/campaigns/{campaign_id}/edit", _form(template_id, name="Renamed"))
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Campaign, campaign_id).name == "Renamed"


def test_only_drafts_can_be_edited(app, staff_client, make_template):
    template_id = make_template()
    with app.app_context():
        campaign = Campaign(name="Running", template_id=template_id, phone_number_id="1", status=CampaignStatus.RUNNING)
        db.session.add(campaign)
        db.session.commit()
        campaign_id = campaign.id
    response = staff_client.get(f"/campaigns/{campaign_id}/edit")
    assert response.status_code == 302
    response = _post(staff_client, f"/campaigns/{campaign_id}/edit", _form(template_id), follow=True)
    assert "Only drafts can be edited" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Campaign, campaign_id).name == "Running"


@pytest.mark.parametrize(("changes", "field_message"), [
    ({"name": ""}, "Give the campaign a name"),
    ({"schedule_kind": "at", "scheduled_at": "2020-01-01T10:00"}, "That time has already passed"),
    ({"schedule_kind": "at", "scheduled_at": "tomorrow"}, "Choose the date and time to send"),
    ({"schedule_kind": "cron", "cron": "every monday"}, "Enter five fields"),
    ({"schedule_kind": "cron", "cron": "61 10 * * *"}, "Enter five fields"),
    ({"schedule_kind": "cron", "cron": "*/5 * * * *"}, "at most once an hour"),
    ({"schedule_kind": "cron", "cron": "0 10 * * 1", "cron_timezone": "Mars/Olympus"}, "Choose a timezone"),
    ({"max_rate": "0"}, "messages per second between"),
    ({"max_rate": "fast"}, "messages per second between"),
    ({"quiet_hours_start": "25:00"}, "quiet-hours times"),
    ({"quiet_hours_end": ""}, "quiet-hours times"),
    ({"rule_key": "spend", "rule_op": "gt", "rule_value": "lots"}, "Enter a number to compare"),
    ({"var-body.2-field": ""}, "Choose the contact field that fills {{2}} in the message"),
])
def test_invalid_fields_are_named_on_the_page_and_nothing_is_saved(app, staff_client, make_template, changes,
                                                                   field_message):
    response = _post(staff_client, "/campaigns/new", _form(make_template(), **changes))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The campaign was not saved" in html
    assert field_message in html.replace("&#34;", '"').replace("&#39;", "'")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Campaign.id))) == 0


def test_choosing_a_template_that_is_not_approved_is_refused(staff_client, make_template):
    paused = make_template("old_offer", status=TemplateStatus.PAUSED)
    response = _post(staff_client, "/campaigns/new", _form(paused))
    assert response.status_code == 422
    assert "is not approved by Meta" in response.get_data(as_text=True)


def test_a_future_time_is_stored_in_utc_from_the_settings_timezone(app, staff_client, make_template):
    local = (datetime.now(ZoneInfo("Asia/Kolkata")) + timedelta(days=2)).replace(hour=10, minute=30, second=0,
                                                                                 microsecond=0)
    _post(staff_client, "/campaigns/new", _form(make_template(), schedule_kind="at",
                                                scheduled_at=local.strftime("%Y-%m-%dT%H:%M")))
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        assert campaign.schedule_kind == "at"
        assert campaign.scheduled_at == local.astimezone(UTC)
        assert campaign.timezone == "Asia/Kolkata"


def test_a_recurring_schedule_keeps_cron_and_timezone(app, staff_client, make_template):
    _post(staff_client, "/campaigns/new", _form(make_template(), schedule_kind="cron", cron="0  10 * * 1",
                                                cron_timezone="Europe/London", max_rate="12.5"))
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        assert (campaign.cron, campaign.timezone, campaign.max_rate) == ("0 10 * * 1", "Europe/London", 12.5)


def test_audience_count_fragment_counts_matching_and_opted_out(staff_client, shop):
    response = staff_client.get("/campaigns/audience-count?audience_mode=filter&tags=vip",
                                headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert "<strong>3</strong> contacts match" in html
    assert "<strong>1</strong> opted out and will be skipped" in html
    assert '<strong class="eligible">2</strong> will receive it' in html


def test_audience_count_fragment_explains_a_bad_rule(staff_client, shop):
    query = {"audience_mode": "filter", "rule_key": "spend", "rule_op": "lt", "rule_value": "x"}
    html = staff_client.get("/campaigns/audience-count", query_string=query).get_data(as_text=True)
    assert "Enter a number to compare “spend” with" in html


def test_preview_fragment_renders_real_contacts_and_counts_empty_values(staff_client, make_template, shop):
    template_id = make_template()
    query = _form(template_id, tags="vip")
    response = staff_client.get("/campaigns/preview", query_string=query)
    html = response.get_data(as_text=True)
    assert "<html" not in html
    assert "To Asha Verma" in html and "To Ravi Kumar" in html
    assert '<mark class="wa-var" title="body.1">Asha Verma</mark>' in html
    assert "your city" in html  # Ravi has no city: the fallback fills it
    assert "Ready to launch" in html
    query["var-body.3-fallback"] = ""
    html = staff_client.get("/campaigns/preview", query_string=query).get_data(as_text=True)
    assert "would get an empty value" in html and "{{3}} in the message (1)." in html
    assert "1 recipient would get an empty value" in html  # the launch check says the same


def test_variables_fragment_follows_the_template_and_guesses_named_fields(staff_client, named_template, shop):
    response = staff_client.get(f"/campaigns/variables?template_id={named_template}")
    html = response.get_data(as_text=True)
    assert response.headers["HX-Trigger-After-Settle"] == "composer-changed"
    assert 'name="var-header.media-text"' in html and 'name="var-body.discount-source"' in html
    assert '<option value="name" selected>' in html  # {{first_name}} is guessed to be the contact's name
    assert "Coupon code for the copy-code button" in html


def test_cost_estimate_uses_the_price_table_and_warns_over_the_tier(app, staff_client, make_template, shop):
    with app.app_context():
        db.session.add_all([Setting(key="price_table", value={"UTILITY": 0.5, "MARKETING": 0.8}),
                            Setting(key="messaging_limit_tier", value="250")])
        db.session.commit()
        template_id = make_template()
        campaign, _ = campaigns.draft_from_form(_form(template_id))
        assert campaigns.estimate(campaign, 2).cost == 1.0
        assert campaigns.estimate(campaign, 251).over_tier and not campaigns.estimate(campaign, 250).over_tier
    html = staff_client.get("/campaigns/preview", query_string=_form(template_id)).get_data(as_text=True)
    assert "₹1.00" in html and "2 × ₹0.5 per utility message" in html


def test_tier_warning_is_shown_when_eligible_recipients_exceed_it(app, staff_client, make_template):
    with app.app_context():
        db.session.add(Setting(key="messaging_limit_tier", value="250"))
        db.session.add_all(Contact(phone=f"+9198{index:08d}", wa_id=f"9198{index:08d}", name=f"C{index}")
                           for index in range(251))
        db.session.commit()
    query = _form(make_template(), audience_mode="all")
    html = staff_client.get("/campaigns/preview", query_string=query).get_data(as_text=True)
    assert "251 recipients is more than your messaging limit of 250 customers a day" in html
    with app.app_context():
        db.session.execute(db.delete(Contact).where(Contact.name == "C0"))
        db.session.commit()
    html = staff_client.get("/campaigns/preview", query_string=query).get_data(as_text=True)
    assert "more than your messaging limit" not in html


def test_campaign_list_shows_drafts_with_their_audience(app, staff_client, make_template, shop):
    _post(staff_client, "/campaigns/new", _form(make_template(), exclude_tags="delhi"))
    html = staff_client.get("/campaigns/").get_data(as_text=True)
    assert "Diwali VIPs" in html and "Draft" in html and "Tagged VIP · not tagged Delhi" in html


def test_posting_without_a_csrf_token_is_rejected(app, staff_client, make_template):
    response = staff_client.post("/campaigns/new", data=_form(make_template()))
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Campaign.id))) == 0


def test_save_draft_refuses_non_drafts_in_the_service(app, make_template):
    with app.test_request_context():
        campaign = Campaign(name="Done", phone_number_id="1", status=CampaignStatus.COMPLETED)
        db.session.add(campaign)
        db.session.commit()
        with pytest.raises(ServiceError, match="Only drafts"):
            campaigns.save_draft(campaign.id, _form(make_template()), None)
