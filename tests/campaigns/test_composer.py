"""The campaign composer: pages, live fragments, saving drafts, validation, cost estimate, CSRF."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from werkzeug.datastructures import MultiDict

from app.blueprints.campaign_forms import read_composer
from app.extensions import db
from app.models import AuditEntry, Campaign, CampaignStatus, Contact, Message, Setting, TemplateStatus
from app.services.campaigns import drafts as campaigns
from app.services.errors import ServiceError
from tests.conftest import csrf_token_from
from tests.factories import campaigns as support

pytest_plugins = ["tests.factories.composer"]


@pytest.fixture
def staff_client(quick_staff_client):
    """A signed-in staff member without scrypt's second per user (see tests/factories/composer.py)."""
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
    assert "campaigns.css" in html.split("</head>")[0]  # the page's stylesheet loads with the layout's


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


def test_a_field_typed_in_another_case_is_saved_as_contacts_spell_it(app, staff_client, make_template, make_contact):
    make_contact("+919876543210", "Asha Verma", tags=["VIP"], attributes={"City": "Pune", "order": "A1"})  # imported
    template_id = make_template()
    response = _post(staff_client, "/campaigns/new", _form(template_id, **{"var-body.3-field": "city"},
                                                             rule_key="CITY", rule_op="equals", rule_value="Pune"))
    assert response.status_code == 302
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        assert campaign.variables["body.3"]["value"] == "City"
        assert campaign.audience["attributes"] == [{"key": "City", "op": "equals", "value": "Pune"}]
    preview = staff_client.get("/campaigns/preview", query_string=_form(template_id, **{"var-body.3-field": "city"}))
    assert "Pune" in preview.get_data(as_text=True) and "your city" not in preview.get_data(as_text=True)


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
    ({"schedule_kind": "cron", "cron": "0 10 * * 1", "timezone": "Mars/Olympus"}, "Choose a timezone"),
    ({"schedule_kind": "at", "scheduled_at": "2030-01-01T10:00", "timezone": "Mars/Olympus"}, "Choose a timezone"),
    ({"schedule_kind": "cron", "repeat": "daily", "repeat_time": "7pm"}, "Give the time to send as HH:MM"),
    ({"schedule_kind": "cron", "repeat": "weekly", "repeat_time": "10:00", "repeat_weekday": "8"},
     "Choose the day of the week"),
    ({"schedule_kind": "cron", "cron": "0 10 * * *", "ends_on": "2020-01-01"}, "That end date has already passed"),
    ({"schedule_kind": "cron", "cron": "0 10 * * *", "ends_on": "someday"}, "Choose the last day as a date"),
    ({"max_rate": "0"}, "messages per second between 0.1 and 80"),
    ({"max_rate": "fast"}, "messages per second between 0.1 and 80"),
    ({"max_rate": "81"}, "between 0.1 and 80 (your number's sending rate)"),
    ({"quiet_hours_start": "25:00"}, "quiet-hours times"),
    ({"quiet_hours_end": ""}, "quiet-hours times"),
    ({"quiet_hours_start": "09:00", "quiet_hours_end": "09:00"}, "cannot start and end at the same time"),
    ({"quiet_hours_start": "09:30", "quiet_hours_end": "09:00"}, "less than an hour a day for sending"),
    ({"quiet_hours_start": "00:00", "quiet_hours_end": "23:30"}, "less than an hour a day for sending"),
    ({"template_id": "99999"}, "That template no longer exists"),
    ({"rule_key": "spend", "rule_op": "gt", "rule_value": "lots"}, "Enter a number to compare"),
    ({"var-body.2-field": ""}, "Choose the contact field that fills {{2}} in the message"),
])
def test_invalid_fields_are_named_on_the_page_and_nothing_is_saved(app, staff_client, make_template, changes,
                                                                   field_message):
    response = _post(staff_client, "/campaigns/new", MultiDict({**_form(make_template()), **changes}))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The campaign was not saved" in html
    assert field_message in html.replace("&#34;", '"').replace("&#39;", "'")
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(Campaign.id))) == 0


def test_a_variable_problem_is_shown_in_that_variables_row(staff_client, make_template):
    response = _post(staff_client, "/campaigns/new", MultiDict({**_form(make_template()), "var-body.2-field": ""}))
    html = response.get_data(as_text=True)
    row = html[html.index('name="var-body.2-source"'):html.index('name="var-body.3-source"')]
    assert "Choose the contact field that fills" in row and html.count("field-error") == 1


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
                                                timezone="Europe/London", max_rate="12.5"))
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
        campaign, _ = campaigns.draft_campaign(read_composer(_form(template_id)))
        assert campaigns.estimate(campaign, 2).cost == 1.0
        assert campaigns.estimate(campaign, 251).over_tier and not campaigns.estimate(campaign, 250).over_tier
    html = staff_client.get("/campaigns/preview", query_string=_form(template_id)).get_data(as_text=True)
    assert "₹1.00" in html and "2 × ₹0.5 per utility message" in html


