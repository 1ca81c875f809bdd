"""Keyword auto-replies: the admin rules page, and when rules fire (and, above all, when they must not)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AutoReplyFiring, AutoReplyRule, MessageTemplate, TemplateStatus
from app.services.inbox import auto_replies
from tests.factories import webhooks as support
from tests.factories.inbox import ASHA, RAVI, now_seconds, post_form, writes
from tests.factories.webhooks import inbound_body, statuses_body, text

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
PRICE_REPLY = "Our price list: https://example.com/prices"


def _rule(app, **fields) -> int:
    values = {"name": "Prices", "match_kind": "keywords", "keywords": ["price", "rate list"], "reply_kind": "text",
              "reply_text": PRICE_REPLY, "cooldown_minutes": 60, "active": True, **fields}
    with app.app_context():
        rule = AutoReplyRule(**values)
        db.session.add(rule)
        db.session.commit()
        return rule.id


def _auto_replies(app, wa_id=ASHA):
    return [m for m in support.messages_of(app, wa_id, direction="out")
            if m.source == "auto_reply"]


def _firings(app) -> int:
    with app.app_context():
        return len(db.session.scalars(select(AutoReplyFiring)).all())


def test_a_keyword_fires_its_reply_once_per_cooldown(hooks):
    _rule(hooks.app)
    writes(hooks, ASHA, "What is the PRICE of the blue kurta?")
    [reply] = _auto_replies(hooks.app)
    assert (reply.status, reply.body, reply.campaign_id) == ("sent", PRICE_REPLY, None)
    [send] = hooks.sends(ASHA)
    assert send["wamid"] == reply.wamid and send["tracker"] == f"m:{reply.id}"

    writes(hooks, ASHA, "and the rate list for kids?")
    assert len(_auto_replies(hooks.app)) == 1  # cooling down for this customer
    writes(hooks, RAVI, "price?", name="Ravi")
    assert len(_auto_replies(hooks.app, RAVI)) == 1  # the cooldown is per customer
    assert _firings(hooks.app) == 2


@pytest.mark.parametrize("said", ["priceless", "surprise", "rate"])
def test_keywords_match_whole_words_only(hooks, said):
    _rule(hooks.app)
    writes(hooks, ASHA, said)
    assert _auto_replies(hooks.app) == []


def test_a_regex_rule(hooks):
    _rule(hooks.app, match_kind="regex", keywords=[], pattern=r"^(hi|hello)\b", reply_text="Hello! How can we help?")
    writes(hooks, ASHA, "Hello there")
    writes(hooks, RAVI, "well hello", name="Ravi")
    assert [m.body for m in _auto_replies(hooks.app)] == ["Hello! How can we help?"]
    assert _auto_replies(hooks.app, RAVI) == []


def test_a_catastrophic_pattern_answers_at_once():
    rule = AutoReplyRule(match_kind="regex", pattern="^(a+)+$")
    started = time.monotonic()
    # On a backtracking engine this took seconds, doubling with each extra "a".
    assert not auto_replies.matches(rule, "a" * 26 + "!")
    assert auto_replies.matches(rule, "A" * 26)  # still ignoring case
    assert time.monotonic() - started < 0.5


def test_a_saved_pattern_the_engine_refuses_is_not_run_and_the_rules_page_says_so(hooks, admin_client):
    rule_id = _rule(hooks.app, name="Old lookbehind", match_kind="regex", keywords=[], pattern=r"(?<!no )price")
    writes(hooks, ASHA, "price please")
    assert _auto_replies(hooks.app) == []
    html = admin_client.get("/admin/auto-replies/").get_data(as_text=True)
    assert "1 rule is not running" in html
    row = html[html.index(f'data-rule-id="{rule_id}"'):]
    row = row[:row.index("</tr>")]
    assert "not running" in row and "cannot compile it: invalid perl operator: (?&lt;!" in row
    with hooks.app.app_context():
        assert db.session.get(AutoReplyRule, rule_id).active  # kept as the admin left it, only not run


def test_a_template_reply_fills_its_variables(hooks):
    with hooks.app.app_context():
        template = MessageTemplate(name="order_update", language="en_US", category="UTILITY",
                                   status=TemplateStatus.APPROVED,
                                   components=[{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."}])
        db.session.add(template)
        db.session.commit()
        template_id = template.id
    _rule(hooks.app, reply_kind="template", reply_text=None, template_id=template_id,
          template_variables={"body.1": {"source": "name", "value": "", "fallback": "there"},
                              "body.2": {"source": "literal", "value": "#1042"}})
    writes(hooks, ASHA, "price")
    [reply] = _auto_replies(hooks.app)
    assert reply.message_type == "template" and reply.body == "Hi Asha Rao, your order #1042 is on its way."
    assert reply.status == "sent"


def test_never_on_opt_out_words_where_opt_out_handling_answers(hooks):
    _rule(hooks.app, match_kind="regex", keywords=[], pattern=".*", reply_text="Thanks for your message!")
    writes(hooks, ASHA, "STOP")
    assert _auto_replies(hooks.app) == []
    [confirmation] = support.messages_of(hooks.app, ASHA, direction="out")
    assert confirmation.source == "opt_out_confirmation"
    writes(hooks, ASHA, "price?")  # opted out: no automatic messages either
    assert _auto_replies(hooks.app) == []


def test_never_on_system_or_unsupported_messages_or_statuses(hooks):
    _rule(hooks.app, match_kind="regex", keywords=[], pattern=".*", reply_text="Thanks!")
    writes(hooks, ASHA, "", kind="system", system={"body": "price changed number", "type": "user_changed_number"})
    writes(hooks, ASHA, "", kind="unsupported", errors=[{"code": 131051, "title": "Message type unknown"}])
    hooks.deliver(statuses_body(support.status(support.new_wamid(), "delivered", recipient=ASHA)))
    assert _auto_replies(hooks.app) == [] and hooks.sends(ASHA) == []


def test_never_on_old_messages_delivered_late(hooks):
    _rule(hooks.app)
    writes(hooks, ASHA, "price", ago_hours=30)
    assert _auto_replies(hooks.app) == []


def test_loop_guard_an_echo_of_our_own_reply_is_not_answered(hooks):
    _rule(hooks.app, match_kind="regex", keywords=[], pattern="price", reply_text="Send 'price' for our prices",
          cooldown_minutes=0)
    writes(hooks, ASHA, "Send 'price' for our prices")  # the other side is a bot repeating us
    assert _auto_replies(hooks.app) == []


def test_loop_guard_at_most_a_few_auto_replies_per_hour(hooks):
    _rule(hooks.app, match_kind="regex", keywords=[], pattern=".", reply_text="Got it.", cooldown_minutes=0)
    for n in range(6):
        writes(hooks, ASHA, f"message {n}")
    assert len(_auto_replies(hooks.app)) == auto_replies.MAX_PER_HOUR


def test_one_reply_per_customer_per_webhook_and_inactive_rules_never_fire(hooks):
    _rule(hooks.app, cooldown_minutes=0)
    _rule(hooks.app, name="Off", keywords=["hello"], reply_text="Nope", active=False)
    now = now_seconds()
    hooks.deliver(inbound_body(text(ASHA, "price", seconds=now), text(ASHA, "price again", seconds=now + 1)))
    writes(hooks, ASHA, "hello")
    assert [m.body for m in _auto_replies(hooks.app)] == [PRICE_REPLY]


# --- the rules page ------------------------------------------------------------------------------------------

def test_staff_cannot_manage_rules(staff_client):
    assert staff_client.get("/admin/auto-replies/").status_code == 403


def test_admin_creates_edits_and_deletes_a_rule(app, admin_client):
    page = "/admin/auto-replies/"
    response = post_form(admin_client, page, page, name="Opening hours", match_kind="keywords",
                         keywords="hours, open today", reply_kind="text", reply_text="We are open 10–7.",
                         cooldown_minutes="30", position="1", active="on")
    assert response.status_code == 302
    html = admin_client.get(page).get_data(as_text=True)
    assert "Opening hours" in html and "hours, open today" in html
    with app.app_context():
        rule = db.session.scalars(select(AutoReplyRule)).one()
        assert (rule.keywords, rule.cooldown_minutes, rule.active) == (["hours", "open today"], 30, True)
        rule_id = rule.id
    post_form(admin_client, page, f"{page}{rule_id}", name="Hours", match_kind="keywords", keywords="hours",
              reply_kind="text", reply_text="10–7", cooldown_minutes="5", position="0")
    with app.app_context():
        rule = db.session.get(AutoReplyRule, rule_id)
        assert (rule.name, rule.active) == ("Hours", False)
    post_form(admin_client, page, f"{page}{rule_id}/delete")
    with app.app_context():
        assert db.session.scalars(select(AutoReplyRule)).all() == []


@pytest.mark.parametrize(("fields", "error"), [
    ({"match_kind": "regex", "pattern": "(unclosed"}, "not a valid regular expression"),
    ({"match_kind": "regex", "pattern": r"(ha)\1"}, "Backreferences such as \\1"),
    ({"match_kind": "regex", "pattern": r"price(?!less)"}, "cannot compile it: invalid perl operator: (?!"),
    ({"keywords": "stop, price"}, "stop is an opt-out/opt-in word"),
    ({"keywords": ""}, "at least one keyword"),
    ({"reply_text": ""}, "Write the reply"),
    ({"reply_kind": "template", "template_id": ""}, "Choose an approved template"),
])
def test_rule_form_errors_are_shown_and_nothing_is_saved(app, admin_client, fields, error):
    data = {"name": "Rule", "match_kind": "keywords", "keywords": "price", "reply_kind": "text",
            "reply_text": "Hi", "cooldown_minutes": "60", "position": "0", **fields}
    response = post_form(admin_client, "/admin/auto-replies/", "/admin/auto-replies/", **data)
    assert response.status_code == 422
    assert error in response.get_data(as_text=True).replace("&#39;", "'")
    with app.app_context():
        assert db.session.scalars(select(AutoReplyRule)).all() == []


def test_a_template_rule_saves_its_variables_and_shows_them_again(app, admin_client):
    with app.app_context():
        template = MessageTemplate(name="order_update", language="en_US", category="UTILITY",
                                   status=TemplateStatus.APPROVED,
                                   components=[{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way."}])
        db.session.add(template)
        db.session.commit()
        template_id = template.id
    page = "/admin/auto-replies/"
    fields = {"name": "Orders", "match_kind": "keywords", "keywords": "order", "reply_kind": "template",
              "template_id": str(template_id), "var-body.1-text": "{name}", "var-body.2-text": "#1042",
              "cooldown_minutes": "60", "position": "0"}
    refused = post_form(admin_client, page, page, **{**fields, "keywords": ""})
    assert refused.status_code == 422
    assert 'name="var-body.2-text" value="#1042"' in refused.get_data(as_text=True)  # what was typed stays
    assert post_form(admin_client, page, page, **fields).status_code == 302
    with app.app_context():
        rule = db.session.scalars(select(AutoReplyRule)).one()
        assert rule.template_variables == {"body.1": {"source": "name", "value": "", "fallback": "there"},
                                           "body.2": {"source": "literal", "value": "#1042", "fallback": ""}}
        rule_id = rule.id
    assert 'name="var-body.1-text" value="{name}"' in admin_client.get(f"{page}{rule_id}").get_data(as_text=True)
