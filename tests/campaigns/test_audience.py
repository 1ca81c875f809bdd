"""Audience rules: tags any/all/exclude, attribute conditions, opted-out and deleted contacts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.blueprints.campaign_forms import read_audience
from app.extensions import db
from app.models import Contact
from app.services.campaigns import audience
from app.services.errors import ServiceError

OPTED_OUT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def people(make_contact):
    return {
        "asha": make_contact("+919800000001", "Asha", tags=["VIP", "Mumbai"],
                             attributes={"city": "Mumbai", "spend": "1500", "plan": "Gold"}),
        "ravi": make_contact("+919800000002", "Ravi", tags=["VIP"], attributes={"city": "Pune", "spend": "250.5"}),
        "sita": make_contact("+919800000003", "Sita", tags=["Mumbai"], attributes={"city": " ", "spend": "n/a"}),
        "dev": make_contact("+919800000004", "Dev", tags=[], attributes={"spend": "-20"}),
        "opted": make_contact("+919800000005", "Opted", tags=["VIP"], attributes={"city": "Mumbai"},
                              opted_out_at=OPTED_OUT),
        "deleted": make_contact("+919800000006", "Deleted", tags=["VIP"], attributes={"city": "Mumbai"},
                                deleted_at=OPTED_OUT),
    }


def _names(app, rules) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(select(Contact.name).where(audience.condition(rules))))


@pytest.mark.parametrize(("rules", "expected"), [
    ({}, {"Asha", "Ravi", "Sita", "Dev", "Opted"}),
    ({"tags_any": ["vip", "mumbai"]}, {"Asha", "Ravi", "Sita", "Opted"}),
    ({"tags_any": ["VIP"]}, {"Asha", "Ravi", "Opted"}),  # tag keys are case-insensitive
    ({"tags_all": ["vip", "mumbai"]}, {"Asha"}),
    ({"tags_all": ["vip", "no such tag"]}, set()),
    ({"exclude_tags": ["vip"]}, {"Sita", "Dev"}),
    ({"tags_any": ["mumbai"], "exclude_tags": ["vip"]}, {"Sita"}),
    ({"attributes": [{"key": "city", "op": "equals", "value": "mumbai"}]}, {"Asha", "Opted"}),
    ({"attributes": [{"key": "city", "op": "contains", "value": "UN"}]}, {"Ravi"}),
    ({"attributes": [{"key": "city", "op": "empty", "value": ""}]}, {"Sita", "Dev"}),
    ({"attributes": [{"key": "city", "op": "not_empty", "value": ""}]}, {"Asha", "Ravi", "Opted"}),
    ({"attributes": [{"key": "spend", "op": "gt", "value": "250"}]}, {"Asha", "Ravi"}),
    ({"attributes": [{"key": "spend", "op": "lt", "value": "300"}]}, {"Ravi", "Dev"}),  # "n/a" is not a number
    ({"attributes": [{"key": "spend", "op": "lt", "value": "0"}]}, {"Dev"}),
    ({"attributes": [{"key": "plan", "op": "equals", "value": "gold"},
                     {"key": "spend", "op": "gt", "value": "1000"}]}, {"Asha"}),
])
def test_condition_selects_matching_contacts_but_never_deleted_ones(app, people, rules, expected):
    assert _names(app, rules) == expected


def test_summary_counts_opted_out_contacts_as_skipped(app, people):
    with app.app_context():
        summary = audience.summary({"tags_any": ["vip"]})
    assert (summary.matching, summary.opted_out, summary.eligible) == (3, 1, 2)


def test_sample_returns_only_eligible_contacts(app, people):
    with app.app_context():
        assert [contact.name for contact in audience.sample({"tags_any": ["vip"]}, limit=5)] == ["Asha", "Ravi"]


def test_attribute_keys_with_spaces_dots_and_apostrophes_work(app, make_contact):
    make_contact("+919800000001", "Asha", attributes={"favourite shop": "Main Street", "v1.2": "yes", "o'clock": "9"})
    rules = {"attributes": [{"key": "favourite shop", "op": "contains", "value": "main"},
                            {"key": "v1.2", "op": "equals", "value": "YES"},
                            {"key": "o'clock", "op": "gt", "value": "8"}]}
    assert _names(app, rules) == {"Asha"}


def test_form_becomes_the_documented_shape(app):
    form = MultiDict([("audience_mode", "filter"), ("tags_match", "all"), ("tags", "VIP"), ("tags", "mumbai"),
                      ("exclude_tags", "Delhi"), ("rule_key", " city "), ("rule_op", "equals"), ("rule_value", "Pune"),
                      ("rule_key", "spend"), ("rule_op", "gt"), ("rule_value", "100"),
                      ("rule_key", ""), ("rule_op", "equals"), ("rule_value", ""),
                      ("rule_key", "notes"), ("rule_op", "empty"), ("rule_value", "ignored")])
    with app.app_context():  # field names are matched to how contacts spell them
        assert audience.build(read_audience(form)) == {
            "tags_all": ["vip", "mumbai"], "exclude_tags": ["delhi"],
            "attributes": [{"key": "city", "op": "equals", "value": "Pune"},
                           {"key": "spend", "op": "gt", "value": "100"}, {"key": "notes", "op": "empty", "value": ""}]}
        assert audience.build(read_audience(MultiDict({"audience_mode": "all", "tags": "vip"}))) == {}


@pytest.mark.parametrize(("op", "value", "message"), [
    ("gt", "ten", "Enter a number"),
    ("equals", "", "Enter a value"),
    ("between", "1", "Choose a condition"),
])
def test_bad_rules_name_the_field(app, op, value, message):
    form = MultiDict({"audience_mode": "filter", "rule_key": "spend", "rule_op": op, "rule_value": value})
    with app.app_context(), pytest.raises(ServiceError, match=message):
        audience.build(read_audience(form))


def test_describe_reads_like_a_sentence():
    rules = {"tags_any": ["vip", "mumbai"], "exclude_tags": ["delhi"],
             "attributes": [{"key": "spend", "op": "gt", "value": "100"}]}
    assert audience.describe(rules, {"vip": "VIP", "mumbai": "Mumbai", "delhi": "Delhi"}) == \
        "Tagged VIP or Mumbai · not tagged Delhi · spend is more than 100"
    assert audience.describe({}) == "All contacts"