def test_limit_warning_counts_what_is_left_of_the_24_hour_limit(app, staff_client, make_template):
    """Tier 250 with 100 customers messaged today leaves 150; customers messaged today do not count again."""
    now = datetime.now(UTC)
    with app.app_context():
        db.session.add(Setting(key="messaging_limit_tier", value="250"))
        contacts = [Contact(phone=f"+9198{index:08d}", wa_id=f"9198{index:08d}", name=f"C{index}",
                            attributes={"group": "a" if index < 200 else "b"}) for index in range(300)]
        db.session.add_all(contacts)
        db.session.flush()
        recent = [Message(contact_id=contact.id, direction="out", message_type="template", status="sent",
                          sent_at=now - timedelta(hours=2)) for contact in contacts[:100]]
        not_counted = [Message(contact_id=contacts[250].id, direction="out", message_type="template", status="sent",
                               sent_at=now - timedelta(hours=30)),  # older than 24 hours
                       Message(contact_id=contacts[251].id, direction="in", message_type="text", status="received"),
                       Message(contact_id=contacts[252].id, direction="out", message_type="text", status="sent",
                               sent_at=now - timedelta(hours=1))]  # a reply inside the service window
        db.session.add_all(recent + not_counted)
        db.session.commit()
    query = _form(make_template(), audience_mode="all")
    html = staff_client.get("/campaigns/preview", query_string=query).get_data(as_text=True)
    assert ("200 of these recipients would start a new conversation today, but your number can reach only\n"
            "  150 more customers in the next 24 hours\n  (limit 250, 100 already messaged") in html
    # 200 recipients, but 100 of them were messaged today already: 100 new ones fit in the 150 left.
    query = _form(make_template("other"), audience_mode="filter", tags="", rule_key="group", rule_op="equals",
                  rule_value="a")
    html = staff_client.get("/campaigns/preview", query_string=query).get_data(as_text=True)
    assert 'id="eligible-count">200<' in html and "new conversation today" not in html


def test_duration_line_uses_the_slower_of_the_campaign_and_sender_rates(app, staff_client, make_template):
    app.config["SEND_RATE_PER_SECOND"] = 20
    with app.app_context():
        db.session.add_all(Contact(phone=f"+9198{index:08d}", wa_id=f"9198{index:08d}", name=f"C{index}")
                           for index in range(240))
        db.session.commit()
    template_id = make_template()
    html = staff_client.get("/campaigns/preview", query_string=_form(template_id, audience_mode="all",
                                                                      quiet_hours_start="")).get_data(as_text=True)
    assert "Sending takes <strong>under a minute</strong> at 20 messages a second." in html  # 240 / 20 = 12 s
    html = staff_client.get("/campaigns/preview", query_string=_form(template_id, audience_mode="all",
                                                                      max_rate="0.5")).get_data(as_text=True)
    assert ("Sending takes <strong>about 8 min</strong> at 0.5 messages a second, longer if it runs into quiet "
            "hours.") in html  # 240 / 0.5 = 480 s
    assert "No messages between 21:00 and 09:00 in each recipient's local time." in html


