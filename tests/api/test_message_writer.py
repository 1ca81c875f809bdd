"""The API's group commit: sends written together still succeed or fail one by one."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.clock import utcnow
from app.extensions import db
from app.models import Message
from app.services.api import keys, message_writer
from app.services.sending import direct
from tests.factories.campaigns import add_contacts


def _send(api_key_id: int, contact_id: int, key: str) -> message_writer.PendingSend:
    row = direct.text_row(contact_id, f"order {key}", "api", utcnow())
    return message_writer.PendingSend(row, "+910000000000", idempotency={
        "api_key_id": api_key_id, "key": key, "request_hash": "0" * 64, "created_at": utcnow()})


def test_a_bad_row_fails_alone(app):
    [contact_id] = add_contacts(app, 1)
    with app.app_context():
        engine, key_id = db.engine, keys.create_key("Shop", ["messages:write"], None)[0].id
    sends = [_send(key_id, contact_id, f"good-{n}") for n in range(5)] + [_send(key_id, 10**9, "no-such-contact")]
    start, results = threading.Barrier(len(sends)), {}

    def write(send):
        start.wait()
        try:
            results[send.idempotency["key"]] = message_writer.write(engine, send)
        except Exception as error:  # noqa: BLE001 - the bad one's error is what we check
            results[send.idempotency["key"]] = error

    threads = [threading.Thread(target=write, args=(send,)) for send in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert isinstance(results.pop("no-such-contact"), IntegrityError)
    assert all(written.message_id for written in results.values())
    with app.app_context():
        bodies = db.session.scalars(select(Message.body).order_by(Message.id)).all()
    assert sorted(bodies) == [f"order good-{n}" for n in range(5)]



def test_a_quiet_writer_gives_its_connection_back(app, monkeypatch):
    monkeypatch.setattr(message_writer, "IDLE_SECONDS", 0.2)
    [contact_id] = add_contacts(app, 1)
    with app.app_context():
        engine, key_id = db.engine, keys.create_key("Shop", ["messages:write"], None)[0].id
    assert message_writer.write(engine, _send(key_id, contact_id, "one")).message_id
    writer = message_writer._writer(engine)
    deadline = time.monotonic() + 5
    while writer.connection is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.connection is None  # a test run or a quiet shop holds no connection for it
    assert message_writer.write(engine, _send(key_id, contact_id, "two")).message_id  # and it opens one again
