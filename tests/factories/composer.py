"""Fixtures for the template and composer tests: an in-process Cloud API simulator and template rows.

Test modules load these with `pytest_plugins = ["tests.factories.composer"]`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.security import generate_password_hash

from app.extensions import db
from app.models import MessageTemplate, Role, TemplateStatus, User
from app.whatsapp.sim_config import SimulatorConfig, WebhookBehaviour
from app.whatsapp.sim_server import SimulatorServer
from app.whatsapp.simulator import Simulator, create_simulator

ACCESS_TOKEN = "composer-test-token"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"

POSITIONAL = [
    {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["#1042"]}},
    {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships to {{3}} today.",
     "example": {"body_text": [["Asha", "#1042", "Pune"]]}},
    {"type": "FOOTER", "text": "Thank you for shopping with us"},
    {"type": "BUTTONS", "buttons": [
        {"type": "URL", "text": "Track order", "url": "https://shop.example/track/{{1}}",
         "example": ["https://shop.example/track/A1042"]},
        {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+919800000000"}]},
]
NAMED = [
    {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://scontent.example/offer.jpg"]}},
    {"type": "BODY", "text": "Hi {{first_name}}, enjoy {{discount}} off this {{festival}}!",
     "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Asha"},
                                            {"param_name": "discount", "example": "20%"},
                                            {"param_name": "festival", "example": "Diwali"}]}},
    {"type": "FOOTER", "text": "Tap Stop promotions to opt out"},
    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Shop now"},
                                    {"type": "QUICK_REPLY", "text": "Stop promotions"},
                                    {"type": "COPY_CODE", "example": "DIWALI20"}]},
]


QUICK_PASSWORD = "correct-horse-battery"


@pytest.fixture
def quick_user(app):
    """A staff user whose password hash is cheap to check: scrypt costs about a second per user and sign-in."""
    with app.app_context():
        user = User(email="shop@example.com", role=Role.STAFF, active=True,
                    password_hash=generate_password_hash(QUICK_PASSWORD, method="pbkdf2:sha256:1000"))
        db.session.add(user)
        db.session.commit()
        return user.email


@pytest.fixture
def quick_staff_client(client, auth, quick_user):
    auth.login(quick_user, QUICK_PASSWORD)
    return client


class Sim:
    def __init__(self, url: str, simulator: Simulator):
        self.url, self.simulator = url, simulator


@pytest.fixture(scope="session")
def sim_server() -> Iterator[Sim]:
    config = SimulatorConfig(access_token=ACCESS_TOKEN, phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID,
                             template_approval_delay_ms=60_000, webhooks=WebhookBehaviour(enabled=False))
    simulator = create_simulator(config)
    server = SimulatorServer(simulator, "127.0.0.1", 0).start()
    yield Sim(server.url, simulator)
    server.shutdown()
    simulator.close()


@pytest.fixture
def sim(app, sim_server: Sim) -> Sim:
    """The simulator reset to its seeded templates, and the app pointed at it."""
    sim_server.simulator.reset()
    app.config.update(WHATSAPP_API_BASE_URL=sim_server.url, WHATSAPP_ACCESS_TOKEN=ACCESS_TOKEN,
                      WHATSAPP_PHONE_NUMBER_ID=PHONE_NUMBER_ID, WHATSAPP_BUSINESS_ACCOUNT_ID=WABA_ID)
    return sim_server


@pytest.fixture
def make_template(app):
    """Factory: make_template(name, components=POSITIONAL, status="APPROVED", …) -> id."""

    def make(name: str = "order_update", components: list[dict[str, Any]] | None = None,
             status: str = TemplateStatus.APPROVED, category: str = "UTILITY", language: str = "en_US",
             parameter_format: str = "POSITIONAL", **columns) -> int:
        with app.app_context():
            row = MessageTemplate(name=name, language=language, category=category, status=status,
                                  parameter_format=parameter_format,
                                  components=POSITIONAL if components is None else components, **columns)
            db.session.add(row)
            db.session.commit()
            return row.id

    return make


@pytest.fixture
def named_template(make_template) -> int:
    return make_template("festival_offer", NAMED, category="MARKETING", parameter_format="NAMED")
