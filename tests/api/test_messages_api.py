"""/api/v1/messages and /templates: send through the one send path, idempotently; read the status history."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import func, select

from app.clock import utcnow
from app.extensions import db
from app.models import Conversation, Message, MessageTemplate, TemplateStatus
from app.services.api import messages
from tests.factories.api import ApiClient
from tests.factories.campaigns import ORDER_UPDATE, add_contacts, make_template, phone

ORDER = {"to": phone(1), "template": {"name": "order_update", "language": "en_US"},
         "variables": {"body.1": "Asha", "body.2": "#1042"}}


def _messages(app) -> list[Message]:
    with app.app_context():
        return list(db.session.scalars(select(Message).order_by(Message.id)))


def test_a_template_send_is_queued_on_the_send_path(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    response = api.post("/messages", json=ORDER)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "pending" and body["source"] == "api" and body["to"] == phone(1)
    assert "Asha" in body["body"] and "#1042" in body["body"]
    assert response.headers["Location"].endswith(f"/api/v1/messages/{body['id']}")
    [message] = _messages(app)
    assert message.source == "api" and message.run_id is None and message.parameters["template"] == "order_update"
    assert app.extensions["redis"].keys("rq:job:*")  # the direct lane was queued
    with app.app_context():  # like a campaign's, an API send leaves the inbox alone
        assert db.session.scalars(select(Conversation)).all() == []


def test_template_problems_name_the_field(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    with app.app_context():
        db.session.add(MessageTemplate(name="promo", language="en_US", category="MARKETING",
                                       status=TemplateStatus.PENDING, components=ORDER_UPDATE))
        db.session.commit()
    cases = [({**ORDER, "template": {"name": "promo", "language": "en_US"}}, ["template"]),
             ({**ORDER, "template": {"name": "nope", "language": "en_US"}}, ["template"]),
             ({**ORDER, "variables": {"body.1": "Asha"}}, ["variables.body.2"]),
             ({**ORDER, "variables": {**ORDER["variables"], "body.9": "x"}}, ["variables.body.9"]),
             ({**ORDER, "to": "98765"}, ["to"]),
             ({**ORDER, "to": 98765}, ["to"]),
             ({**ORDER, "text": "hi"}, ["body"]),
             ({**ORDER, "priority": "high"}, ["priority"])]
    for payload, fields in cases:
        response = api.post("/messages", json=payload)
        assert response.status_code == 422, payload
        assert [error["field"] for error in response.get_json()["errors"]] == fields, response.get_json()
    assert _messages(app) == []


def test_text_only_inside_the_24_hour_window(app, api):
    contact_id = add_contacts(app, 1)[0]
    response = api.post("/messages", json={"to": phone(1), "text": "Your parcel is on its way"})
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "text"
    with app.app_context():
        db.session.add(Conversation(contact_id=contact_id, last_inbound_at=utcnow() - timedelta(hours=1)))
        db.session.commit()
    response = api.post("/messages", json={"to": phone(1), "text": "Your parcel is on its way"})
    assert response.status_code == 201 and response.get_json()["type"] == "text"


def test_an_opted_out_customer_is_not_sent_to(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    contact_id = add_contacts(app, 1)[0]
    api.post(f"/contacts/{contact_id}/opt-out")
    response = api.post("/messages", json=ORDER)
    assert response.status_code == 422 and response.get_json()["errors"][0]["field"] == "to"
    assert _messages(app) == []


def test_a_retry_with_the_same_idempotency_key_sends_once(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    headers = {"Idempotency-Key": "order-1042"}
    first = api.post("/messages", json=ORDER, headers=headers)
    again = api.post("/messages", json=ORDER, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json()["id"] == first.get_json()["id"]
    changed = api.post("/messages", json={**ORDER, "variables": {"body.1": "Ravi", "body.2": "#1"}}, headers=headers)
    assert changed.status_code == 422 and changed.get_json()["errors"][0]["field"] == "Idempotency-Key"
    assert len(_messages(app)) == 1
    assert api.post("/messages", json=ORDER, headers={"Idempotency-Key": "other"}).status_code == 201
    assert len(_messages(app)) == 2


def test_concurrent_retries_send_once(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    clients = [ApiClient(app.test_client(), api.key) for _ in range(8)]
    start, answers = threading.Barrier(len(clients)), []

    def retry(client):
        start.wait()
        answers.append(client.post("/messages", json={**ORDER, "to": phone(7)}, headers={"Idempotency-Key": "k1"}))

    threads = [threading.Thread(target=retry, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answer.status_code for answer in answers) == [200] * 7 + [201], \
        [answer.get_json() for answer in answers]
    assert len({answer.get_json()["id"] for answer in answers}) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) == 1


def test_a_message_and_its_status_history(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    message_id = api.post("/messages", json=ORDER).get_json()["id"]
    with app.app_context():
        message = db.session.get(Message, message_id)
        # WhatsApp's whole-second time can fall before our own queueing time of the same second
        message.status, message.sent_at = "delivered", message.created_at.replace(microsecond=0)
        message.created_at = message.created_at.replace(microsecond=410_000)
        message.delivered_at = message.sent_at + timedelta(seconds=3)
        db.session.commit()
    body = api.get(f"/messages/{message_id}").get_json()
    assert body["status"] == "delivered"
    assert [step["status"] for step in body["history"]] == ["pending", "sent", "delivered"]
    assert api.get("/messages/999999").status_code == 404


def test_templates_are_listed_with_status_and_variables(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    [template] = api.get("/templates").get_json()["data"]
    assert template["status"] == "APPROVED"
    assert [variable["key"] for variable in template["variables"]] == ["body.1", "body.2"]


def test_concurrent_sends_to_new_numbers_each_get_their_own_contact(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    clients = [ApiClient(app.test_client(), api.key) for _ in range(8)]
    start, answers = threading.Barrier(len(clients)), {}

    def send(number, client):
        start.wait()
        answers[number] = client.post("/messages", json={**ORDER, "to": phone(number)},
                                      headers={"Idempotency-Key": f"order-{number}"})

    threads = [threading.Thread(target=send, args=(number, client)) for number, client in enumerate(clients, 20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(answer.status_code for answer in answers.values()) == [201] * 8
    for number, answer in answers.items():
        assert answer.get_json()["to"] == phone(number)
        assert api.get(f"/contacts/{answer.get_json()['contact_id']}").get_json()["phone"] == phone(number)
    assert len(_messages(app)) == 8


def test_a_retry_of_an_accepted_send_is_answered_even_after_an_opt_out(app, api):
    make_template(app, "order_update", ORDER_UPDATE)
    headers = {"Idempotency-Key": "order-7"}
    first = api.post("/messages", json=ORDER, headers=headers)
    api.post(f"/contacts/{first.get_json()['contact_id']}/opt-out")
    again = api.post("/messages", json=ORDER, headers=headers)
    assert again.status_code == 200 and again.get_json()["id"] == first.get_json()["id"]
    assert api.post("/messages", json=ORDER).status_code == 422  # a new send is refused
    assert len(_messages(app)) == 1


def test_a_template_paused_after_a_send_is_refused_within_seconds(app, api, monkeypatch):
    template_id = make_template(app, "order_update", ORDER_UPDATE)
    assert api.post("/messages", json=ORDER).status_code == 201
    with app.app_context():
        db.session.get(MessageTemplate, template_id).status = TemplateStatus.PAUSED
        db.session.commit()
    later = time.monotonic() + messages.APPROVED_FOR
    monkeypatch.setattr(messages.time, "monotonic", lambda: later)
    response = api.post("/messages", json=ORDER)
    assert response.status_code == 422 and "paused" in response.get_json()["errors"][0]["message"]
    assert len(_messages(app)) == 1
