"""Connection settings for the Cloud API, read from a config mapping such as Flask's app.config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class WhatsAppSettings:
    """Where and as whom to call the Cloud API. The app's defaults live in app/config.py; the tuning fields'
    defaults here serve standalone clients (benchmarks, simulator tests)."""

    base_url: str  # e.g. https://graph.facebook.com
    api_version: str  # e.g. v23.0
    access_token: str = ""
    phone_number_id: str = ""
    business_account_id: str = ""
    app_secret: str = ""
    verify_token: str = ""
    concurrency: int = 16
    connect_timeout: float = 5.0
    read_timeout: float = 20.0

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any]) -> WhatsAppSettings:
        """Build settings from WHATSAPP_* keys: the base URL and version are required, other missing or None keys keep
        their defaults."""
        missing = [key for key in ("WHATSAPP_API_BASE_URL", "WHATSAPP_API_VERSION") if not m.get(key)]
        if missing:
            raise ValueError(f"Set {' and '.join(missing)} to reach the Cloud API.")
        values = {field: m.get(key) for key, field in _KEYS.items()}
        present = {field: value for field, value in values.items() if value is not None}
        if "base_url" in present:
            present["base_url"] = str(present["base_url"]).rstrip("/")
        if "concurrency" in present:
            present["concurrency"] = max(1, int(present["concurrency"]))
        for name in ("access_token", "phone_number_id", "business_account_id", "app_secret", "verify_token"):
            if name in present:
                present[name] = str(present[name])
        return cls(**present)

    @property
    def graph_url(self) -> str:
        """Versioned Graph root, e.g. https://graph.facebook.com/v23.0."""
        return f"{self.base_url.rstrip('/')}/{self.api_version}"


_KEYS = {
    "WHATSAPP_API_BASE_URL": "base_url",
    "WHATSAPP_API_VERSION": "api_version",
    "WHATSAPP_ACCESS_TOKEN": "access_token",
    "WHATSAPP_PHONE_NUMBER_ID": "phone_number_id",
    "WHATSAPP_BUSINESS_ACCOUNT_ID": "business_account_id",
    "WHATSAPP_APP_SECRET": "app_secret",
    "WHATSAPP_VERIFY_TOKEN": "verify_token",
    "WHATSAPP_SEND_CONCURRENCY": "concurrency",
}
