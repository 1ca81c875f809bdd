"""Login on every page, admin-only pages, CSRF and security headers."""

import pytest
from sqlalchemy import select

from app import create_app
from app.config import TestConfig
from app.extensions import db
from app.models import AuditEntry, Role
from tests.conftest import AuthActions, csrf_token_from

PUBLIC_ENDPOINTS = {"static", "auth.login", "health.healthz"}
SAMPLE_ARGUMENTS = {"integer": 1, "default": "sample", "path": "sample", "uuid": "00000000-0000-0000-0000-000000000000"}


def _route_table():
    """Every GET route of the real URL map, with sample values for its arguments."""
    app = create_app(TestConfig("sqlite://", "redis://127.0.0.1:1/0"))
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.startswith("webhooks."):
                continue
            values = {name: _sample_value(converter) for name, converter in rule._converters.items()}
            method = "GET" if "GET" in rule.methods else sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
            routes.append((method, app.url_for(rule.endpoint, **values)))
    return routes


def _sample_value(converter):
    if getattr(converter, "items", None):  # AnyConverter: one of its fixed choices
        return sorted(converter.items)[0]
    return SAMPLE_ARGUMENTS.get(type(converter).__name__.removesuffix("Converter").lower(), "sample")


def _admin_paths():
    return [path for method, path in _route_table() if method == "GET" and path.startswith("/admin")]


@pytest.mark.parametrize(("method", "path"), _route_table())
def test_every_page_requires_login(client, method, path):
    response = client.open(path, method=method)
    if path.startswith("/api/v1/"):  # the REST API wants a bearer key, not a sign-in (tests/api/test_auth.py)
        assert response.status_code == (200 if path == "/api/v1/openapi.json" else 401), path
        return
    if method == "GET":
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path
    else:  # unsafe methods are stopped by CSRF (400) or login (302) before doing anything
        assert response.status_code in {302, 400}, path


def test_htmx_request_without_login_asks_for_a_full_page_redirect(client):
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login"


@pytest.mark.parametrize("path", _admin_paths())
def test_staff_get_403_on_admin_pages(staff_client, path):
    response = staff_client.get(path)
    assert response.status_code == 403
    assert "You don&#39;t have access to this page" in response.get_data(as_text=True)


def test_admin_sees_the_user_list(admin_client, make_user):
    staff = make_user(Role.STAFF)
    page = admin_client.get("/admin/users").get_data(as_text=True)
    assert staff.email in page


def test_staff_do_not_see_admin_navigation(staff_client):
    assert "/admin/users" not in staff_client.get("/").get_data(as_text=True)


def test_post_without_csrf_token_is_rejected(client, make_user):
    user = make_user()
    response = client.post("/login", data={"email": user.email, "password": "x"})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)


def test_logout_without_csrf_token_is_rejected(staff_client):
    assert staff_client.post("/logout").status_code == 400
    assert staff_client.get("/").status_code == 200


def test_htmx_request_with_csrf_header_is_accepted(staff_client):
    token = csrf_token_from(staff_client.get("/").get_data(as_text=True))
    response = staff_client.post("/logout", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 302


def test_security_headers(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_page_is_a_friendly_404(staff_client):
    response = staff_client.get("/no-such-page")
    assert response.status_code == 404
    assert "Page not found" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/campaigns/999999/analytics", "/inbox/999999", "/templates/999999",
                                  "/campaigns/999999/edit", "/admin/auto-replies/999999"])
def test_a_row_a_service_cannot_find_is_the_friendly_404(admin_client, path):
    page = admin_client.get(path)
    assert page.status_code == 404 and "Page not found" in page.get_data(as_text=True)
    fragment = admin_client.get(path, headers={"HX-Request": "true"})
    assert fragment.status_code == 404 and fragment.get_json()["error"] == "Page not found"


def test_unexpected_error_is_a_friendly_500(app, make_user):
    fresh = create_app(TestConfig(app.config["SQLALCHEMY_DATABASE_URI"], app.config["REDIS_URL"]))

    @fresh.get("/explode-for-test")
    def explode():
        raise RuntimeError("boom")

    client = fresh.test_client()
    AuthActions(client).login(make_user().email)
    response = client.get("/explode-for-test")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "Something went wrong on our side" in body and "boom" not in body


def _client_from(flask_app, address: str, forwarded_for: str | None = None):
    client = flask_app.test_client()
    client.environ_base.update({"REMOTE_ADDR": address, "HTTP_X_FORWARDED_FOR": forwarded_for or ""})
    return client


def test_behind_a_trusted_proxy_the_sign_in_lockout_is_per_visitor(app, make_user):
    config = TestConfig(app.config["SQLALCHEMY_DATABASE_URI"], app.config["REDIS_URL"])
    config.TRUSTED_PROXY_HOPS = 1
    proxied = create_app(config)
    proxied.config["LOGIN_MAX_ATTEMPTS_PER_IP"] = 3
    attacker = AuthActions(_client_from(proxied, "10.0.0.2", "203.0.113.9"))
    for number in range(4):
        page = attacker.login(f"guess{number}@example.com", "wrong-password").get_data(as_text=True)
    assert "Too many failed sign-in attempts" in page
    staff = make_user()
    assert AuthActions(_client_from(proxied, "10.0.0.2", "198.51.100.7")).login(staff.email).status_code == 302
    with app.app_context():
        addresses = set(db.session.scalars(select(AuditEntry.ip_address)))
    assert addresses == {"203.0.113.9", "198.51.100.7"}


def test_without_a_trusted_proxy_a_forwarded_for_header_is_ignored(app, make_user):
    app.config["LOGIN_MAX_ATTEMPTS_PER_IP"] = 3
    for number in range(3):  # a visitor cannot dodge the lockout by making up addresses
        AuthActions(_client_from(app, "192.0.2.1", f"203.0.113.{number}")).login("x@example.com", "wrong-password")
    response = AuthActions(_client_from(app, "192.0.2.1", "203.0.113.99")).login(make_user().email)
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)
