"""HTTP client for the Cloud API: sends messages and manages message templates.

Sends never raise for HTTP or network trouble: every outcome becomes a `SendResult`, including whether the
request may have reached Meta (`outcome_unknown`), which decides if a retry could deliver a message twice.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    EmptyPoolError,
    HTTPError,
    LocationValueError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from app.whatsapp import payloads
from app.whatsapp.errors import ErrorInfo, classify, classify_transport
from app.whatsapp.payloads import (
    Component,
    body_parameters,
    copy_code_button,
    header_media,
    header_text_parameters,
    quick_reply_button,
    template_placeholders,
    text_parameters,
    url_button,
)
from app.whatsapp.settings import WhatsAppSettings

# The payload builders are re-exported so callers can build components from the client module.
__all__ = [
    "PhoneNumberInfo", "SendResult", "TemplateCreated", "TemplateInfo", "WhatsAppApiError", "WhatsAppClient",
    "body_parameters", "copy_code_button", "header_media", "header_text_parameters", "quick_reply_button",
    "template_placeholders", "text_parameters", "url_button",
]

# Failures before any byte of the request left: connect errors and timeouts (including DNS), TLS handshake and
# proxy errors, a bad URL, or no pooled connection to use.
_NOT_SENT = (ConnectTimeoutError, SSLError, ProxyError, LocationValueError, EmptyPoolError, ClosedPoolError)
PHONE_NUMBER_FIELDS = "id,display_phone_number,verified_name,quality_rating"
TEMPLATE_FIELDS = "id,name,language,status,category,parameter_format,components,quality_score,rejected_reason"
_MAX_TEMPLATE_PAGES = 1000


@dataclass(frozen=True)
class SendResult:
    ok: bool
    wamid: str | None = None
    message_status: str | None = None  # "accepted", "held_for_quality_assessment", ...
    http_status: int | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    error_title: str | None = None
    error_message: str | None = None
    error_details: str | None = None  # error.error_data.details
    fbtrace_id: str | None = None
    retry_after: int | None = None  # seconds, from a Retry-After header
    outcome_unknown: bool = False  # the request may have reached Meta although we got no answer
    wa_id: str | None = None  # contacts[0].wa_id as Meta normalised the recipient

    def error_info(self) -> ErrorInfo | None:
        """What to do about a failed send, with a plain-language explanation; None when it succeeded."""
        if self.ok:
            return None
        if self.outcome_unknown or (self.http_status is None and self.error_code is None):
            return classify_transport(self.outcome_unknown)
        return classify(self.error_code, self.http_status)


@dataclass(frozen=True)
class TemplateInfo:
    id: str
    name: str
    language: str
    status: str
    category: str
    parameter_format: str = "POSITIONAL"
    components: list[dict[str, Any]] = field(default_factory=list)
    quality_score: str | None = None
    rejected_reason: str | None = None


@dataclass(frozen=True)
class PhoneNumberInfo:
    """The sender number as WhatsApp shows it: display_phone_number like "+91 98765 43210", the approved name."""

    id: str
    display_phone_number: str
    verified_name: str | None = None
    quality_rating: str | None = None


@dataclass(frozen=True)
class TemplateCreated:
    id: str
    status: str
    category: str | None = None


class WhatsAppApiError(Exception):
    """A template-management call failed; carries Meta's error fields and our classification."""

    def __init__(self, message: str, http_status: int | None = None, code: int | None = None,
                 subcode: int | None = None, details: str | None = None, fbtrace_id: str | None = None):
        super().__init__(message)
        self.message, self.http_status, self.code = message, http_status, code
        self.subcode, self.details, self.fbtrace_id = subcode, details, fbtrace_id

    @property
    def info(self) -> ErrorInfo:
        return classify(self.code, self.http_status)


