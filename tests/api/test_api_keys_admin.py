"""Admin → API keys (admins only, CSRF-protected, audited) and the API reference page (anyone signed in)."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.extensions import db
from app.models import ApiKey, AuditEntry
from app.template_helpers import inline_code
from tests.conftest import csrf_token_from


def _create(client, name: str, scopes: list[str]):
    token = csrf_token_from(client.get("/admin/api-keys").get_data(as_text=True))
    return client.post("/admin/api-keys", data={"name": name, "scopes": scopes, "csrf_token": token})


def test_staff_cannot_manage_keys(staff_client):
    assert staff_client.get("/admin/api-keys").status_code == 403


def test_an_admin_creates_a_key_that_works_and_is_shown_once(app, admin_client):
    response = _create(admin_client, "Shop orders", ["messages:write", "contacts:read"])
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-api-key">(bk_[^<]+)<', html).group(1)
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert me["name"] == "Shop orders" and me["scopes"] == ["contacts:read", "messages:write"]
    listing = admin_client.get("/admin/api-keys").get_data(as_text=True)
    assert "Shop orders" in listing and secret not in listing and f"bk_{me['prefix']}_" in listing
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.action).where(AuditEntry.action == "api_key.create"))


def test_creating_without_a_name_or_permission_says_what_is_missing(admin_client):
    response = _create(admin_client, "", ["messages:write"])
    assert response.status_code == 422 and "Give the key a name" in response.get_data(as_text=True)
    response = _create(admin_client, "Shop", [])
    assert response.status_code == 422 and "at least one permission" in response.get_data(as_text=True)


def test_a_form_without_its_csrf_token_is_refused(app, admin_client):
    response = admin_client.post("/admin/api-keys", data={"name": "Sneaky", "scopes": ["contacts:read"]})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalars(select(ApiKey)).all() == []


def test_an_admin_revokes_a_key(app, admin_client):
    html = _create(admin_client, "Old shop", ["contacts:read"]).get_data(as_text=True)
    secret = re.search(r'id="new-api-key">(bk_[^<]+)<', html).group(1)
    with app.app_context():
        key_id = db.session.scalars(select(ApiKey.id)).one()
    token = csrf_token_from(admin_client.get("/admin/api-keys").get_data(as_text=True))
    response = admin_client.post(f"/admin/api-keys/{key_id}/revoke", data={"csrf_token": token},
                                 follow_redirects=True)
    assert "Revoked “Old shop”" in response.get_data(as_text=True)
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    with app.app_context():
        assert db.session.scalar(select(AuditEntry.summary).where(AuditEntry.action == "api_key.revoke"))


def test_the_reference_page_lists_every_endpoint_for_anyone_signed_in(client, staff_client):
    html = staff_client.get("/api-reference").get_data(as_text=True)
    for text in ("POST /api/v1/messages", "GET /api/v1/contacts", "Idempotency-Key", "ContactIn",
                 "POST /api/v1/campaigns/{campaign_id}/launch", "problem+json"):
        assert text in html
    assert "/admin/api-keys" not in html  # the link to manage keys is for admins only
    assert "<code>next_cursor</code>" in html and "`" not in html  # names in descriptions read as code


def test_backticked_names_become_code_and_everything_else_stays_escaped():
    assert str(inline_code("pass `cursor` <b>back</b>")) == "pass <code>cursor</code> &lt;b&gt;back&lt;/b&gt;"
    assert str(inline_code("`<script>`")) == "<code>&lt;script&gt;</code>" and str(inline_code(None)) == ""


def test_the_reference_page_needs_sign_in(app):
    response = app.test_client().get("/api-reference")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
