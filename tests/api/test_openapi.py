"""The OpenAPI document: valid 3.1, generated for every /api/v1 route, and the answers match what it says."""

from __future__ import annotations

import re

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from tests.conftest import run_jobs
from tests.factories.campaigns import ORDER_UPDATE, add_contacts, make_template

IGNORED_METHODS = {"HEAD", "OPTIONS"}


def _document(client) -> dict:
    response = client.get("/api/v1/openapi.json")  # public: tools fetch it without a key
    assert response.status_code == 200
    return response.get_json()


def test_the_document_is_valid_openapi_3_1(client):
    document = _document(client)
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_api_route_is_documented(app, client):
    paths = _document(client)["paths"]
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/v1/")]
    assert len(rules) >= 14
    for rule in rules:
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods - IGNORED_METHODS:
            assert method.lower() in paths.get(path, {}), f"{method} {path} is not in the OpenAPI document"


def test_problems_are_documented_as_problem_json(client):
    operation = _document(client)["paths"]["/api/v1/contacts"]["post"]
    assert set(operation["responses"]) >= {"201", "401", "403", "413", "415", "422", "429"}
    assert "application/problem+json" in operation["responses"]["422"]["content"]
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ContactIn")


def _check(document: dict, method: str, path: str, response) -> None:
    """The answer's body matches the schema the document gives for this operation and status."""
    answer = document["paths"][path][method]["responses"][str(response.status_code)]
    content = answer.get("content")
    if not content:
        assert not response.get_data(), f"{method} {path} {response.status_code} should have no body"
        return
    [(media_type, body)] = content.items()
    assert response.mimetype == media_type, (method, path, response.status_code)
    schema = {**body["schema"], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(response.get_json()), key=str)
    assert not errors, f"{method} {path} {response.status_code}: {errors[0].message}"


def test_answers_match_their_schemas(app, api, client):
    document = _document(client)
    template_id = make_template(app, "order_update", ORDER_UPDATE)
    contact_id = add_contacts(app, 2)[0]
    app.config.update(WHATSAPP_PHONE_NUMBER_ID="106540352242922", WHATSAPP_ACCESS_TOKEN="token",
                      API_RATE_BURST=100)  # two dozen calls in a row: no 429 in place of the answer checked
    order = {"to": "+919800000001", "template": {"name": "order_update", "language": "en_US"},
             "variables": {"body.1": "Asha", "body.2": "#1"}}
    campaign = {"name": "Shipped", "template_id": template_id,
                "variables": {"body.1": {"source": "name", "fallback": "there"},
                              "body.2": {"source": "literal", "value": "#1"}}}
    statuses = set()

    def call(method: str, template: str, path: str, payload=None) -> dict:
        response = api.request(method.upper(), path, **({"json": payload} if payload is not None else {}))
        _check(document, method, template, response)
        statuses.add(response.status_code)
        return response.get_json() if response.data else {}

    call("get", "/api/v1/me", "/me")
    call("get", "/api/v1/contacts", "/contacts")
    call("post", "/api/v1/contacts", "/contacts", {"phone": "9876543210", "tags": ["a"]})
    call("post", "/api/v1/contacts", "/contacts", {"phone": "x", "nope": 1})
    call("post", "/api/v1/contacts/bulk", "/contacts/bulk", {"contacts": [{"phone": "9876543211"}]})
    app.config.update(API_BULK_MAX_CONTACTS=1, API_BULK_JOB_MAX_CONTACTS=3)  # a job, then too large even for one
    job = call("post", "/api/v1/contacts/bulk", "/contacts/bulk", {"contacts": [{"phone": "9876543212"},
                                                                               {"phone": "12"}]})
    run_jobs(app)
    assert call("get", "/api/v1/contacts/bulk/{job_id}", f"/contacts/bulk/{job['id']}")["error_count"] == 1
    call("post", "/api/v1/contacts/bulk", "/contacts/bulk", {"contacts": [{"phone": "9876543212"}] * 4})
    call("get", "/api/v1/contacts/{contact_id}", f"/contacts/{contact_id}")
    call("get", "/api/v1/contacts/{contact_id}", "/contacts/424242")
    call("post", "/api/v1/contacts/{contact_id}/tags", f"/contacts/{contact_id}/tags", {"tags": ["b"]})
    call("delete", "/api/v1/contacts/{contact_id}/tags/{tag}", f"/contacts/{contact_id}/tags/b")
    message_id = call("post", "/api/v1/messages", "/messages", order)["id"]
    call("get", "/api/v1/messages/{message_id}", f"/messages/{message_id}")
    call("post", "/api/v1/contacts/{contact_id}/opt-out", f"/contacts/{contact_id}/opt-out")
    call("get", "/api/v1/templates", "/templates")
    campaign_id = call("post", "/api/v1/campaigns", "/campaigns", campaign)["id"]
    call("get", "/api/v1/campaigns", "/campaigns")
    call("post", "/api/v1/campaigns/{campaign_id}/launch", f"/campaigns/{campaign_id}/launch")
    call("post", "/api/v1/campaigns/{campaign_id}/{action}", f"/campaigns/{campaign_id}/pause")
    call("post", "/api/v1/campaigns/{campaign_id}/{action}", f"/campaigns/{campaign_id}/pause")
    call("get", "/api/v1/campaigns/{campaign_id}/metrics", f"/campaigns/{campaign_id}/metrics")
    call("delete", "/api/v1/contacts/{contact_id}", f"/contacts/{contact_id}")
    assert statuses >= {200, 201, 202, 204, 404, 409, 413, 422}
    _check(document, "get", "/api/v1/contacts", client.get("/api/v1/contacts"))  # 401