class _GraphAdapter(HTTPAdapter):
    """Verifies TLS with requests' CA bundle also for sends, which use the adapter's pool directly."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cert_reqs", "CERT_REQUIRED")
        kwargs.setdefault("ca_certs", DEFAULT_CA_BUNDLE_PATH)
        super().init_poolmanager(*args, **kwargs)


class WhatsAppClient:
    """Thread-safe for sends: many threads may call send_* at once, sharing `concurrency` keep-alive connections."""

    def __init__(self, settings: WhatsAppSettings):
        self.settings = settings
        self._session = requests.Session()
        self._adapter = _GraphAdapter(pool_connections=4, pool_maxsize=settings.concurrency, pool_block=True,
                                      max_retries=0)
        self._session.mount("https://", self._adapter)
        self._session.mount("http://", self._adapter)
        self._session.headers.update({"Authorization": f"Bearer {settings.access_token}"})
        # Few headers on purpose: each one costs measurable CPU per send at thousands of sends per second.
        self._send_headers = {"Authorization": f"Bearer {settings.access_token}", "Content-Type": "application/json"}
        self._timeout = urllib3.Timeout(connect=settings.connect_timeout, read=settings.read_timeout)
        self._messages_url = f"{settings.graph_url}/{settings.phone_number_id}/messages"
        self._pool, self._send_target = self._send_pool(self._messages_url)

    def send_template(self, to: str, name: str, language: str, components: Sequence[Component] | None = None,
                      biz_opaque_callback_data: str | None = None) -> SendResult:
        """Send an approved template; `components` come from body_parameters() and the other builders."""
        return self.send_payload(payloads.template_message(to, name, language, components, biz_opaque_callback_data))

    def send_text(self, to: str, body: str, preview_url: bool = False,
                  biz_opaque_callback_data: str | None = None) -> SendResult:
        """Send free text; Meta only delivers it within 24 hours of the customer's last message."""
        return self.send_payload(payloads.text_message(to, body, preview_url, biz_opaque_callback_data))

    def send_payload(self, payload: dict[str, Any]) -> SendResult:
        """POST a ready-built message payload; never raises for HTTP or network errors."""
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            # The adapter's urllib3 pool directly: requests' per-call machinery costs more CPU than the whole
            # round trip to a local peer, and bulk sends are this client's hot path.
            response = self._pool.urlopen("POST", self._send_target, body=body, headers=self._send_headers,
                                          timeout=self._timeout, retries=False, redirect=False, preload_content=True)
        except _NOT_SENT as exc:  # no connection was made: Meta never saw the request
            return _transport_failure(exc, outcome_unknown=False)
        except (ReadTimeoutError, ProtocolError, HTTPError, OSError) as exc:  # the request may have arrived
            return _transport_failure(exc, outcome_unknown=True)
        return _send_result(response.status, response.data, response.headers.get("Retry-After"))

    def list_templates(self, limit: int = 100) -> list[TemplateInfo]:
        """Every message template of the business account, following `paging.next` until the last page."""
        url: str | None = f"{self.settings.graph_url}/{self.settings.business_account_id}/message_templates"
        params: dict[str, Any] | None = {"limit": limit, "fields": TEMPLATE_FIELDS}
        templates: list[TemplateInfo] = []
        seen: set[str] = set()
        while url and url not in seen and len(seen) < _MAX_TEMPLATE_PAGES:
            seen.add(url)
            page = self._request_json("GET", url, params=params)
            templates.extend(_template_info(item) for item in page.get("data") or [] if isinstance(item, dict))
            url, params = self._next_page_url(page), None
        return templates

    def _next_page_url(self, page: dict[str, Any]) -> str | None:
        """`paging.next`, but only on our Graph host: the session would send it our access token."""
        next_url = (page.get("paging") or {}).get("next")
        if not isinstance(next_url, str):
            return None
        ours, theirs = urllib3.util.parse_url(self.settings.base_url), urllib3.util.parse_url(next_url)
        return next_url if (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc) else None

    def phone_number_info(self) -> PhoneNumberInfo:
        """GET /{phone-number-id}: the number's display form and verified name; raises WhatsAppApiError."""
        data = self._request_json("GET", f"{self.settings.graph_url}/{self.settings.phone_number_id}",
                                  params={"fields": PHONE_NUMBER_FIELDS})
        display = data.get("display_phone_number")
        if not isinstance(display, str) or not display.strip():
            raise WhatsAppApiError("WhatsApp answered without the number's display_phone_number")
        name, quality = data.get("verified_name"), data.get("quality_rating")
        return PhoneNumberInfo(id=str(data.get("id") or self.settings.phone_number_id), display_phone_number=display,
                               verified_name=name if isinstance(name, str) and name.strip() else None,
                               quality_rating=quality if isinstance(quality, str) else None)

    def create_template(self, name: str, language: str, category: str, components: list[dict[str, Any]],
                        parameter_format: str | None = None) -> TemplateCreated:
        """Submit a template for review; it starts PENDING and a webhook reports the verdict."""
        body: dict[str, Any] = {"name": name, "language": language, "category": category, "components": components}
        if parameter_format:
            body["parameter_format"] = parameter_format
        url = f"{self.settings.graph_url}/{self.settings.business_account_id}/message_templates"
        data = self._request_json("POST", url, json_body=body)
        return TemplateCreated(id=str(data.get("id", "")), status=str(data.get("status", "PENDING")),
                               category=data.get("category"))

    def close(self) -> None:
        self._pool.close()
        self._session.close()

    def __enter__(self) -> WhatsAppClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send_pool(self, url: str) -> tuple[HTTPConnectionPool, str]:
        """The adapter's keep-alive pool for the messages URL, and the request target to use on it."""
        # Honour HTTPS_PROXY/NO_PROXY like requests would, once, instead of on every send.
        proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
        manager = self._adapter.proxy_manager_for(proxy) if proxy else self._adapter.poolmanager
        pool = manager.connection_from_url(url)
        # A plain-HTTP proxy needs the absolute URL; a direct or tunnelled connection takes the path.
        absolute = bool(proxy) and pool.scheme == "http"
        return pool, url if absolute else urllib3.util.parse_url(url).request_uri

    def _request_json(self, method: str, url: str, params: dict[str, Any] | None = None,
                      json_body: dict[str, Any] | None = None) -> dict[str, Any]:
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            response = self._session.request(method, url, params=params, json=json_body, timeout=timeout)
        except requests.RequestException as exc:
            raise WhatsAppApiError(f"Could not reach WhatsApp: {exc}") from exc
        data = _json_or_none(response.content)
        if response.ok and isinstance(data, dict):
            return data
        error = _error_fields(data)
        raise WhatsAppApiError(error.get("message") or f"WhatsApp answered HTTP {response.status_code}",
                               http_status=response.status_code, code=error.get("code"),
                               subcode=error.get("subcode"), details=error.get("details"),
                               fbtrace_id=error.get("fbtrace_id"))


