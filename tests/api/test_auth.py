"""Who may call the API: bearer keys only, scoped, revocable, rate-limited; never a session cookie."""

from __future__ import annotations

from datetime import timedelta

from app.extensions import db
from app.models import ApiKey, Role
from app.services.api import keys
from tests.factories.api import ApiClient, make_key


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"].startswith("/api/v1/")
    return body


def test_a_good_key_is_accepted_and_says_who_it_is(app, api):
    response = api.get("/me")
    assert response.status_code == 200
    assert response.get_json()["name"] == "Shop"


def test_a_request_without_a_key_gets_401_with_a_challenge(client):
    response = client.get("/api/v1/contacts")
    body = _problem(response, 401)
    assert "Authorization: Bearer" in body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_or_malformed_key_gets_401(app, client):
    real = make_key(app)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    for value in (f"Bearer {forged}", "Bearer not-a-key", f"Basic {real}", real):
        assert _problem(client.get("/api/v1/me", headers={"Authorization": value}), 401)


def test_a_revoked_key_gets_401(app):
    api = ApiClient(app.test_client(), make_key(app))
    with app.app_context():
        keys.revoke_key(db.session.scalars(db.select(ApiKey)).one().id)
    assert "revoked" in _problem(api.get("/me"), 401)["detail"]


def test_a_key_without_the_scope_gets_403_naming_it(app):
    api = ApiClient(app.test_client(), make_key(app, ["contacts:read"]))
    assert api.get("/contacts").status_code == 200
    assert "contacts:write" in _problem(api.post("/contacts", json={"phone": "9876543210"}), 403)["detail"]
    assert _problem(api.get("/templates"), 403)


def test_a_session_cookie_does_not_open_the_api(admin_client):
    assert admin_client.get("/").status_code == 200  # signed in to the dashboard
    _problem(admin_client.get("/api/v1/contacts"), 401)
    _problem(admin_client.post("/api/v1/contacts", json={"phone": "9876543210"}), 401)


def test_an_api_key_does_not_open_the_dashboard(app, client):
    headers = {"Authorization": f"Bearer {make_key(app)}"}
    response = client.get("/contacts/", headers=headers)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_api_posts_need_no_csrf_token(app, api):
    app.config["WTF_CSRF_ENABLED"] = True
    assert api.post("/contacts", json={"phone": "9876543210"}).status_code == 201


def test_over_the_rate_a_key_gets_429_with_retry_after(app, api):
    app.config.update(API_RATE_PER_SECOND=0.5, API_RATE_BURST=3)
    assert [api.get("/me").status_code for _ in range(3)] == [200, 200, 200]
    response = api.get("/me")
    _problem(response, 429)
    assert int(response.headers["Retry-After"]) >= 1
    other = ApiClient(app.test_client(), make_key(app, name="Other"))
    assert other.get("/me").status_code == 200  # the limit is per key


def test_last_used_is_recorded_at_most_once_a_minute(app, api):
    api.get("/me")
    with app.app_context():
        first = db.session.scalars(db.select(ApiKey)).one().last_used_at
        assert first is not None
    api.get("/me")
    with app.app_context():
        key = db.session.scalars(db.select(ApiKey)).one()
        assert key.last_used_at == first
        key.last_used_at = first - timedelta(minutes=2)
        db.session.commit()
    api.get("/me")
    with app.app_context():
        assert db.session.scalars(db.select(ApiKey)).one().last_used_at > first - timedelta(minutes=2)


def test_only_a_hash_of_the_secret_is_stored(app, make_user):
    user = make_user(Role.ADMIN)
    with app.app_context():
        key, secret = keys.create_key("Shop", ["contacts:read"], user.id)
        row = db.session.get(ApiKey, key.id)
        assert secret.startswith(f"bk_{row.prefix}_")
        assert secret not in (row.secret_hash, row.prefix) and row.secret_hash == keys.digest(secret)
