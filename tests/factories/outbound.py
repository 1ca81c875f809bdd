"""Shared by the outbound webhook tests (there are no tests here): a real receiver over HTTP that checks our HMAC,
endpoints made through the service, and reading what was delivered.

Test modules pick up the fixture by assigning it: `receiver = outbound.receiver`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import OutboundDelivery, OutboundEndpoint, OutboundEvent, Setting
from app.services.api.outbound import endpoints, events, signing


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted code (then `default`), after checking the signature with `secret`:
    a delivery whose signature does not match gets 401, as a careful receiver would answer."""

    url: str
    secret: str = ""
    script: list[int] = field(default_factory=list)
    default: int = 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, headers: dict[str, str], body: bytes) -> int:
        ok = signing.verify(self.secret, headers.get(signing.TIMESTAMP_HEADER, ""), body,
                            headers.get(signing.SIGNATURE_HEADER, ""))
        with self.lock:
            self.received.append(Received(headers, body, ok))
            code = self.script.pop(0) if self.script else self.default
        return code if ok else 401


def _handler(receiver: Receiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            code = receiver.answer(dict(self.headers.items()), body)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    return Handler


@pytest.fixture
def receiver(app):
    """A receiver on 127.0.0.1 (private addresses allowed, as the tests' setting), stopped after the test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    found = Receiver(url=f"http://127.0.0.1:{server.server_port}/hooks")
    server.RequestHandlerClass = _handler(found)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    allow_private(app, True)
    yield found
    server.shutdown()
    server.server_close()
    thread.join(5)


def allow_private(app, allowed: bool) -> None:
    """The admin setting that lets endpoints on private and loopback addresses receive webhooks."""
    with app.app_context():
        row = db.session.get(Setting, "outbound_private_addresses") or Setting(key="outbound_private_addresses")
        row.value = "allow" if allowed else "refuse"
        db.session.add(row)
        db.session.commit()


def make_endpoint(app, receiver: Receiver, wanted=tuple(events.EVENT_TYPES)) -> int:
    """An enabled endpoint for the receiver (which learns its secret); returns its id."""
    with app.app_context():
        endpoint = endpoints.create(endpoints.EndpointForm(receiver.url, "Order system", list(wanted)), None)
        receiver.secret = endpoint.secret
        return endpoint.id


def endpoint_row(app, endpoint_id: int) -> OutboundEndpoint:
    with app.app_context():
        endpoint = db.session.get(OutboundEndpoint, endpoint_id)
        db.session.expunge_all()
        return endpoint


def deliveries(app, endpoint_id: int | None = None) -> list[OutboundDelivery]:
    with app.app_context():
        statement = select(OutboundDelivery).order_by(OutboundDelivery.id)
        if endpoint_id is not None:
            statement = statement.where(OutboundDelivery.endpoint_id == endpoint_id)
        rows = db.session.scalars(statement).all()
        db.session.expunge_all()
        return list(rows)


def outbox(app) -> list[tuple[str, dict]]:
    """(type, payload) of every event in the outbox, oldest first."""
    with app.app_context():
        return [(row.event_type, row.payload) for row in
                db.session.scalars(select(OutboundEvent).order_by(OutboundEvent.id))]
