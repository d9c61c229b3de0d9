"""Helpers for the Bitrix24 plugin's tests: the project's own fixtures
(form-urlencoded deliveries as an outgoing webhook or an app sends them, and
the REST answers), an integration view and a REST client whose calls
``responses`` answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import responses
from jalon.connector.net.http import RateBudgets, RestClient
from jalon.connector.plugin.types import DeliveryView, IntegrationView

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"
ROOT = HERE.parents[2]
SHARED_PAYLOADS = ROOT.parent / "shared" / "pm-payloads" / "bitrix24"

KEY = "bitrix24-lumen"
TOKEN = "b24-app-t0ken-lumen"  # the outgoing webhook's application token: the integration's secret
MEMBER_ID = "5e1f0c2b9a8d7e6f5a4b3c2d1e0f9a8b"
DOMAIN = "atelier-lumen.bitrix24.fr"
WEBHOOK = f"https://{DOMAIN}/rest/1/k3y5c0de/"  # the inbound webhook jalon calls the REST API through
TASK = "4711"
GROUP = "group:12"
NOW = datetime(2026, 11, 6, 12, 0, tzinfo=UTC)


def integration(*, secrets: tuple[str, ...] = (TOKEN,), settings: dict[str, Any] | None = None,
                mapped_done_statuses: tuple[str, ...] = (), base_url: str | None = f"https://{DOMAIN}",
                credentials: dict[str, Any] | None = None) -> IntegrationView:
    return IntegrationView(key=KEY, source="bitrix24", name="Atelier Lumen Bitrix24", base_url=base_url,
                           settings={} if settings is None else settings, secrets=secrets,
                           credentials={"webhook_url": WEBHOOK} if credentials is None else credentials,
                           mapped_done_statuses=mapped_done_statuses)


def fixture_path(name: str) -> Path:
    (path,) = [p for p in FIXTURES.glob(f"{name}.*") if p.is_file()]
    return path


def fixture_bytes(name: str) -> bytes:
    return fixture_path(name).read_bytes()


def rest_fixture(name: str) -> Any:
    return json.loads((FIXTURES / "rest" / f"{name}.json").read_text(encoding="utf-8"))


def delivery(body: bytes, delivery_id: int = 1) -> DeliveryView:
    return DeliveryView(id=delivery_id, integration=KEY, source="bitrix24", idempotency_key=f"k-{delivery_id}",
                        received_at=NOW, headers={"content-type": "application/x-www-form-urlencoded"}, body=body)


def rest_client() -> RestClient:
    """The integration's client as the connector builds it, answering whatever
    ``responses`` says: no look-up cache, no retry, and a request budget of its own."""
    return RestClient(None, timeout=2.0, max_retries=0, allow_private_network=True, sleep=lambda _s: None,
                      budgets=RateBudgets())


def method_url(method: str) -> str:
    return f"{WEBHOOK}{method}.json"


def serve_task(name: str = "task__completed", **changes: Any) -> dict[str, Any]:
    """``tasks.task.get`` answers the REST fixture ``name`` (its task changed by ``changes``)."""
    answer = rest_fixture(name)
    if changes and isinstance(answer["result"], dict):
        answer["result"]["task"] |= changes
    responses.post(method_url("tasks.task.get"), json=answer)
    return answer


def asked_task(call: Any) -> str:
    """The task id a recorded ``tasks.task.get`` call asked for."""
    return str(json.loads(call.request.body)["taskId"])

