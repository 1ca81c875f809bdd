"""Keyword auto-replies: admin-defined rules answering customers' messages, and the inbound hook that runs them.

`on_inbound` is called once per webhook event, inside its transaction, after opt-out handling. It never answers:
statuses (they never reach it), messages a person did not type (system, unsupported, reactions …), opt-out or
opt-in words (opt-out handling wins), opted-out or deleted contacts, stale messages delivered late, or anything
that looks like a loop (the customer's side echoing one of our auto-replies, or more than MAX_PER_HOUR auto-replies
to one contact in an hour). A rule fires at most once per contact per cooldown; the first matching rule wins.

Admins edit rules through `save_rule`, which checks a `RuleInput` (the rules page's fields, read by its blueprint).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from app.clock import utcnow
from app.extensions import db
from app.models import AutoReplyFiring, AutoReplyRule
from app.services.admin import audit
from app.services.errors import NotFound, ServiceError
from app.services.inbox import conversations as inbox
from app.services.inbox import patterns
from app.services.inbox import replies as inbox_replies
from app.services.templates import rendering
from app.services.webhooks import opt_out
from app.services.webhooks.inbound import StoredMessage

MAX_PER_HOUR = 3
ANSWERED_TYPES = frozenset({"text", "button", "interactive"})
MAX_MATCHED_TEXT = 1000  # regexes only ever see this much (RE2's time grows with the text)
TOKENS = {"{name}": "name", "{phone}": "phone"}


def on_inbound(stored: list[StoredMessage], now: datetime | None = None) -> int:
    """The inbound hook: update the conversations, then queue any auto-replies; returns how many were queued."""
    if not stored:  # most events carry only statuses: no query at all for them
        return 0
    now = now or utcnow()
    inbox.record_inbound(stored, now)
    rules = active_rules()
    if not rules:
        return 0
    keywords, answered = opt_out.Keywords.from_settings(), set()
    for item in stored:
        if item.contact.id in answered or not _answerable(item, rules, keywords, now):
            continue
        rule = _first_match(rules, item, now)
        if rule is not None and _fire(rule, item, now):
            answered.add(item.contact.id)
    return len(answered)  # the caller queues the direct lane for them after its commit


def _answerable(item: StoredMessage, rules: list[AutoReplyRule], keywords: opt_out.Keywords, now: datetime) -> bool:
    event_, contact = item.event, item.contact
    if event_.type not in ANSWERED_TYPES or not event_.visible_text or opt_out.intent(event_, keywords):
        return False
    if contact.opted_out or contact.deleted_at is not None:
        return False
    if not inbox.window_for(event_.timestamp or now, now).open:
        return False
    echoes = {opt_out.normalise(rule.reply_text) for rule in rules if rule.reply_text}
    return opt_out.normalise(event_.visible_text) not in echoes and _fired_last_hour(contact.id, now) < MAX_PER_HOUR


def _fired_last_hour(contact_id: int, now: datetime) -> int:
    statement = select(func.count()).select_from(AutoReplyFiring).where(
        AutoReplyFiring.contact_id == contact_id, AutoReplyFiring.fired_at > now - timedelta(hours=1))
    return db.session.scalar(statement) or 0


def _first_match(rules: list[AutoReplyRule], item: StoredMessage, now: datetime) -> AutoReplyRule | None:
    text = (item.event.visible_text or "")[:MAX_MATCHED_TEXT]
    for rule in rules:
        if matches(rule, text) and not _cooling_down(rule, item.contact.id, now):
            return rule
    return None


def matches(rule: AutoReplyRule, text: str) -> bool:
    """Keywords match as whole words or phrases, ignoring case and edge punctuation; a regex searches the text."""
    if rule.match_kind == "regex":
        return bool(rule.pattern) and patterns.search(rule.pattern, text)
    said = opt_out.normalise(text)
    return any(re.search(rf"(?<!\w){re.escape(opt_out.normalise(word))}(?!\w)", said)
               for word in rule.keywords or [] if opt_out.normalise(word))


def _cooling_down(rule: AutoReplyRule, contact_id: int, now: datetime) -> bool:
    since = now - timedelta(minutes=max(rule.cooldown_minutes, 0))
    statement = select(AutoReplyFiring.id).where(AutoReplyFiring.rule_id == rule.id,
                                                 AutoReplyFiring.contact_id == contact_id,
                                                 AutoReplyFiring.fired_at > since).limit(1)
    return db.session.scalar(statement) is not None


def _fire(rule: AutoReplyRule, item: StoredMessage, now: datetime) -> bool:
    if rule.reply_kind == "template":
        if rule.template is None or rule.template.status != "APPROVED":
            return False
        reply = inbox_replies.queue_template(item.contact, rule.template, rule.template_variables or {},
                                             inbox_replies.AUTO_REPLY, now, rule_id=rule.id)
    else:
        reply = inbox_replies.queue_text(item.contact, rule.reply_text or "", inbox_replies.AUTO_REPLY, now,
                                         rule_id=rule.id)
    db.session.add(AutoReplyFiring(rule_id=rule.id, contact_id=item.contact.id, inbound_message_id=item.id,
                                   reply_message_id=reply.id, fired_at=now))
    return True


# --- rules (admin) -------------------------------------------------------------------------------------------

def all_rules() -> list[AutoReplyRule]:
    return list(db.session.scalars(select(AutoReplyRule).order_by(AutoReplyRule.position, AutoReplyRule.id)))


def active_rules() -> list[AutoReplyRule]:
    """Rules switched on, less any saved (before RE2) with a pattern RE2 cannot run; the rules page names those."""
    return [rule for rule in all_rules() if rule.active and rule.id not in unusable_patterns([rule])]


def unusable_patterns(rules: Iterable[AutoReplyRule]) -> dict[int, str]:
    """{rule id: why its pattern cannot run} for regex rules the regex engine refuses."""
    problems = {rule.id: patterns.problem(rule.pattern or "") for rule in rules if rule.match_kind == "regex"}
    return {rule_id: problem for rule_id, problem in problems.items() if problem}


def get_rule(rule_id: int) -> AutoReplyRule:
    rule = db.session.get(AutoReplyRule, rule_id)
    if rule is None:
        raise NotFound("No such auto-reply rule.")
    return rule


@dataclass(frozen=True)
class RuleInput:
    """A rule as an admin typed it. A problem is raised as ServiceError(field=<the attribute's name>)."""

    name: str = ""
    match_kind: str = "keywords"  # "keywords" or "regex"
    keywords: str = ""  # separated by commas or new lines
    pattern: str = ""
    reply_kind: str = "text"  # "text" or "template"
    reply_text: str = ""
    template_id: int | None = None
    variables: Mapping[str, str] = field(default_factory=dict)  # variable key → fixed text, or a TOKENS token
    cooldown_minutes: str = "60"  # whole minutes, as typed
    position: str = "0"  # whole number, as typed
    active: bool = False


def save_rule(rule_input: RuleInput, rule_id: int | None = None) -> AutoReplyRule:
    """Create or update a rule; every field is checked before anything changes. Commits."""
    rule = get_rule(rule_id) if rule_id else AutoReplyRule()
    values = _validated(rule_input)
    for name, value in values.items():
        setattr(rule, name, value)
    if rule_id is None:
        db.session.add(rule)
    db.session.flush()
    audit.record("auto_reply.save", f"Saved auto-reply rule “{rule.name}”", target=f"auto_reply:{rule.id}")
    db.session.commit()
    return rule


def delete_rule(rule_id: int) -> None:
    rule = get_rule(rule_id)
    audit.record("auto_reply.delete", f"Deleted auto-reply rule “{rule.name}”", target=f"auto_reply:{rule.id}")
    db.session.delete(rule)
    db.session.commit()


def _validated(rule: RuleInput) -> dict[str, Any]:
    name = rule.name.strip()
    if not name:
        raise ServiceError("Give the rule a name.", field="name")
    values: dict[str, Any] = {"name": name[:120], "match_kind": rule.match_kind or "keywords", "active": rule.active,
                              "cooldown_minutes": _cooldown(rule.cooldown_minutes),
                              "position": _number(rule.position, "position")}
    values.update(_matching(values["match_kind"], rule))
    values.update(_reply(rule))
    return values


def _matching(kind: str, rule: RuleInput) -> dict[str, Any]:
    if kind == "regex":
        pattern = rule.pattern.strip()
        problem = patterns.problem(pattern)
        if problem:
            raise ServiceError(f"The pattern is not a valid regular expression: {problem}", field="pattern")
        if not pattern or len(pattern) > 500:
            raise ServiceError("Write a pattern of at most 500 characters.", field="pattern")
        return {"pattern": pattern, "keywords": []}
    if kind != "keywords":
        raise ServiceError("Choose keywords or a pattern.", field="match_kind")
    words = [w.strip() for w in re.split(r"[,\n]", rule.keywords) if w.strip()]
    if not words:
        raise ServiceError("Give at least one keyword (separate them with commas).", field="keywords")
    stop_words = opt_out.Keywords.from_settings()
    clashing = [w for w in words if opt_out.normalise(w) in stop_words.opt_out | stop_words.opt_in]
    if clashing:
        raise ServiceError(f"{', '.join(clashing)} is an opt-out/opt-in word: opt-out handling answers it.",
                           field="keywords")
    return {"keywords": words[:50], "pattern": None}


def _reply(rule: RuleInput) -> dict[str, Any]:
    if rule.reply_kind == "template":
        template = inbox_replies.approved_template(rule.template_id)
        variables = {v.key: _variable(rule.variables.get(v.key, "")) for v in rendering.template_variables(template)}
        if not all(rendering.is_mapped(mapping) for mapping in variables.values()):
            raise ServiceError("Fill in every template variable.", field="template_id")
        return {"reply_kind": "template", "template_id": template.id, "template_variables": variables,
                "reply_text": None}
    text = rule.reply_text.strip()
    if not text or len(text) > inbox_replies.MAX_TEXT:
        raise ServiceError("Write the reply (at most 4096 characters).", field="reply_text")
    return {"reply_kind": "text", "reply_text": text, "template_id": None, "template_variables": {}}


def _variable(value: str) -> dict[str, str]:
    value = value.strip()
    if value in TOKENS:
        return {"source": TOKENS[value], "value": "", "fallback": "there"}
    return {"source": "literal", "value": value, "fallback": ""}


def variable_text(mapping: Mapping[str, Any] | None) -> str:
    """A stored variable as the rules page shows it: its fixed text, or its token."""
    if not mapping:
        return ""
    tokens = {source: token for token, source in TOKENS.items()}
    return tokens.get(mapping.get("source"), mapping.get("value") or "")


def _cooldown(value: str) -> int:
    minutes = _number(value, "cooldown_minutes")
    if not 0 <= minutes <= 7 * 24 * 60:
        raise ServiceError("The cooldown is between 0 minutes and a week (10080).", field="cooldown_minutes")
    return minutes


def _number(value: str, field: str) -> int:
    try:
        return int(str(value).strip() or "0")
    except ValueError:
        raise ServiceError("Enter a whole number.", field=field) from None


def firings_for(rule_ids: Iterable[int]) -> dict[int, int]:
    """How often each rule fired, for the rules page."""
    statement = (select(AutoReplyFiring.rule_id, func.count()).where(AutoReplyFiring.rule_id.in_(list(rule_ids)))
                 .group_by(AutoReplyFiring.rule_id))
    return {rule_id: count for rule_id, count in db.session.execute(statement)}
