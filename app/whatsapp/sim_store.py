"""The simulator's state: message templates, what customers did, the ledger of accepted sends, and the throughput
limiter."""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from app.whatsapp.sim_rules import PLACEHOLDER

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
TEMPLATE_LIMIT = 250  # templates per WABA while its business is unverified
_NAME = re.compile(r"^[a-z0-9_]{1,512}$")


@dataclass
class SimTemplate:
    """A template as Meta stores it, with what send validation needs worked out once."""

    data: dict[str, Any]  # Meta's JSON shape, as listed by GET message_templates
    body_params: list[str] = field(default_factory=list)
    body_text: str = ""
    header_format: str | None = None  # TEXT, IMAGE, VIDEO, DOCUMENT, LOCATION
    header_params: list[str] = field(default_factory=list)
    buttons: list[TemplateButton] = field(default_factory=list)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SimTemplate:
        template = cls(data=data)
        for component in data.get("components", []):
            kind = str(component.get("type", "")).upper()
            if kind == "BODY":
                template.body_text = str(component.get("text", ""))
                template.body_params = template_placeholders(template.body_text)
            elif kind == "HEADER":
                template.header_format = str(component.get("format", "TEXT")).upper()
                template.header_params = template_placeholders(component.get("text"))
            elif kind == "BUTTONS":
                template.buttons = [TemplateButton.from_data(button) for button in component.get("buttons", [])]
        return template

    @property
    def named(self) -> bool:
        return self.data.get("parameter_format") == "NAMED"

    @property
    def category(self) -> str:
        return str(self.data.get("category", "")).upper()


# The sub_type a send uses to fill in each kind of template button (an OTP button is filled like a URL one).
_BUTTON_SUB_TYPES = {"QUICK_REPLY": "quick_reply", "URL": "url", "COPY_CODE": "copy_code", "OTP": "url",
                     "PHONE_NUMBER": "phone_number", "FLOW": "flow", "CATALOG": "catalog", "MPM": "mpm"}


@dataclass(frozen=True)
class TemplateButton:
    sub_type: str  # as a send's button component names it: quick_reply, url, copy_code, …
    needs_parameter: bool  # a URL with a variable, a coupon code or a one-time password must be filled in

    @classmethod
    def from_data(cls, button: dict[str, Any]) -> TemplateButton:
        kind = str(button.get("type", "")).upper()
        needs = kind in ("COPY_CODE", "OTP") or (kind == "URL" and bool(template_placeholders(button.get("url"))))
        return cls(sub_type=_BUTTON_SUB_TYPES.get(kind, kind.lower()), needs_parameter=needs)


def template_placeholders(text: str | None) -> list[str]:
    """Placeholder names in template text, in order of first appearance: ["1", "2"] or ["first_name"]."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text or "")))


class Customers:
    """What customers did on WhatsApp that decides what Meta lets a business send them: when each last wrote (the
    24-hour customer service window) and who stopped marketing messages."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_wrote: dict[str, float] = {}
        self._stopped_marketing: set[str] = set()

    def wrote(self, wa_id: str, at: float | None = None) -> None:
        with self._lock:
            self._last_wrote[wa_id] = time.time() if at is None else at

    def last_wrote(self, wa_id: str) -> float | None:
        return self._last_wrote.get(wa_id)

    def set_marketing(self, wa_id: str, allowed: bool) -> None:
        with self._lock:
            if allowed:
                self._stopped_marketing.discard(wa_id)
            else:
                self._stopped_marketing.add(wa_id)

    def stopped_marketing(self, wa_id: str) -> bool:
        return wa_id in self._stopped_marketing


class TemplateStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1_200_000_000_000_001)
        self._templates: dict[tuple[str, str], SimTemplate] = {}
        for data in seed_templates():
            self._add(data)

    def get(self, name: str, language: str) -> SimTemplate | None:
        return self._templates.get((name, language))

    def page(self, limit: int, after: int, status: str | None = None, name: str | None = None,
             fields: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """One page of templates in creation order, and the offset of the next page (None on the last); `fields`
        ("name,status") keeps only those, and the id, as Graph does."""
        items = self._matching(status, name)
        page = items[after:after + limit]
        if fields:
            wanted = {"id", *(field.strip() for field in fields.split(","))}
            page = [{key: value for key, value in item.items() if key in wanted} for item in page]
        return page, (after + limit if after + limit < len(items) else None)

    def summary(self, requested: str, status: str | None = None, name: str | None = None) -> dict[str, Any]:
        """The `summary` of a template list: `summary=true` gives total_count, or name the fields wanted."""
        with self._lock:
            everything = len(self._templates)
        known = {"total_count": len(self._matching(status, name)), "message_template_count": everything,
                 "message_template_limit": TEMPLATE_LIMIT, "are_translations_complete": True}
        if requested.lower() in ("true", "1"):
            return {"total_count": known["total_count"]}
        return {field: known[field] for field in (f.strip() for f in requested.split(",")) if field in known}

    def _matching(self, status: str | None, name: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [t.data for t in self._templates.values()
                    if (status is None or t.data["status"] == status) and (name is None or name in t.data["name"])]

    def create(self, body: dict[str, Any]) -> tuple[SimTemplate | None, str | None]:
        """Add a PENDING template, or return why Meta would refuse it."""
        problem = _template_problem(body)
        if problem:
            return None, problem
        with self._lock:
            if (body["name"], body["language"]) in self._templates:
                return None, "duplicate"
        data = {"name": body["name"], "language": body["language"], "category": body["category"],
                "parameter_format": body.get("parameter_format") or "POSITIONAL", "components": body["components"],
                "status": "PENDING"}
        return self._add(data), None

    def set_status(self, template_id: str, status: str) -> SimTemplate | None:
        with self._lock:
            for template in self._templates.values():
                if template.data["id"] == template_id:
                    template.data["status"] = status
                    return template
        return None

    def _add(self, data: dict[str, Any]) -> SimTemplate:
        data = {"id": str(next(self._ids)), "status": "APPROVED", "parameter_format": "POSITIONAL", **data}
        template = SimTemplate.from_data(data)
        with self._lock:
            self._templates[(data["name"], data["language"])] = template
        return template


def _template_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("name"), str) or not _NAME.match(body["name"]):
        return "Param name must be lowercase letters, digits and underscores."
    if not isinstance(body.get("language"), str) or not body["language"]:
        return "The parameter language is required."
    if body.get("category") not in CATEGORIES:
        return f"Param category must be one of {{{', '.join(CATEGORIES)}}}."
    if body.get("parameter_format") not in (None, "POSITIONAL", "NAMED"):
        return "Param parameter_format must be POSITIONAL or NAMED."
    components = body.get("components")
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        return "The parameter components is required."
    if not any(str(c.get("type", "")).upper() == "BODY" for c in components):
        return "A template needs a BODY component."
    return None


@dataclass
class Ledger:
    """Every accepted send, counted so tests and benchmarks can prove nobody got a message twice."""

    recent_limit: int = 1000
    accepted: int = 0
    duplicates: int = 0
    per_recipient: dict[str, int] = field(default_factory=dict)
    per_tracker: dict[tuple[str, str], int] = field(default_factory=dict)
    last_wamid: dict[str, str] = field(default_factory=dict)
    recent: deque[dict[str, Any]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, wa_id: str, wamid: str, tracker: str, template: str | None,
               failure_code: int | None = None) -> None:
        with self._lock:
            self.accepted += 1
            self.per_recipient[wa_id] = self.per_recipient.get(wa_id, 0) + 1
            count = self.per_tracker.get((tracker, wa_id), 0) + 1
            self.per_tracker[(tracker, wa_id)] = count
            if count == 2:
                self.duplicates += 1
            self.last_wamid[wa_id] = wamid
            self.recent.append({"wamid": wamid, "to": wa_id, "tracker": tracker, "template": template,
                                "failure_code": failure_code})  # accepted, then failed by webhook with this code
            if len(self.recent) > self.recent_limit:
                self.recent.popleft()

    def snapshot(self, detail: bool = False) -> dict[str, Any]:
        with self._lock:
            data: dict[str, Any] = {"accepted": self.accepted, "recipients": len(self.per_recipient),
                                    "duplicates": self.duplicates}
            if detail:
                data["per_recipient"] = dict(self.per_recipient)
                data["duplicate_sends"] = [{"tracker": tracker, "recipient": wa_id, "count": count}
                                           for (tracker, wa_id), count in self.per_tracker.items() if count > 1]
                data["recent"] = list(self.recent)
            return data


def tracker_of(biz_opaque_callback_data: str | None, fallback: str) -> str:
    """What a duplicate is counted against: the part of the callback data before its last ':' (a run, so one
    recipient getting two of its messages is a duplicate), or the whole of it for a message sent on its own ("m:…",
    so only the same message sent twice is)."""
    if not biz_opaque_callback_data:
        return fallback
    head, separator, _ = biz_opaque_callback_data.rpartition(":")
    return head if separator and head != "m" else biz_opaque_callback_data


class ThroughputLimiter:
    """A token bucket allowing `rate` messages per second with a one-second burst."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens = 0.0
        self._updated = time.monotonic()
        self._rate = 0.0

    def allow(self, rate: float) -> bool:
        if rate <= 0:
            return True
        with self._lock:
            now = time.monotonic()
            if rate != self._rate:  # a new limit starts with a full bucket
                self._rate, self._tokens = rate, max(1.0, rate)
            self._tokens = min(max(1.0, rate), self._tokens + (now - self._updated) * rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False


def seed_templates() -> list[dict[str, Any]]:
    """A few realistic approved templates, in Meta's list format."""
    return [
        {"name": "hello_world", "language": "en_US", "category": "UTILITY", "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
            {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a "
                                     "WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for "
                                     "taking the time to test with us."},
            {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"}]},
        {"name": "order_update", "language": "en_US", "category": "UTILITY", "components": [
            {"type": "BODY", "text": "Hi {{1}}, your order {{2}} has been shipped and will reach you soon.",
             "example": {"body_text": [["Asha", "#1042"]]}},
            {"type": "FOOTER", "text": "Thank you for shopping with us"}]},
        {"name": "order_update", "language": "hi", "category": "UTILITY", "components": [
            {"type": "BODY", "text": "नमस्ते {{1}}, आपका ऑर्डर {{2}} भेज दिया गया है और जल्द ही आप तक पहुँचेगा।",
             "example": {"body_text": [["आशा", "#1042"]]}}]},
        {"name": "festival_offer", "language": "en_US", "category": "MARKETING", "parameter_format": "NAMED",
         "components": [
             {"type": "HEADER", "format": "IMAGE",
              "example": {"header_handle": ["https://scontent.whatsapp.net/v/festival_offer.jpg"]}},
             {"type": "BODY", "text": "Hi {{first_name}}, our {{festival}} sale is live! Enjoy {{discount}} off "
                                      "everything until Sunday.",
              "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Asha"},
                                                     {"param_name": "festival", "example": "Diwali"},
                                                     {"param_name": "discount", "example": "20%"}]}},
             {"type": "FOOTER", "text": "Tap Stop promotions to opt out"},
             {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Shop now"},
                                             {"type": "QUICK_REPLY", "text": "Stop promotions"}]}]},
        {"name": "appointment_reminder", "language": "en_US", "category": "UTILITY", "components": [
            {"type": "BODY", "text": "Reminder: your appointment at {{1}} is on {{2}} at {{3}}.",
             "example": {"body_text": [["Main Street store", "12 March", "4 pm"]]}}]},
        {"name": "summer_clearance", "language": "en_US", "category": "MARKETING", "status": "PAUSED", "components": [
            {"type": "BODY", "text": "Summer clearance: up to {{1}} off while stocks last.",
             "example": {"body_text": [["50%"]]}}]},
    ]
