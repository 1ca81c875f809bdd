"""/api/v1/messages and /api/v1/templates: send one message, read its status history, list templates."""

from __future__ import annotations

from flask import request, url_for

from app.blueprints.api import api_blueprint, body, caller, endpoint, respond
from app.services.api import campaigns, messages
from app.services.api.render import message_out, template_out
from app.services.api.schemas import MessageHeaders, MessageIn, MessageOut, ProblemOut, TemplateList
from jobs.sending import enqueue_send_direct

bp = api_blueprint("api_messages", __name__)


@bp.post("/messages")
@endpoint("messages:write", {201: MessageOut, 200: MessageOut, 409: ProblemOut, 503: ProblemOut}, body=MessageIn,
          headers=MessageHeaders, tag="Messages")
def send_message():
    """Send an approved template (with its variables), or text inside the 24-hour window, to one number.

    Send an `Idempotency-Key` header (any unique text) so a retried request never sends twice: a retry answers 200
    with the first request's message and `Idempotent-Replayed: true`."""
    idempotency_key = messages.check_idempotency_key(request.headers.get("Idempotency-Key"))
    sent = messages.send(caller(), body(MessageIn), idempotency_key)
    if sent.queue_lane:
        enqueue_send_direct()
    headers = {"Location": url_for(".get_message", message_id=sent.message.id)}
    if sent.replayed:
        headers["Idempotent-Replayed"] = "true"
    return respond(sent.message, 200 if sent.replayed else 201, headers)


@bp.get("/messages/<int:message_id>")
@endpoint("messages:read", {200: MessageOut, 404: ProblemOut}, tag="Messages")
def get_message(message_id: int):
    """A message, its status and the time it reached each status."""
    return respond(message_out(messages.get_message(message_id)))


@bp.get("/templates")
@endpoint("templates:read", {200: TemplateList}, tag="Templates")
def list_templates():
    """Every template, with its status and the variables a send must fill."""
    return respond(TemplateList(data=[template_out(template) for template in campaigns.list_templates()]))
