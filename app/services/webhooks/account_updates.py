"""account_update webhooks: WhatsApp restricting, disabling, warning or reinstating the business account.

Each becomes an open or lifted problem in admin.account_status, which the banner shows and the send path obeys. A
problem that stops campaigns pauses the running ones here, with the reason, through the campaigns' usual pause;
staff resume them once the problem is over. Events that change nothing for sending (partner, pricing, location
updates) are noted in the audit log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import true

from app.models import AccountBlock
from app.services.admin import account_status, audit
from app.services.admin.account_status import NewProblem
from app.services.webhooks.template_updates import pause_running_campaigns
from app.whatsapp.events import AccountUpdateEvent, Restriction

B = AccountBlock
RESTRICTIONS = {  # restriction type: (what it stops for us, in plain words)
    "RESTRICTED_BIZ_INITIATED_MESSAGING": (
        B.CAMPAIGNS, "WhatsApp has stopped this account from starting conversations, so campaigns and other "
                     "messages you start cannot be sent. Replies to customers who wrote in still go."),
    "RESTRICTED_CUSTOMER_INITIATED_MESSAGING": (
        B.NONE, "WhatsApp has stopped this account from replying to customers who message you."),
    "RESTRICTED_ADD_PHONE_NUMBER_ACTION": (B.NONE, "WhatsApp has stopped this account from adding phone numbers."),
    "RESTRICTED_UTILITY_TEMPLATES": (B.NONE, "WhatsApp has stopped this account from creating utility templates."),
    "RESTRICTED_DIRECT_SEND_UTILITY_TEMPLATES": (
        B.NONE, "WhatsApp has stopped this account from sending utility templates directly."),
}
ACCOUNT_GONE = {
    "ACCOUNT_DELETED": "WhatsApp reports that this business account was deleted, so nothing can be sent from it.",
    "ACCOUNT_OFFBOARDED": "This business account was disconnected from WhatsApp's Cloud API (the number was moved "
                          "to another device or registered again). Nothing can be sent until it is reconnected.",
}
DISABLED = ("WhatsApp has disabled this business account for breaking its policies{date}. Nothing can be sent until "
            "Meta reinstates it; you can appeal under Account quality in WhatsApp Manager.")
SCHEDULED = ("WhatsApp has scheduled this business account to be disabled for breaking its policies{date}. Check "
             "Account quality in WhatsApp Manager to fix the problem or appeal before then.")
VIOLATION = ("WhatsApp found a policy violation on this account ({kind}). More violations can lead to restrictions "
             "or a ban; see Account quality in WhatsApp Manager.")
BANS = ("DISABLED_UPDATE", "ACCOUNT_DELETED")


def apply_account_updates(events: Iterable[AccountUpdateEvent], counts: Counter, now: datetime) -> None:
    """Record each event's problem (or lift earlier ones), oldest first; pause campaigns a new block stops."""
    for event in sorted(events, key=lambda e: e.timestamp or now):
        at, name = event.timestamp or now, event.event.upper()
        if name == "DISABLED_UPDATE":
            _ban_update(event, at, counts)
        elif name in ACCOUNT_GONE:
            _open(NewProblem(name, name, B.ALL, ACCOUNT_GONE[name], at, details=event.raw), counts)
        elif name == "ACCOUNT_RECONNECTED":
            counts["account problems lifted"] += account_status.lift(["ACCOUNT_OFFBOARDED"], at, "reconnected")
        elif name == "ACCOUNT_RESTRICTION":
            _restrictions(event, at, counts, now)
        elif name == "ACCOUNT_VIOLATION":
            kind = event.violation_type or "UNSPECIFIED"
            reason = VIOLATION.format(kind=kind.replace("_", " ").lower())
            _open(NewProblem(name, kind, B.NONE, reason, at, details=event.raw), counts)
        else:
            audit.record("account.update", f"WhatsApp account update: {event.event}", target="whatsapp-account",
                         details=event.raw, actor="WhatsApp")
            counts["account updates noted"] += 1


def _ban_update(event: AccountUpdateEvent, at: datetime, counts: Counter) -> None:
    state = (event.ban_state or "DISABLE").upper()
    date = f" on {event.ban_date}" if event.ban_date else ""
    if state == "REINSTATE":
        counts["account problems lifted"] += account_status.lift(BANS, at, "reinstated by WhatsApp")
    elif state == "SCHEDULE_FOR_DISABLE":
        _open(NewProblem("DISABLED_UPDATE", state, B.NONE, SCHEDULED.format(date=date), at, details=event.raw), counts)
    else:
        account_status.lift(["DISABLED_UPDATE"], at, "disabled", kinds=["SCHEDULE_FOR_DISABLE"])
        _open(NewProblem("DISABLED_UPDATE", state, B.ALL, DISABLED.format(date=date), at, details=event.raw),
              counts)


def _restrictions(event: AccountUpdateEvent, at: datetime, counts: Counter, now: datetime) -> None:
    """Meta sends the whole current list: restrictions missing from it are over."""
    current = [item for item in event.restrictions if item.expiration is None or item.expiration > now]
    account_status.lift(["ACCOUNT_RESTRICTION"], at, "a newer restriction list",
                        keep_kinds=[item.type for item in current])
    for item in current:
        blocks, reason = _restriction_words(item)
        _open(NewProblem("ACCOUNT_RESTRICTION", item.type, blocks, reason, at, item.expiration, event.raw), counts)
    if not current:
        counts["account updates noted"] += 1


def _restriction_words(item: Restriction) -> tuple[str, str]:
    if item.type in RESTRICTIONS:
        return RESTRICTIONS[item.type]
    return B.NONE, f"WhatsApp has restricted this account ({item.type.replace('_', ' ').lower()})."


def _open(problem: NewProblem, counts: Counter) -> None:
    if account_status.record(problem) is None:
        counts["account problems already known"] += 1
        return
    counts["account problems recorded"] += 1
    if problem.blocks in (B.ALL, B.CAMPAIGNS):
        counts["campaigns paused"] += pause_running_campaigns(true(), f"WhatsApp account problem: {problem.reason}")
