"""Helpers for the Jira plugin's tests: the project's own fixtures, signed
deliveries, an integration view and a REST client whose calls ``responses`` answers."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jalon.connector.net.http import LookupCache, RestClient
from jalon.connector.plugin.types import DeliveryView, IntegrationView
from jalon.plugins.jira import verify

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "jira"
SHARED_PAYLOADS = ROOT.parent / "shared" / "pm-payloads" / "jira"

SITE = "https://acme.atlassian.net"
KEY = "jira-acme"
SECRET = "jira-s3cret"
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)


def integration(*, secrets: tuple[str, ...] = (SECRET,), settings: dict[str, Any] | None = None,
                credentials: dict[str, Any] | None = None, base_url: str | None = SITE) -> IntegrationView:
    return IntegrationView(key=KEY, source="jira", name="Acme Jira", base_url=base_url, settings=settings or {},
                           secrets=secrets,
                           credentials={"email": "bot@acme.example", "api_token": "tok"} if credentials is None
                           else credentials)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(name))


def rest_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "rest" / f"{name}.json").read_text())


def signed_headers(body: bytes, secret: str = SECRET, delivery_id: str | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json; charset=utf-8", "x-hub-signature": verify.hub_signature(secret, body)}
    if delivery_id:
        headers["x-atlassian-webhook-identifier"] = delivery_id
    return headers


def delivery(body: bytes, headers: dict[str, str] | None = None, delivery_id: int = 1) -> DeliveryView:
    return DeliveryView(id=delivery_id, integration=KEY, source="jira", idempotency_key=f"k-{delivery_id}",
                        received_at=NOW, headers=headers or {}, body=body)


# the look-up cache a running connector shares between the clients of its integrations
CACHE = LookupCache()


def rest_client(base_url: str = SITE, *, key: str = KEY, cache: LookupCache | None = CACHE) -> RestClient:
    """The integration's client as the connector builds it (with the look-up
    cache, scoped to the integration), answering whatever ``responses`` says."""
    return RestClient(base_url, timeout=2.0, max_retries=2, allow_private_network=True, sleep=lambda _s: None,
                      cache=cache, cache_scope=f"{key}|{base_url}")


def clear_caches() -> None:
    CACHE.clear()
