"""Run-time settings: safe to change from the settings page, stored in the database, validated here."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

import phonenumbers
from flask import current_app, g
from sqlalchemy import select

from app.extensions import db
from app.models import Setting
from app.services.admin import audit

TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")  # HH:MM on a 24-hour clock; groups: hours, minutes
TIERS = ["250", "1000", "10000", "100000", "unlimited"]
DEFAULT_OPT_OUT_WORDS = ["STOP", "UNSUBSCRIBE", "CANCEL", "STOP ALL", "रोकें", "बंद करें"]
DEFAULT_CONFIRMATION = ("You have been unsubscribed and will not get more messages from us. "
                        "Reply START to subscribe again.")
# Meta's per-message rates for India in rupees; staff update them when Meta's rate card changes.
DEFAULT_PRICES = {"MARKETING": 0.7846, "UTILITY": 0.115, "AUTHENTICATION": 0.115, "SERVICE": 0.0}


@dataclass(frozen=True)
class Spec:
    key: str
    label: str
    kind: str  # text | textarea | lines | time | choice | number | prices
    default: Callable[[], Any]
    parse: Callable[[str], Any]
    help: str = ""
    choices: tuple[str, ...] = ()


def _region(value: str) -> str:
    value = value.strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("Enter a two-letter country code such as IN, AE or GB.")
    return value


def _timezone(value: str) -> str:
    value = value.strip()
    if value not in available_timezones():
        raise ValueError("Enter a timezone name such as Asia/Kolkata or Europe/London.")
    return value


def _time(value: str) -> str:
    value = value.strip()
    if not TIME.match(value):
        raise ValueError("Enter a time as HH:MM, for example 21:00.")
    return value


def _words(value: str) -> list[str]:
    words = list(dict.fromkeys(" ".join(line.split()).upper() for line in value.splitlines() if line.strip()))
    if not words:
        raise ValueError("Keep at least one keyword.")
    return words


def _text(value: str) -> str:
    value = value.strip()
    if not value or len(value) > 1024:
        raise ValueError("Enter between 1 and 1,024 characters.")
    return value


def _tier(value: str) -> str:
    if value not in TIERS:
        raise ValueError("Choose one of the listed tiers.")
    return value


def _days(value: str) -> int:
    if not value.strip().isdigit() or int(value) > 3650:
        raise ValueError("Enter a whole number of days between 0 and 3650.")
    return int(value)


def _private_addresses(value: str) -> str:
    if value not in ("refuse", "allow"):
        raise ValueError("Choose refuse or allow.")
    return value


def _prices(value: str) -> dict[str, float]:
    prices = {}
    for line in value.splitlines():
        if not line.strip():
            continue
        category, _, amount = line.partition("=")
        try:
            prices[category.strip().upper()] = round(float(amount), 4)
        except ValueError:
            raise ValueError(f"“{line.strip()}” should look like MARKETING = 0.78.") from None
    if not prices or any(price < 0 for price in prices.values()):
        raise ValueError("Give a price of zero or more for each category, one per line.")
    return prices


SPECS = [
    Spec("default_region", "Default country", "text", lambda: current_app.config["DEFAULT_REGION"], _region,
         "Country assumed for phone numbers typed without a country code."),
    Spec("timezone", "Timezone", "text", lambda: current_app.config["TIMEZONE"], _timezone,
         "Times are shown and campaigns are scheduled in this timezone."),
    Spec("opt_out_keywords", "Opt-out keywords", "lines", lambda: DEFAULT_OPT_OUT_WORDS, _words,
         "One per line. A customer who sends exactly one of these is opted out (any case)."),
    Spec("opt_in_keywords", "Opt-in keywords", "lines", lambda: ["START", "SUBSCRIBE"], _words,
         "One per line. A customer who opted out and sends one of these is subscribed again."),
    Spec("opt_out_confirmation", "Opt-out confirmation", "textarea", lambda: DEFAULT_CONFIRMATION, _text,
         "Sent once when a customer opts out."),
    Spec("quiet_hours_start", "Quiet hours start", "time", lambda: "21:00", _time,
         "New campaigns do not send between these times by default."),
    Spec("quiet_hours_end", "Quiet hours end", "time", lambda: "09:00", _time),
    Spec("price_table", "Price per message (₹)", "prices", lambda: DEFAULT_PRICES, _prices,
         "One category per line, e.g. MARKETING = 0.7846. Used for cost estimates before launch."),
    Spec("messaging_limit_tier", "Messaging limit tier", "choice", lambda: "1000", _tier,
         "How many different customers Meta lets this number message in 24 hours.", tuple(TIERS)),
    Spec("retention_webhook_events_days", "Keep raw webhook events (days)", "number", lambda: 30, _days,
         "Processed webhook bodies from Meta; the statuses and replies they carried stay with the messages."),
    Spec("retention_import_files_days", "Keep uploaded import files (days)", "number", lambda: 30, _days),
    Spec("outbound_private_addresses", "Webhook endpoints on private addresses", "choice",
         lambda: "allow" if current_app.config["OUTBOUND_WEBHOOK_ALLOW_PRIVATE"] else "refuse", _private_addresses,
         "Allow only for receivers inside your own network: an endpoint there can reach internal services.",
         ("refuse", "allow")),
    Spec("retention_audit_days", "Keep audit log entries (days)", "number", lambda: 365, _days),
]
SPECS_BY_KEY = {spec.key: spec for spec in SPECS}


def _stored() -> dict[str, Any]:
    # Read once per request or job: settings pages change rarely, lookups happen everywhere.
    if "settings" not in g:
        g.settings = {row.key: row.value for row in db.session.scalars(select(Setting))}
    return g.settings


def get(key: str) -> Any:
    """The stored value, or the default for this installation."""
    stored = _stored()
    return stored[key] if key in stored else SPECS_BY_KEY[key].default()


def all_values() -> dict[str, Any]:
    return {spec.key: get(spec.key) for spec in SPECS}


def as_form_text(spec: Spec, value: Any) -> str:
    if spec.kind == "lines":
        return "\n".join(value)
    if spec.kind == "prices":
        return "\n".join(f"{category} = {price}" for category, price in value.items())
    return str(value)


def update(texts: Mapping[str, str], user_id: int | None) -> dict[str, str]:
    """Validate every given setting (key → text as typed); save all or nothing. Returns {} or {key: error message}."""
    errors, parsed = {}, {}
    for spec in SPECS:
        if spec.key not in texts:
            continue
        try:
            parsed[spec.key] = spec.parse(texts[spec.key])
        except ValueError as error:
            errors[spec.key] = str(error)
    if errors:
        return errors
    changed = {key: value for key, value in parsed.items() if value != get(key)}
    for key, value in changed.items():
        row = db.session.get(Setting, key) or Setting(key=key)
        row.value, row.updated_by_id = value, user_id
        db.session.add(row)
    if changed:
        labels = ", ".join(SPECS_BY_KEY[key].label for key in changed)
        audit.record("settings.change", f"Changed settings: {labels}", details={"changed": changed})
    db.session.commit()
    g.pop("settings", None)
    return {}


SECRETS = ["SECRET_KEY", "WHATSAPP_ACCESS_TOKEN", "WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN"]
IDENTIFIERS = ["WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_BUSINESS_ACCOUNT_ID", "WHATSAPP_API_BASE_URL",
               "WHATSAPP_API_VERSION"]


def environment_status() -> list[tuple[str, str]]:
    """Secrets only as configured/missing; never their values."""
    config = current_app.config
    return [(name, "configured" if config[name] else "missing") for name in SECRETS]


def environment_identifiers() -> list[tuple[str, str]]:
    config = current_app.config
    return [(name, str(config[name] or "missing")) for name in IDENTIFIERS]
