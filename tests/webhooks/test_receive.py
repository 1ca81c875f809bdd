"""The webhook endpoint: handshake, signature, size limit, stored before 200, database and Redis outages."""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

import jobs.webhooks
from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import Contact, WebhookEvent
from app.services.webhooks import intake
from jobs.webhooks import sweep_webhook_events
from tests.factories import webhooks as support
from tests.factories.webhooks import run_jobs

hooks, sim_api, sim_server, sim_receiver = support.hooks, support.sim_api, support.sim_server, support.sim_receiver
STOP_BODY = support.inbound_body(support.text("919800000001", "Hello"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_handshake_echoes_the_challenge_for_our_token(hooks):
    response = hooks.client.get("/webhooks/whatsapp", query_string={
        "hub.mode": "subscribe", "hub.verify_token": support.VERIFY_TOKEN, "hub.challenge": "1158201444"})
    assert response.status_code == 200 and response.get_data(as_text=True) == "1158201444"


@pytest.mark.parametrize("token", ["wrong-token", "", None])
def test_handshake_with_another_token_is_refused(hooks, token):
    args = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    if token is not None:
        args["hub.verify_token"] = token
    response = hooks.client.get("/webhooks/whatsapp", query_string=args)
    assert response.status_code == 403 and "1158201444" not in response.get_data(as_text=True)


def test_signed_webhook_is_stored_before_the_answer_and_needs_no_login_or_csrf(hooks):
    raw = json.dumps(STOP_BODY).encode()
    response = hooks.post(raw)
    assert response.status_code == 200
    [event] = hooks.events()  # stored and committed before 200, not yet processed
    assert event.body == raw.decode() and event.processed_at is None and event.attempts == 0
    run_jobs(hooks.app)
    [event] = hooks.events()
    assert event.processed_at is not None and "1 messages stored" in event.outcome


@pytest.mark.parametrize("signature", [
    None,  # missing
    "sha256=" + "0" * 64,  # wrong
    "sha1=abc",  # another scheme
    "garbage",
])
def test_bad_signatures_are_refused_and_nothing_is_stored(hooks, caplog, signature):
    headers = {"X-Hub-Signature-256": signature} if signature else {}
    with caplog.at_level(logging.WARNING):
        response = hooks.post(STOP_BODY, secret=None, **headers)
    assert response.status_code == 403
    assert hooks.events() == []
    assert "signature" in caplog.text and "Hello" not in caplog.text  # logged, without the body


def test_tampered_body_and_wrong_secret_are_refused(hooks):
    raw = json.dumps(STOP_BODY).encode()
    signature = support.sign(raw, support.APP_SECRET)
    tampered = raw.replace(b"Hello", b"STOP!")
    assert hooks.post(tampered, secret=None, **{"X-Hub-Signature-256": signature}).status_code == 403
    assert hooks.post(raw, secret="another-secret").status_code == 403
    hooks.app.config["WHATSAPP_APP_SECRET"] = None  # not configured: nothing can be verified
    assert hooks.post(raw).status_code == 403
    assert hooks.events() == []


def test_body_over_metas_three_megabytes_is_refused(hooks):
    body = {**STOP_BODY, "padding": "x" * (3 * 1024 * 1024)}
    assert hooks.post(body).status_code == 413
    assert hooks.events() == []


def test_signed_but_unusable_body_is_kept_and_marked_rejected(hooks):
    hooks.deliver(b'{"object": "page", "entry": []}')
    [event] = hooks.events()
    assert event.processed_at is not None and event.outcome.startswith("rejected: Field 'object'")


def test_database_down_answers_503_so_meta_retries(hooks, redis_url, tmp_path):
    broken = create_app(TestConfig(f"sqlite:///{tmp_path}/missing/dir/db.sqlite", redis_url))
    broken.config.update(hooks.app.config.get_namespace("WHATSAPP_", lowercase=False, trim_namespace=False))
    raw = json.dumps(STOP_BODY).encode()
    response = broken.test_client().post("/webhooks/whatsapp", data=raw, content_type="application/json",
                                         headers={"X-Hub-Signature-256": support.sign(raw, support.APP_SECRET)})
    assert response.status_code == 503


def test_redis_down_still_answers_200_and_the_sweeper_processes_the_event(hooks, database_url):
    cut_off = create_app(TestConfig(database_url, f"redis://127.0.0.1:{_closed_port()}/0"))
    cut_off.config.update(hooks.app.config.get_namespace("WHATSAPP_", lowercase=False, trim_namespace=False))
    raw = json.dumps(STOP_BODY).encode()
    response = cut_off.test_client().post("/webhooks/whatsapp", data=raw, content_type="application/json",
                                          headers={"X-Hub-Signature-256": support.sign(raw, support.APP_SECRET)})
    with cut_off.app_context():
        db.engine.dispose()
    assert response.status_code == 200
    [event] = hooks.events()
    assert event.processed_at is None
    run_jobs(hooks.app)  # nothing was queued
    assert hooks.events()[0].processed_at is None
    with hooks.app.app_context():
        assert sweep_webhook_events() == {"events": 0}  # too fresh: its job may still come
        db.session.execute(update(WebhookEvent).values(received_at=event.received_at - timedelta(minutes=2)))
        db.session.commit()
        assert sweep_webhook_events()["events"] == 1
        assert db.session.scalar(select(Contact.name).where(Contact.wa_id == "919800000001")) == "Asha Rao"
    assert hooks.events()[0].processed_at is not None


def test_purge_processed_events_keeps_recent_and_unfinished_ones(hooks):
    hooks.deliver(STOP_BODY, STOP_BODY)
    hooks.post(STOP_BODY)  # stored, never processed
    with hooks.app.app_context():
        first, second, unfinished = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        for event in (first, unfinished):
            event.received_at -= timedelta(days=40)
        db.session.commit()
        assert intake.purge_processed_events(30) == 1
        db.session.commit()
        assert db.session.scalars(select(WebhookEvent.id).order_by(WebhookEvent.id)).all() == [second.id,
                                                                                              unfinished.id]


def test_webhooks_arriving_while_a_drain_runs_queue_no_second_job(hooks, monkeypatch):
    monkeypatch.setattr(jobs.webhooks, "DRAIN_IDLE_SECONDS", 1.0)  # as in production: linger for more webhooks
    queue = hooks.app.extensions["queues"]["high"]
    assert hooks.post(STOP_BODY).status_code == 200 and queue.count == 1
    worker = threading.Thread(target=run_jobs, args=(hooks.app,))
    worker.start()
    support.wait_until(lambda: all(event.processed_at for event in hooks.events()))
    assert hooks.post(support.inbound_body(support.text("919800000002", "Hi"))).status_code == 200
    support.wait_until(lambda: all(event.processed_at for event in hooks.events()))  # by the drain already running
    worker.join(10)
    with hooks.app.app_context():
        assert len(queue.finished_job_registry.get_job_ids()) == 1  # one drain job did both
    assert len(hooks.events()) == 2 and not hooks.app.extensions["redis"].exists(jobs.webhooks.DRAIN_QUEUED)


def test_bodies_stored_at_once_by_many_threads_each_get_their_own_row(hooks):
    results, errors = {}, []

    def post_many(thread: int) -> None:
        try:
            with hooks.app.app_context():
                for number in range(25):
                    body = f'{{"thread": {thread}, "number": {number}}}'.encode()
                    results[body.decode()] = intake.store(body)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=post_many, args=(thread,)) for thread in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    stored = {event.id: event.body for event in hooks.events()}
    assert len(stored) == len(results) == 300
    assert all(stored[result.event_id] == body for body, result in results.items())  # each id is its own body


def test_an_event_stored_on_a_recent_sighting_of_the_drain_flag_is_applied_by_that_drain(hooks, monkeypatch):
    # The race the sighting cache must survive: a request saw the flag set (so it skips Redis), the drain frees the
    # flag, and only then does the request's event land. The drain's last look comes after the sighting expired.
    queue = hooks.app.extensions["queues"]["high"]
    assert hooks.post(STOP_BODY).status_code == 200 and queue.count == 1  # sets the flag and this process's sighting
    real_sleep, landed = jobs.webhooks.time.sleep, []

    def sleep(seconds: float) -> None:
        if seconds == jobs.webhooks.FLAG_SEEN_SECONDS and not landed:  # the drain just freed the flag
            # A sighting from just before (however long applying the first event took here).
            monkeypatch.setattr(jobs.webhooks, "_flag_seen_until", jobs.webhooks.time.monotonic() + seconds / 2)
            assert jobs.webhooks.enqueue_process_webhook_event(0) is None  # trusted the sighting: asked nothing
            landed.append(hooks.post(support.inbound_body(support.text("919800000002", "Hi"))).status_code)
        real_sleep(seconds)

    monkeypatch.setattr(jobs.webhooks.time, "sleep", sleep)
    run_jobs(hooks.app)
    assert landed == [200] and queue.count == 0
    assert [event.processed_at is not None for event in hooks.events()] == [True, True]  # both, by the one drain


def test_a_sighting_of_the_drain_flag_expires(hooks, monkeypatch):
    queue = hooks.app.extensions["queues"]["high"]
    monkeypatch.setattr(jobs.webhooks, "FLAG_SEEN_SECONDS", 2.0)  # ample for two posts on a slow machine
    assert hooks.post(STOP_BODY).status_code == 200 and queue.count == 1
    hooks.app.extensions["redis"].delete(jobs.webhooks.DRAIN_QUEUED)  # as a drain that finished does
    assert hooks.post(STOP_BODY).status_code == 200 and queue.count == 1  # within the sighting: not asked again
    support.wait_until(lambda: jobs.webhooks.time.monotonic() > jobs.webhooks._flag_seen_until)
    assert hooks.post(STOP_BODY).status_code == 200 and queue.count == 2  # after it: the flag is set anew


def test_a_lost_database_connection_costs_one_503_then_the_writer_reconnects(hooks):
    assert hooks.post(STOP_BODY).status_code == 200
    with hooks.app.app_context():
        writer = intake._group_commit(db.engine)
        writer.connection.connection.dbapi_connection.close()  # as a database restart leaves it
    assert hooks.post(STOP_BODY).status_code == 503  # Meta retries this one
    assert hooks.post(STOP_BODY).status_code == 200
    assert len(hooks.events()) == 2
