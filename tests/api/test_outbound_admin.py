"""The admin pages of outbound webhooks: editing events, disabling and enabling, deleting, a new secret; CSRF and the
audit log."""

from __future__ import annotations

from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry
from app.services.api.outbound import signing
from tests.conftest import csrf_token_from, run_jobs
from tests.factories import outbound
from tests.factories.outbound import endpoint_row, make_endpoint

receiver = outbound.receiver  # fixture


def _token(client, page):
    return csrf_token_from(client.get(page).get_data(as_text=True))


def _audit(app):
    with app.app_context():
        return db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("outbound_webhook."))
                                  .order_by(AuditEntry.id)).all()


def test_admin_changes_the_events_then_disables_enables_and_deletes(app, admin_client, receiver):
    endpoint_id = make_endpoint(app, receiver, ["message.delivered"])
    page = f"/admin/outbound-webhooks/{endpoint_id}"
    response = admin_client.post(page, data={"csrf_token": _token(admin_client, page), "url": receiver.url,
                                             "description": "ERP", "events": ["message.read", "campaign.finished"]})
    assert response.status_code == 302
    assert endpoint_row(app, endpoint_id).events == ["message.read", "campaign.finished"]
    assert "Saved the endpoint." in admin_client.get(page).get_data(as_text=True)

    admin_client.post(f"{page}/disable", data={"csrf_token": _token(admin_client, page)})
    html = admin_client.get(page).get_data(as_text=True)
    assert "Disabled the endpoint." in html and ">Send a test event</button>" not in html
    admin_client.post(f"{page}/enable", data={"csrf_token": _token(admin_client, page)})
    assert endpoint_row(app, endpoint_id).enabled

    response = admin_client.post(f"{page}/delete", data={"csrf_token": _token(admin_client, page)},
                                 follow_redirects=True)
    html = response.get_data(as_text=True)
    assert f"Deleted the endpoint {receiver.url}" in html and "No endpoints yet" in html
    assert _audit(app) == ["outbound_webhook.create", "outbound_webhook.update", "outbound_webhook.disable",
                           "outbound_webhook.enable", "outbound_webhook.delete"]


def test_a_bad_edit_shows_why_and_changes_nothing(app, admin_client, receiver):
    endpoint_id = make_endpoint(app, receiver, ["message.delivered"])
    page = f"/admin/outbound-webhooks/{endpoint_id}"
    response = admin_client.post(page, data={"csrf_token": _token(admin_client, page), "url": receiver.url,
                                             "events": []})
    assert response.status_code == 422
    assert "Choose at least one event to receive." in response.get_data(as_text=True)
    assert endpoint_row(app, endpoint_id).events == ["message.delivered"]


def test_posts_without_a_csrf_token_are_refused(app, admin_client, receiver):
    endpoint_id = make_endpoint(app, receiver)
    assert admin_client.post(f"/admin/outbound-webhooks/{endpoint_id}/delete").status_code == 400
    assert endpoint_row(app, endpoint_id) is not None


def test_an_unknown_endpoint_is_a_404(admin_client):
    assert admin_client.get("/admin/outbound-webhooks/999").status_code == 404


def test_a_new_secret_signs_the_next_deliveries(app, admin_client, receiver):
    endpoint_id = make_endpoint(app, receiver)
    old_secret, page = receiver.secret, f"/admin/outbound-webhooks/{endpoint_id}"
    response = admin_client.post(f"{page}/rotate-secret", data={"csrf_token": _token(admin_client, page)},
                                 headers={"HX-Request": "true"})
    assert (response.status_code, response.headers["HX-Redirect"]) == (204, page)
    new_secret = endpoint_row(app, endpoint_id).secret
    html = admin_client.get(page).get_data(as_text=True)
    assert new_secret != old_secret and new_secret in html and "Made a new signing secret" in html

    admin_client.post(f"{page}/test", data={"csrf_token": _token(admin_client, page)})
    run_jobs(app)
    assert not receiver.received[-1].signature_ok  # the receiver still holds the old secret
    receiver.secret = new_secret
    assert signing.verify(new_secret, receiver.received[-1].headers[signing.TIMESTAMP_HEADER],
                          receiver.received[-1].body, receiver.received[-1].headers[signing.SIGNATURE_HEADER])
    assert _audit(app)[-1] == "outbound_webhook.rotate_secret"
