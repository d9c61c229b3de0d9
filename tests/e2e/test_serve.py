"""`jalon serve` as an operator starts it: a real gunicorn process."""

from __future__ import annotations

import subprocess

import requests

from tests.e2e.conftest import JALON


def token(server, scope: str) -> str:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [JALON, "--database-url", server.database_url, "token", "create", "--scope", scope],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return result.stdout.strip()


def test_serve_migrates_then_answers_health_and_the_authenticated_api(serve):
    assert requests.get(f"{serve.url}/healthz", timeout=5).json()["status"] == "ok"
    admin = {"Authorization": f"Bearer {token(serve, 'admin')}"}
    created = requests.put(
        f"{serve.url}/api/v1/clients/acme", headers=admin, timeout=5,
        json={"name": "ACME SA", "payment_terms": {"kind": "net", "days": 30}},
    )
    assert created.status_code in (200, 201), created.text
    listed = requests.get(f"{serve.url}/api/v1/clients", headers=admin, timeout=5)
    assert [c["code"] for c in listed.json()["items"] if c["code"] == "acme"] == ["acme"]


def test_serve_refuses_the_api_without_a_token(serve):
    response = requests.get(f"{serve.url}/api/v1/invoices", timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthorized"


def test_serve_publishes_its_openapi_document(serve):
    document = requests.get(f"{serve.url}/api/v1/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/invoices/{invoice_id}/issue" in document["paths"]