def _send_result(status: int, body: bytes, retry_after_header: str | None) -> SendResult:
    data = _json_or_none(body)
    retry_after = _retry_after_seconds(retry_after_header)
    if 200 <= status < 300:
        message, contact = _first(data, "messages"), _first(data, "contacts")
        if message.get("id"):
            return SendResult(ok=True, wamid=str(message["id"]), message_status=message.get("message_status"),
                              http_status=status, wa_id=contact.get("wa_id"))
        # A success without a message id: Meta may well have taken the message, so treat it as ambiguous.
        return SendResult(ok=False, http_status=status, outcome_unknown=True,
                          error_message="WhatsApp answered without a message id")
    error = _error_fields(data)
    title = error.get("title") or classify(error.get("code"), status).title
    return SendResult(ok=False, http_status=status, error_code=error.get("code"), error_subcode=error.get("subcode"),
                      error_title=title, error_message=error.get("message"), error_details=error.get("details"),
                      fbtrace_id=error.get("fbtrace_id"), retry_after=retry_after)


def _transport_failure(exc: BaseException, outcome_unknown: bool) -> SendResult:
    info = classify_transport(outcome_unknown)
    return SendResult(ok=False, error_title=info.title, error_message=f"{type(exc).__name__}: {exc}",
                      outcome_unknown=outcome_unknown)


def _error_fields(data: Any) -> dict[str, Any]:
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return {}
    error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    return {"code": _int_or_none(error.get("code")), "subcode": _int_or_none(error.get("error_subcode")),
            "message": error.get("message"), "title": error.get("error_user_title"),
            "details": error_data.get("details"), "fbtrace_id": error.get("fbtrace_id")}


def _template_info(item: dict[str, Any]) -> TemplateInfo:
    quality = item.get("quality_score")
    return TemplateInfo(id=str(item.get("id", "")), name=str(item.get("name", "")),
                        language=str(item.get("language", "")), status=str(item.get("status", "")),
                        category=str(item.get("category", "")),
                        parameter_format=str(item.get("parameter_format") or "POSITIONAL"),
                        components=list(item.get("components") or []),
                        quality_score=quality.get("score") if isinstance(quality, dict) else quality,
                        rejected_reason=item.get("rejected_reason"))


def _first(data: Any, key: str) -> dict[str, Any]:
    items = data.get(key) if isinstance(data, dict) else None
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return {}


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _retry_after_seconds(header: str | None) -> int | None:
    """Retry-After is either delay-seconds or an HTTP date."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return int(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0, int(when.timestamp() - time.time() + 0.999))
