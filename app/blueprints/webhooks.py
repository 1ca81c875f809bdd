"""WhatsApp webhooks: raw body → verify → persist → enqueue → 200. No login and no CSRF: Meta signs instead."""

import logging

from flask import Blueprint, current_app, request

from app.extensions import csrf
from app.services.webhooks import intake
from app.whatsapp.webhook import SIGNATURE_HEADER, verify_handshake, verify_signature
from jobs.webhooks import enqueue_process_webhook_event

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
bp.login_exempt = True
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 3 * 1024 * 1024  # Meta documents webhook payloads of up to 3 MB; refusing one would lose it
PLAIN = {"Content-Type": "text/plain; charset=utf-8"}


@bp.get("/whatsapp")
def verify():
    """Meta's subscription handshake: echo hub.challenge when hub.verify_token is ours."""
    challenge = verify_handshake(request.args, current_app.config["WHATSAPP_VERIFY_TOKEN"] or "")
    if challenge is None:
        log.warning("WhatsApp webhook handshake refused: wrong or missing verify token")
        return "Forbidden", 403, PLAIN
    return challenge, 200, PLAIN


@bp.post("/whatsapp")
@csrf.exempt
def receive():
    raw = _raw_body()
    if raw is None:
        return "Body too large", 413, PLAIN
    secret = current_app.config["WHATSAPP_APP_SECRET"] or ""
    if not verify_signature(raw, request.headers.get(SIGNATURE_HEADER), secret):
        log.warning("WhatsApp webhook refused: missing or wrong signature (%d bytes from %s)", len(raw),
                    request.remote_addr)
        return "Invalid signature", 403, PLAIN
    try:
        stored = intake.store(raw)
    except intake.StorageUnavailable as error:
        log.error("could not store a WhatsApp webhook (%s); answered 503 so Meta retries", error)
        return "Storage unavailable, retry later", 503, PLAIN
    if stored.first_in_group:
        enqueue_process_webhook_event(stored.event_id)
    return "OK", 200, PLAIN


def _raw_body() -> bytes | None:
    """The body, or None if it is larger than MAX_BODY_BYTES (checked before reading when a length is given)."""
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return None
    raw = request.stream.read(MAX_BODY_BYTES + 1)
    return raw if len(raw) <= MAX_BODY_BYTES else None
