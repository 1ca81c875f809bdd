"""“Send test”: the campaign's message, as its first recipient would get it, sent to a number staff type in.

A test is not part of the campaign: it writes no Message row and touches no counter, only an audit entry, so the
campaign's figures stay those of its real recipients.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.extensions import db
from app.models import Campaign, TemplateStatus
from app.services.admin import audit, settings
from app.services.campaigns import audience
from app.services.contacts import phones
from app.services.errors import NotFound, ServiceError
from app.services.sending.sender import new_client
from app.services.templates import rendering
from app.whatsapp.client import SendResult

FIELD = "test_phone"


@dataclass(frozen=True)
class TestSend:
    __test__ = False  # not a pytest test class

    ok: bool
    phone: str  # E.164
    message: str  # what to tell the person who asked


def send_test(campaign_id: int, raw_phone: str) -> TestSend:
    """Send the campaign's message to one typed number; ServiceError(field="test_phone") for a bad number."""
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("That campaign does not exist.")
    phone = _phone(raw_phone)
    _check_template(campaign)
    contacts = audience.sample(campaign.audience, 1)
    rendered = rendering.render_sample(campaign, contacts[0] if contacts else None)
    name, language, sender = campaign.template.name, campaign.template.language, campaign.phone_number_id
    db.session.commit()  # end the read transaction: no connection is held while WhatsApp answers
    with new_client(sender) as client:
        result = client.send_template(phones.wa_id(phone), name, language, rendered.components)
    outcome = TestSend(result.ok, phone, _message(result, phone))
    _record(campaign, outcome, result)
    return outcome


def _phone(raw: str) -> str:
    try:
        return phones.normalise_phone(raw, settings.get("default_region"))
    except phones.InvalidPhone as error:
        raise ServiceError(f"{error.reason}. Type the number with its country code, e.g. +91 98765 43210.",
                           field=FIELD) from None


def _check_template(campaign: Campaign) -> None:
    if campaign.template is None:
        raise ServiceError("Choose a template before sending a test.")
    if campaign.template.status != TemplateStatus.APPROVED:
        raise ServiceError(f"The template “{campaign.template.name}” is not approved, so WhatsApp would refuse it.")


def _message(result: SendResult, phone: str) -> str:
    if result.ok:
        return f"Test sent to {phone}. It should arrive within a minute."
    info = result.error_info()
    explanation = f"{info.title}: {info.explanation}" if info else "WhatsApp did not accept it."
    return f"The test to {phone} was not sent. {explanation}"


def _record(campaign: Campaign, outcome: TestSend, result: SendResult) -> None:
    verb = "Sent" if outcome.ok else "Tried to send"
    audit.record("campaign.test_send", f"{verb} a test of “{campaign.name}” to {outcome.phone}",
                 target=f"campaign:{campaign.id}",
                 details={"ok": outcome.ok, "wamid": result.wamid, "error_code": result.error_code})
    db.session.commit()
