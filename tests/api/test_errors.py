"""Nothing under /api/v1 answers HTML or a bare 500: routing errors, oversized bodies and crashes are problems."""

from __future__ import annotations

from unittest import mock

from app.services.api import contacts


def test_an_unknown_endpoint_is_a_404_problem(api):
    response = api.get("/nothing-here")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"


def test_a_wrong_method_is_a_405_problem(api):
    response = api.request("PUT", "/contacts")
    assert response.status_code == 405 and response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]


def test_a_body_over_the_upload_limit_is_a_413_problem(app, api):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = api.post("/contacts", data=b"{" + b" " * 4096 + b"}", content_type="application/json")
    assert response.status_code == 413 and response.mimetype == "application/problem+json"


def test_a_body_that_is_not_json_is_refused(api):
    response = api.post("/contacts", data="phone=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response.mimetype == "application/problem+json"
    response = api.post("/contacts", data="{not json", content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["errors"] == [{"field": "body", "message": "The body is not valid JSON."}]


def test_a_crash_is_a_500_problem_not_an_html_page(api):
    with mock.patch.object(contacts, "get_contact", side_effect=RuntimeError("boom")):
        response = api.get("/contacts/1")
    assert response.status_code == 500 and response.mimetype == "application/problem+json"
    assert "boom" not in response.get_data(as_text=True)


def test_dashboard_errors_stay_html(staff_client):
    response = staff_client.get("/no-such-page")
    assert response.status_code == 404 and response.mimetype == "text/html"