def test_the_rate_ceiling_comes_from_the_senders_configured_rate(app, staff_client, make_template):
    app.config["SEND_RATE_PER_SECOND"] = 20
    response = _post(staff_client, "/campaigns/new", _form(make_template(), max_rate="25"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "between 0.1 and 20 (your number" in html and 'max="20.0"' in html
    assert "up to 20 (your number" in html
    assert _post(staff_client, "/campaigns/new", _form(make_template("second"), max_rate="20")).status_code == 302


def test_an_empty_audience_is_explained_next_to_the_rules(staff_client, shop):
    query = {"audience_mode": "filter", "rule_key": "city", "rule_op": "equals", "rule_value": "Atlantis"}
    html = staff_client.get("/campaigns/audience-count", query_string=query).get_data(as_text=True)
    assert "No contacts match this audience: a campaign needs at least one recipient." in html


def test_an_unmapped_variable_blocks_launching_in_the_preview(staff_client, make_template, shop):
    query = _form(make_template())
    del query["var-body.2-source"]
    html = staff_client.get("/campaigns/preview", query_string=query).get_data(as_text=True)
    assert "Choose what fills {{2}} in the message." in html and "Ready to launch" not in html


def test_preview_offers_a_share_link_with_the_first_recipients_text(staff_client, make_template, shop):
    html = staff_client.get("/campaigns/preview", query_string=_form(make_template())).get_data(as_text=True)
    text = "Order A1\nHi Asha Verma, your order A1 ships to Pune today.\nThank you for shopping with us"
    link = "https://wa.me/?text=" + quote(text, safe="")
    assert f'href="{link}" target="_blank" rel="noopener noreferrer"' in html


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


@pytest.mark.parametrize(("changes", "cron", "shown"), [
    ({"repeat": "daily", "repeat_time": "09:30"}, "30 9 * * *", 'value="daily" checked'),
    ({"repeat": "weekly", "repeat_time": "18:05", "repeat_weekday": "0"}, "5 18 * * 0", 'value="weekly" checked'),
    ({"repeat": "cron", "cron": "0 10 1 * *"}, "0 10 1 * *", 'value="cron" checked'),
])
def test_repeat_shortcuts_are_stored_as_cron_and_shown_again(app, staff_client, make_template, changes, cron, shown):
    _post(staff_client, "/campaigns/new", _form(make_template(), schedule_kind="cron", **changes))
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        assert (campaign.schedule_kind, campaign.cron) == ("cron", cron)
    html = staff_client.get(f"/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert shown in html
    if changes["repeat"] == "weekly":
        assert '<option value="0" selected>Sunday</option>' in html and 'value="18:05"' in html
        assert "Weekly on Sunday at 18:05" in staff_client.get("/campaigns/").get_data(as_text=True)


def test_an_end_date_is_the_end_of_that_day_in_the_campaigns_timezone(app, staff_client, make_template):
    last_day = (datetime.now(ZoneInfo("Europe/London")) + timedelta(days=10)).date()
    _post(staff_client, "/campaigns/new", _form(make_template(), schedule_kind="cron", repeat="daily",
                                                repeat_time="10:00", timezone="Europe/London",
                                                ends_on=last_day.isoformat()))
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        expected = datetime.combine(last_day, datetime.min.time().replace(hour=23, minute=59),
                                    ZoneInfo("Europe/London")).astimezone(UTC)
        assert campaign.ends_at == expected
    html = staff_client.get(f"/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert f'value="{last_day.isoformat()}"' in html


def test_an_end_date_before_the_first_run_is_refused(staff_client, make_template):
    tomorrow = (datetime.now(ZoneInfo("Asia/Kolkata")) + timedelta(days=1)).date()
    first_of_next_month = (tomorrow.replace(day=1) + timedelta(days=32)).replace(day=1)
    response = _post(staff_client, "/campaigns/new", _form(make_template(), schedule_kind="cron", cron="0 10 1 * *",
                                                           ends_on=tomorrow.isoformat()))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert f"The first run is on {first_of_next_month:%d %b %Y} at 10:00, after this end date" in html


def test_a_one_off_time_is_read_in_the_chosen_timezone(app, staff_client, make_template):
    local = (datetime.now(ZoneInfo("America/New_York")) + timedelta(days=3)).replace(hour=8, minute=0, second=0,
                                                                                     microsecond=0)
    _post(staff_client, "/campaigns/new", _form(make_template(), schedule_kind="at", timezone="America/New_York",
                                                scheduled_at=local.strftime("%Y-%m-%dT%H:%M")))
    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign)).one()
        assert (campaign.scheduled_at, campaign.timezone) == (local.astimezone(UTC), "America/New_York")
    html = staff_client.get(f"/campaigns/{campaign.id}/edit").get_data(as_text=True)
    assert f"Sends on <strong>{local:%d %b %Y}, 08:00</strong> (America/New_York)." in html
    assert '<option value="America/New_York" selected>' in html


def _campaign_id(app, name: str) -> int:
    with app.app_context():
        return db.session.scalar(db.select(Campaign.id).where(Campaign.name == name))


def test_duplicate_copies_content_and_settings_but_not_history(app, staff_client, make_template, shop):
    template_id = make_template()
    _post(staff_client, "/campaigns/new", _form(template_id, schedule_kind="cron", repeat="weekly", repeat_time="10:00",
                                                max_rate="5", rule_key="city", rule_op="equals", rule_value="Pune"))
    source_id = _campaign_id(app, "Diwali VIPs")
    with app.app_context():  # as if it had run: counters and status must not be copied
        ran = db.session.get(Campaign, source_id)
        ran.status, ran.targeted, ran.sent = CampaignStatus.COMPLETED, 9, 9
        db.session.commit()
    response = _post(staff_client, f"/campaigns/{source_id}/duplicate", MultiDict())
    copy_id = _campaign_id(app, "Copy of Diwali VIPs")
    assert response.headers["Location"].endswith(f"/campaigns/{copy_id}/edit")
    with app.app_context():
        source, copy = db.session.get(Campaign, source_id), db.session.get(Campaign, copy_id)
        for name in campaigns.DUPLICATED:
            assert getattr(copy, name) == getattr(source, name), name
        assert (copy.status, copy.targeted, copy.sent, copy.started_at) == (CampaignStatus.DRAFT, 0, 0, None)
        entry = db.session.scalar(db.select(AuditEntry).where(AuditEntry.action == "campaign.duplicate"))
        assert entry.target == f"campaign:{copy_id}" and "Copied campaign “Diwali VIPs”" in entry.summary
    html = staff_client.get(f"/campaigns/{copy_id}/edit").get_data(as_text=True)
    assert "Copied into the new draft “Copy of Diwali VIPs”" in html and 'value="Pune"' in html


def test_delete_removes_a_draft_after_the_confirm_dialog(app, staff_client, make_template):
    _post(staff_client, "/campaigns/new", _form(make_template()))
    campaign_id = _campaign_id(app, "Diwali VIPs")
    html = staff_client.get("/campaigns/").get_data(as_text=True)
    assert 'hx-confirm="Delete the draft “Diwali VIPs”? This cannot be undone."' in html
    token = csrf_token_from(html)
    response = staff_client.post(f"/campaigns/{campaign_id}/delete", data={"csrf_token": token},
                                 headers={"HX-Request": "true"})
    assert (response.status_code, response.headers["HX-Redirect"]) == (204, "/campaigns/")
    assert "Deleted the draft “Diwali VIPs”." in staff_client.get("/campaigns/").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Campaign, campaign_id) is None
        assert db.session.scalar(db.select(AuditEntry.summary).where(AuditEntry.action == "campaign.delete")) == \
            "Deleted campaign draft “Diwali VIPs”"


def test_only_drafts_can_be_deleted(app, staff_client, make_template):
    with app.app_context():
        campaign = Campaign(name="Sent", template_id=make_template(), phone_number_id="1",
                            status=CampaignStatus.COMPLETED)
        db.session.add(campaign)
        db.session.commit()
        campaign_id = campaign.id
    html = staff_client.get("/campaigns/").get_data(as_text=True)
    assert f"/campaigns/{campaign_id}/delete" not in html and f"/campaigns/{campaign_id}/duplicate" in html
    response = _post(staff_client, f"/campaigns/{campaign_id}/delete", MultiDict(), follow=True)
    assert "Only drafts can be deleted; a completed campaign is kept as history." in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Campaign, campaign_id) is not None


