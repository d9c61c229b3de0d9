"""OpenAPI document, docs page and health check."""

from __future__ import annotations

import re

from jalon.connector.app import create_app
from tests.api.support import assert_problem

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def _resolve(spec, ref):  # type: ignore[no-untyped-def]
    node = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node):  # type: ignore[no-untyped-def]
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_openapi_is_served_without_a_token_and_lists_every_route(app, client):
    response = client.as_token(None).get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    spec = response.json

    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops if method in HTTP_METHODS}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api-docs.") or rule.endpoint == "static":
            continue
        if rule.endpoint.startswith("hooks."):  # the webhook intake is not the admin API (docs/plugins.md)
            continue
        if rule.endpoint.startswith("approval."):  # HTML pages for a link's holder (docs/notifications.md)
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routed |= {(path, m.lower()) for m in rule.methods if m.lower() in HTTP_METHODS}
    assert routed and routed == documented


def test_openapi_is_structurally_valid(client):
    spec = client.get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"]
    for ref in _refs(spec):
        assert ref.startswith("#/") and _resolve(spec, ref) is not None, ref
    for path, ops in spec["paths"].items():
        params = set(re.findall(r"{([^}]+)}", path))
        for method, op in ops.items():
            if method not in HTTP_METHODS:
                continue
            assert op["responses"], (path, method)
            declared = {p["name"] for p in op.get("parameters", []) + ops.get("parameters", []) if p["in"] == "path"}
            assert params <= declared, (path, method)


def test_openapi_documents_problems_auth_and_string_amounts(client):
    spec = client.get("/api/v1/openapi.json").json
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "code", "detail", "errors"} <= set(problem["properties"])
    assert "application/problem+json" in spec["components"]["responses"]["UNPROCESSABLE_ENTITY"]["content"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "401" in spec["paths"]["/api/v1/entities"]["get"]["responses"]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    amount = spec["components"]["schemas"]["PaymentIn"]["properties"]["amount"]
    assert amount["type"] == "string"
    secret = spec["components"]["schemas"]["IntegrationIn"]["properties"]["secret"]
    assert secret.get("writeOnly") is True


def test_docs_page_is_served(client):
    response = client.as_token(None).get("/api/v1/docs")
    assert response.status_code == 200
    assert "openapi.json" in response.get_data(as_text=True)


def test_healthz_needs_no_token(client):
    response = client.as_token(None).get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}


def test_healthz_is_a_503_problem_when_the_database_is_unreachable():
    app = create_app("postgresql+psycopg://nobody@127.0.0.1:9/nowhere?connect_timeout=2", TESTING=True)
    try:
        response = app.test_client().get("/healthz")
        assert_problem(response, 503, "database_unavailable")
    finally:
        app.extensions["jalon"].engine.dispose()
