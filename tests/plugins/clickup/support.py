"""Helpers for the ClickUp plugin's tests: the project's own fixtures, signed
deliveries, an integration view and a REST client whose calls ``responses`` answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import responses
from jalon.connector.net.http import RateBudgets, RestClient
from jalon.connector.plugin.types import DeliveryView, IntegrationView
from jalon.plugins.clickup import verify

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
ROOT = HERE.parents[2]
SHARED_PAYLOADS = ROOT.parent / "shared" / "pm-payloads" / "clickup"

API = "https://api.clickup.com/api/v2"
KEY = "clickup-lumen"
SECRET = "clickup-s3cret"
TEAM = "9012345678"
MILESTONE_TASK = "86c0m1l5t"
PLAIN_TASK = "86c0t4sk1"
INTERVAL = "4215567000000009001"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def integration(*, secrets: tuple[str, ...] = (SECRET,), settings: dict[str, Any] | None = None,
                mapped_done_statuses: tuple[str, ...] = ()) -> IntegrationView:
    return IntegrationView(key=KEY, source="clickup", name="Atelier Lumen ClickUp", base_url=None,
                           settings={"team_id": TEAM} if settings is None else settings, secrets=secrets,
                           credentials={"api_token": "pk_81942_TESTTOKEN"},
                           mapped_done_statuses=mapped_done_statuses)


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(name))


def rest_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "rest" / f"{name}.json").read_text(encoding="utf-8"))


def signed_headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"content-type": "application/json", "x-signature": verify.signature(secret, body)}


def delivery(body: bytes, delivery_id: int = 1) -> DeliveryView:
    return DeliveryView(id=delivery_id, integration=KEY, source="clickup", idempotency_key=f"k-{delivery_id}",
                        received_at=NOW, headers={}, body=body)


def rest_client() -> RestClient:
    """The integration's client as the connector builds it, answering whatever
    ``responses`` says: no look-up cache and a request budget of its own, so
    that each test sees only its own answers and none waits for another's quota."""
    return RestClient(None, timeout=2.0, max_retries=0, allow_private_network=True, sleep=lambda _s: None,
                      budgets=RateBudgets())


def serve_task(name: str = "task__milestone", **changes: Any) -> dict[str, Any]:
    """ClickUp answers ``GET /task/{id}`` with the REST fixture ``name`` (changed by ``changes``)."""
    task = rest_fixture(name) | changes
    responses.get(f"{API}/task/{task['id']}", json=task)
    return task


def serve_time_entry(name: str = "time_entry__updated") -> dict[str, Any]:
    entry = rest_fixture(name)
    responses.get(f"{API}/team/{TEAM}/time_entries/{entry['data']['id']}", json=entry)
    return entry["data"]
