"""The base REST client: timeouts, retries with backoff honouring Retry-After,
and the typed errors callers decide on. `responses` plays the remote side."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
import responses

from jalon.connector.net.http import (
    BadResponse,
    NotFound,
    RateLimited,
    RemoteError,
    RestClient,
    Unauthorized,
    Unavailable,
    parse_retry_after,
)

BASE = "https://jira.atelier.test/rest/api/3"


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def client(public_dns, waits) -> RestClient:  # type: ignore[no-untyped-def]
    return RestClient(BASE, timeout=2, max_retries=3, sleep=waits.append)


@responses.activate
def test_a_path_is_joined_to_the_base_url_and_json_is_returned(client) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/issue/WEB-1", json={"key": "WEB-1"})
    assert client.get_json("/issue/WEB-1") == {"key": "WEB-1"}
    assert responses.calls[0].request.headers["User-Agent"] == "jalon"


@responses.activate
def test_503_is_retried_with_exponential_backoff(client, waits) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        responses.get(f"{BASE}/x", status=503)
    responses.get(f"{BASE}/x", json={"ok": True})
    assert client.get_json("x") == {"ok": True}
    assert waits == [0.5, 1.0, 2.0]


@responses.activate
def test_retry_after_in_seconds_is_honoured(client, waits) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "7"})
    responses.get(f"{BASE}/x", json={})
    client.get_json("x")
    assert waits == [7.0]


@responses.activate
def test_retry_after_as_an_http_date_is_honoured(client, waits) -> None:  # type: ignore[no-untyped-def]
    when = datetime.now(timezone.utc) + timedelta(seconds=12)
    responses.get(f"{BASE}/x", status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    responses.get(f"{BASE}/x", json={})
    client.get_json("x")
    assert 10 <= waits[0] <= 12


def test_retry_after_parsing() -> None:
    now = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Mon, 02 Nov 2026 10:01:00 GMT", now=now) == 60
    assert parse_retry_after("Mon, 02 Nov 2026 09:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@responses.activate
def test_a_long_retry_after_is_not_waited_in_process(client, waits) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/x", status=429, headers={"Retry-After": "3600"})
    with pytest.raises(RateLimited) as caught:
        client.get_json("x")
    assert caught.value.retry_after == 3600
    assert waits == []


@responses.activate
def test_retries_are_bounded(client, waits) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/x", status=502)
    with pytest.raises(Unavailable) as caught:
        client.get_json("x")
    assert caught.value.status == 502
    assert len(responses.calls) == 4 and len(waits) == 3


@pytest.mark.parametrize("status, error", [(401, Unauthorized), (403, Unauthorized), (404, NotFound),
                                           (500, Unavailable), (400, RemoteError), (422, RemoteError)])
@responses.activate
def test_statuses_become_typed_errors_without_retry(client, waits, status, error) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/x", status=status)
    with pytest.raises(error) as caught:
        client.get_json("x")
    assert caught.value.status == status
    assert len(responses.calls) == 1 and waits == []


@responses.activate
def test_timeouts_and_connection_errors_are_unavailable_after_retries(client, waits) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/slow", body=requests.Timeout())
    with pytest.raises(Unavailable, match="timed out"):
        client.get_json("slow")
    responses.get(f"{BASE}/down", body=requests.ConnectionError())
    with pytest.raises(Unavailable, match="connection failed"):
        client.get_json("down")
    assert len(waits) == 6


@responses.activate
def test_invalid_json_is_a_bad_response(client) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/x", body="<html>login</html>", content_type="text/html")
    with pytest.raises(BadResponse):
        client.get_json("x")


@responses.activate
def test_errors_name_the_host_never_the_path(public_dns) -> None:  # type: ignore[no-untyped-def]
    url = "https://hooks.chat.test/services/T0/B0/SECRETPATH"
    responses.post(url, status=404)
    with pytest.raises(NotFound) as caught:
        RestClient(None, timeout=1).request("POST", url, json={})
    assert "hooks.chat.test" in str(caught.value) and "SECRETPATH" not in str(caught.value)


@responses.activate
def test_the_default_timeout_is_sent_with_every_request(client) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/x", json={})
    client.get_json("x")
    assert responses.calls[0].request.req_kwargs["timeout"] == 2


def test_the_rest_client_for_a_plugin_allows_the_private_network_only_when_the_integration_says_so():
    from jalon.connector.net.http import client_for
    from jalon.connector.plugin.types import IntegrationView

    def view(settings):  # type: ignore[no-untyped-def]
        return IntegrationView(key="k", source="jira", name="J", base_url="https://jira.intranet", settings=settings)

    assert client_for(view({}), timeout=1).allow_private_network is False
    assert client_for(view({"allow_private_network": True}), timeout=1).allow_private_network is True
