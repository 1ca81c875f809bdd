"""Fixtures for the WhatsApp boundary: a real simulator over HTTP and a local webhook receiver.

Fixture names start with sim_ or wa_ so they never collide with the app-wide fixtures in tests/conftest.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from app.whatsapp.client import WhatsAppClient
from app.whatsapp.settings import WhatsAppSettings
from app.whatsapp.sim_config import SimulatorConfig, WebhookBehaviour
from app.whatsapp.sim_server import SimulatorServer
from app.whatsapp.simulator import Simulator, create_simulator

FIXTURES = Path(__file__).parent / "fixtures"
ACCESS_TOKEN = "test-access-token"
APP_SECRET = "test-app-secret"
PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"


class WebhookReceiver:
    """A WSGI app recording what the simulator posts; `fail_next` makes it answer 500 that many times."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.received: list[tuple[str | None, bytes]] = []
        self.fail_next = 0
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self.changed:
            if self.fail_next > 0:
                self.fail_next -= 1
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [b"try again"]
            self.received.append((environ.get("HTTP_X_HUB_SIGNATURE_256"), body))
            self.changed.notify_all()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    def clear(self) -> None:
        with self.changed:
            self.received.clear()
            self.fail_next = 0

    def bodies(self) -> list[dict[str, Any]]:
        with self.changed:
            return [json.loads(body) for _, body in self.received]

    def statuses(self) -> list[dict[str, Any]]:
        return [status for body in self.bodies() for entry in body["entry"] for change in entry["changes"]
                for status in change["value"].get("statuses", [])]

    def wait_for(self, predicate: Callable[[WebhookReceiver], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"webhooks not received in {timeout}s; got {self.bodies()}")
            with self.changed:
                self.changed.wait(min(remaining, 0.05))


class SimHandle:
    """The running simulator as tests see it: its URL, its in-process state, and its control API."""

    def __init__(self, url: str, simulator: Simulator):
        self.url, self.simulator = url, simulator

    def configure(self, **changes: Any) -> dict[str, Any]:
        response = requests.post(f"{self.url}/_sim/config", json=changes, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def ledger(self, detail: bool = False) -> dict[str, Any]:
        response = requests.get(f"{self.url}/_sim/ledger", params={"detail": "1" if detail else "0"}, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    def inbound(self, **spec: Any) -> requests.Response:
        return requests.post(f"{self.url}/_sim/inbound", json=spec, timeout=10)


@pytest.fixture(scope="session")
def sim_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    server = SimulatorServer(receiver, "127.0.0.1", 0).start()
    receiver.url = f"{server.url}/webhooks/whatsapp"
    yield receiver
    server.shutdown()


@pytest.fixture(scope="session")
def sim_server(sim_receiver: WebhookReceiver) -> Iterator[SimHandle]:
    config = SimulatorConfig(
        access_token=ACCESS_TOKEN, app_secret=APP_SECRET, phone_number_id=PHONE_NUMBER_ID, waba_id=WABA_ID,
        webhook_url=sim_receiver.url, template_approval_delay_ms=50,
        webhooks=WebhookBehaviour(enabled=False, sent_delay_ms=5, delivered_delay_ms=10, read_delay_ms=15,
                                  failed_delay_ms=5, retry_delay_ms=20, timeout_s=2))
    simulator = create_simulator(config)
    server = SimulatorServer(simulator, "127.0.0.1", 0).start()
    yield SimHandle(server.url, simulator)
    server.shutdown()
    simulator.close()


@pytest.fixture
def sim_api(sim_server: SimHandle, sim_receiver: WebhookReceiver) -> SimHandle:
    """The shared simulator, reset to its startup state, with an empty receiver."""
    sim_server.simulator.reset()
    sim_receiver.clear()
    return sim_server


@pytest.fixture
def wa_settings(sim_api: SimHandle) -> WhatsAppSettings:
    return WhatsAppSettings(base_url=sim_api.url, api_version="v23.0",
                            access_token=ACCESS_TOKEN, phone_number_id=PHONE_NUMBER_ID,
                            business_account_id=WABA_ID, app_secret=APP_SECRET, verify_token="verify-me",
                            concurrency=4, connect_timeout=2, read_timeout=2)


@pytest.fixture
def wa_client(wa_settings: WhatsAppSettings) -> Iterator[WhatsAppClient]:
    client = WhatsAppClient(wa_settings)
    yield client
    client.close()


@pytest.fixture
def wa_fixture() -> Callable[[str], bytes]:
    """Raw bytes of a webhook body under tests/whatsapp/fixtures."""
    return lambda name: (FIXTURES / name).read_bytes()
