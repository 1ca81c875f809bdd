"""Outbound webhook deliveries: signed as documented, retried with backoff, given up after 24 hours, an endpoint
disabled after 3 days of failures, and redelivered from the admin page."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from app.services.api.outbound import endpoints, signing
from jobs.outbound_webhooks import sweep_outbound_webhooks
from tests.conftest import csrf_token_from, run_jobs
from tests.factories import outbound
from tests.factories.outbound import deliveries, endpoint_row, make_endpoint

receiver = outbound.receiver  # fixture


def _send_test(app, endpoint_id):
    with app.app_context():
        endpoints.send_test(endpoint_id)


def _sweep(app):
    with app.app_context():
        return sweep_outbound_webhooks()


def _post(client, url, page):
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token})


def test_a_test_event_arrives_signed_and_shows_in_the_log(app, admin_client, receiver):
    endpoint_id = make_endpoint(app, receiver)
    page = f"/admin/outbound-webhooks/{endpoint_id}"
    response = _post(admin_client, f"{page}/test", page)
    assert response.status_code == 302
    run_jobs(app)

    [got] = receiver.received
    assert got.signature_ok
    assert got.json["type"] == "ping"
    assert got.headers[signing.EVENT_ID_HEADER] == got.json["id"]
    assert got.headers[signing.SIGNATURE_HEADER].startswith("sha256=")
    html = admin_client.get(page).get_data(as_text=True)
    assert "delivered" in html and ">200<" in html and got.json["id"] in html


def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(app, receiver):
    endpoint_id = make_endpoint(app, receiver)
    receiver.secret = "whsec_not-the-one"
    _send_test(app, endpoint_id)
    _sweep(app)
    [delivery] = deliveries(app)
    assert not receiver.received[0].signature_ok
    assert (delivery.status, delivery.response_code, delivery.attempts) == ("pending", 401, 1)


def test_failures_are_retried_with_growing_delays_then_succeed(app, receiver, clock):
    receiver.script = [500, 503]
    endpoint_id = make_endpoint(app, receiver)
    _send_test(app, endpoint_id)
    delays = []
    for _ in range(2):
        _sweep(app)
        [delivery] = deliveries(app)
        assert delivery.status == "pending" and delivery.error.startswith("Answered 5")
        delays.append((delivery.next_attempt_at - clock.now).total_seconds())
        assert endpoint_row(app, endpoint_id).failing_since is not None
        assert _sweep(app)["delivered"] == 0  # not due yet
        clock.now = delivery.next_attempt_at
    _sweep(app)

    [delivery] = deliveries(app)
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 200)
    assert 22 <= delays[0] <= 38 and 45 <= delays[1] <= 75  # 30 s then 60 s, each with ±25 % jitter
    assert len({got.headers[signing.EVENT_ID_HEADER] for got in receiver.received}) == 1  # one event, three tries
    assert endpoint_row(app, endpoint_id).failing_since is None


def test_a_delivery_is_given_up_after_24_hours(app, admin_client, receiver, clock):
    receiver.default = 500
    endpoint_id = make_endpoint(app, receiver)
    _send_test(app, endpoint_id)
    start = clock.now
    while deliveries(app)[0].status == "pending":
        _sweep(app)
        clock.now = max(deliveries(app)[0].next_attempt_at or clock.now, clock.now)
    [delivery] = deliveries(app)
    assert delivery.status == "failed" and delivery.last_attempt_at - start <= timedelta(hours=24)
    assert delivery.attempts > 5
    assert "given up" in admin_client.get(f"/admin/outbound-webhooks/{endpoint_id}").get_data(as_text=True)


def test_an_endpoint_failing_for_3_days_is_disabled_with_a_notice(app, admin_client, receiver, clock):
    receiver.default = 500
    endpoint_id = make_endpoint(app, receiver)
    _send_test(app, endpoint_id)
    _sweep(app)
    clock.now += timedelta(days=2, hours=23)
    _send_test(app, endpoint_id)
    _sweep(app)
    assert endpoint_row(app, endpoint_id).enabled  # failing for less than 3 days
    clock.now += timedelta(hours=1, minutes=1)
    _send_test(app, endpoint_id)
    _sweep(app)

    endpoint = endpoint_row(app, endpoint_id)
    assert not endpoint.enabled and "every delivery failed for 3 days" in endpoint.disabled_reason
    banner = admin_client.get("/").get_data(as_text=True)
    assert f'id="outbound-disabled-{endpoint_id}"' in banner and "Webhook endpoint disabled" in banner
    with app.app_context():
        assert db.session.scalars(select(AuditEntry.action)).all().count("outbound_webhook.disable") == 1
    # Nothing more goes out to it until an admin enables it again, which also clears the notice.
    received = len(receiver.received)
    clock.now += timedelta(hours=2)
    _sweep(app)
    assert len(receiver.received) == received
    page = f"/admin/outbound-webhooks/{endpoint_id}"
    _post(admin_client, f"{page}/enable", page)
    assert "Webhook endpoint disabled" not in admin_client.get("/").get_data(as_text=True)


def test_a_success_ends_the_failing_streak(app, receiver, clock):
    receiver.script = [500]
    endpoint_id = make_endpoint(app, receiver)
    _send_test(app, endpoint_id)
    _sweep(app)
    clock.now += timedelta(days=2)
    _send_test(app, endpoint_id)
    _sweep(app)  # the new test event and the retry both succeed
    clock.now += timedelta(days=2)
    receiver.default = 500
    _send_test(app, endpoint_id)
    _sweep(app)
    assert endpoint_row(app, endpoint_id).enabled


def test_redeliver_from_the_admin_page_sends_the_same_event_again(app, admin_client, receiver):
    endpoint_id = make_endpoint(app, receiver)
    _send_test(app, endpoint_id)
    _sweep(app)
    [delivery] = deliveries(app)
    page = f"/admin/outbound-webhooks/{endpoint_id}"
    assert "Redeliver" in admin_client.get(page).get_data(as_text=True)

    response = _post(admin_client, f"{page}/deliveries/{delivery.id}/redeliver", page)
    assert response.status_code == 302
    assert "Queued event" in admin_client.get(page).get_data(as_text=True)
    run_jobs(app)

    first, second = receiver.received
    assert first.headers[signing.EVENT_ID_HEADER] == second.headers[signing.EVENT_ID_HEADER]
    assert first.body == second.body and second.signature_ok
    assert deliveries(app)[0].attempts == 2


def test_staff_cannot_see_or_change_endpoints(app, staff_client, receiver):
    endpoint_id = make_endpoint(app, receiver)
    assert staff_client.get("/admin/outbound-webhooks/").status_code == 403
    assert staff_client.post(f"/admin/outbound-webhooks/{endpoint_id}/delete").status_code in (400, 403)


def test_the_log_is_kept_30_days_but_waiting_deliveries_stay(app, receiver, clock):
    endpoint_id = make_endpoint(app, receiver)
    _send_test(app, endpoint_id)
    _sweep(app)  # delivered
    receiver.default = 500
    clock.now += timedelta(days=1)
    _send_test(app, endpoint_id)
    _sweep(app)  # failed once, to be retried
    with app.app_context():
        endpoints.set_enabled(endpoint_id, False)  # held while disabled: it still waits, whatever its age
    clock.now += timedelta(days=28, hours=23)
    assert _sweep(app)["purged"] == 0  # the delivered one is not 30 days old yet
    clock.now += timedelta(days=10)
    assert _sweep(app)["purged"] == 1
    [left] = deliveries(app)
    assert left.status == "pending" and left.attempts == 1
