"""The sending number as people know it ("+91 98765 43210, Sharma Stores") instead of its Cloud API id.

WhatsApp's GET /{phone-number-id} gives the display form and the verified business name. The answer is kept in
Redis for a day, so pages read it without a network call; a failed lookup is remembered for a few minutes, so an
unreachable API costs one timeout now and then, not one a page, and pages fall back to the id meanwhile.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from flask import current_app

from app.queues import redis_connection
from app.services.sending.sender import new_client
from app.whatsapp.client import WhatsAppApiError

log = logging.getLogger(__name__)

KNOWN_SECONDS = 24 * 3600  # a number's display form and name change rarely (a name change needs Meta's review)
UNKNOWN_SECONDS = 300  # after a failed lookup, try again in 5 minutes


@dataclass(frozen=True)
class SenderNumber:
    phone_number_id: str
    display_phone_number: str | None = None
    verified_name: str | None = None


def sender_number(phone_number_id: str | None = None) -> SenderNumber | None:
    """The configured (or given) sender's display number and name; only the id when WhatsApp cannot tell us; None
    when no sender is configured."""
    phone_number_id = phone_number_id or current_app.config["WHATSAPP_PHONE_NUMBER_ID"] or ""
    if not phone_number_id:
        return None
    if not current_app.config["WHATSAPP_ACCESS_TOKEN"]:  # nothing to ask WhatsApp with
        return SenderNumber(phone_number_id)
    key = f"whatsapp:phone-number:{phone_number_id}"
    cached = redis_connection().get(key)
    if cached is not None:
        return SenderNumber(phone_number_id, **json.loads(cached))
    found = _look_up(phone_number_id)
    redis_connection().set(key, json.dumps(found), ex=KNOWN_SECONDS if found else UNKNOWN_SECONDS)
    return SenderNumber(phone_number_id, **found)


def _look_up(phone_number_id: str) -> dict[str, str | None]:
    try:
        with new_client(phone_number_id) as client:
            info = client.phone_number_info()
    except WhatsAppApiError as error:
        log.warning("could not look up WhatsApp number %s: %s", phone_number_id, error)
        return {}
    return {"display_phone_number": info.display_phone_number, "verified_name": info.verified_name}