def test_deleting_without_a_csrf_token_is_rejected(app, staff_client, make_template):
    _post(staff_client, "/campaigns/new", _form(make_template()))
    campaign_id = _campaign_id(app, "Diwali VIPs")
    assert staff_client.post(f"/campaigns/{campaign_id}/delete").status_code == 400
    assert _campaign_id(app, "Diwali VIPs") == campaign_id


sim, sim_process_wide = support.sim, support.sim_process_wide  # fixtures


def _sender_line(html: str) -> str:
    return " ".join(re.search(r'<p class="sender" id="sender-number">(.*?)</p>', html, re.S).group(1).split())


def test_the_composer_names_the_sending_number_as_whatsapp_shows_it(app, sim, staff_client):
    app.config["WHATSAPP_PHONE_NUMBER_ID"] = support.PHONE_NUMBER_ID  # the simulator's, not the sender fixture's
    html = staff_client.get("/campaigns/new").get_data(as_text=True)
    assert _sender_line(html) == "Sent from <strong>+1 555-078-3881</strong> (Broadcaster Demo)"
    sim.configure(verified_name="Renamed")  # kept for a day: pages do not ask WhatsApp each time
    assert "(Broadcaster Demo)" in _sender_line(staff_client.get("/campaigns/new").get_data(as_text=True))


def test_the_composer_falls_back_to_the_id_when_whatsapp_cannot_be_reached(app, staff_client):
    app.config.update(WHATSAPP_API_BASE_URL=f"http://127.0.0.1:{_closed_port()}", WHATSAPP_ACCESS_TOKEN="token")
    html = staff_client.get("/campaigns/new").get_data(as_text=True)
    assert _sender_line(html) == 'Sent from WhatsApp number id <span class="mono">106540352242922</span>'


def test_the_composer_says_when_no_number_is_configured(app, staff_client):
    app.config["WHATSAPP_PHONE_NUMBER_ID"] = None
    html = staff_client.get("/campaigns/new").get_data(as_text=True)
    assert _sender_line(html) == "Sent from: no WhatsApp number is configured"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
