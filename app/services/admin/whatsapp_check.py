"""The settings page's "test connection": can we reach the Cloud API with the configured credentials?"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from app.services.sending.sender import whatsapp_settings
from app.whatsapp.client import WhatsAppApiError, WhatsAppClient


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    headline: str
    explanation: str


def check_connection() -> ConnectionResult:
    """List one page of templates: it needs the token, the business account id and a reachable API."""
    config = current_app.config
    missing = [name for name in ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_BUSINESS_ACCOUNT_ID",
                                 "WHATSAPP_PHONE_NUMBER_ID") if not config[name]]
    if missing:
        return ConnectionResult(False, "Not configured", f"Set {', '.join(missing)} in the environment.")
    settings = whatsapp_settings()
    try:
        with WhatsAppClient(settings) as client:
            templates = client.list_templates(limit=25)
    except WhatsAppApiError as error:
        detail = f" (code {error.code})" if error.code is not None else ""
        return ConnectionResult(False, f"Connection failed{detail}", f"{error.info.explanation} {error.message}")
    where = "the built-in simulator" if "127.0.0.1" in settings.base_url or "localhost" in settings.base_url \
        else settings.base_url
    return ConnectionResult(True, "Connected",
                            f"Reached {where} with API {settings.api_version}; the business account has "
                            f"{len(templates)} message template{'s' if len(templates) != 1 else ''}.")
