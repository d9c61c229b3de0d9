"""The base REST client: timeouts, retries with backoff honouring Retry-After,
and the typed errors callers decide on. `responses` plays the remote side."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
import responses

from jalon.connector.net.http import (
    BadResponse,
    NotFound,
    RateLimited,
    Redirected,
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


# --- what every vendor client needs: auth, look-ups remembered, pages -------------------------

@responses.activate
def test_auth_objects_sign_each_request_and_never_show_their_secret(client) -> None:  # type: ignore[no-untyped-def]
    from jalon.connector.net.http import BasicAuth, BearerAuth, QueryTokenAuth

    responses.get(f"{BASE}/x", json={})
    client.using(BasicAuth("bot@atelier.example", "tok")).get_json("x")
    client.using(BearerAuth("pat-1")).get_json("x")
    client.using(BearerAuth("pk_1", scheme=None)).get_json("x")
    client.using(QueryTokenAuth("auth", "t0ken")).get_json("x", params={"id": 7})
    sent = [call.request for call in responses.calls]
    assert sent[0].headers["Authorization"] == "Basic Ym90QGF0ZWxpZXIuZXhhbXBsZTp0b2s="
    assert sent[1].headers["Authorization"] == "Bearer pat-1"
    assert sent[2].headers["Authorization"] == "pk_1"
    assert sent[3].params == {"id": "7", "auth": "t0ken"} and "Authorization" not in sent[3].headers
    assert "Authorization" not in client.session.headers  # using() leaves the client it came from alone
    for auth in (BasicAuth("u", "secret-1"), BearerAuth("secret-1"), QueryTokenAuth("auth", "secret-1")):
        assert "secret-1" not in repr(auth)


@responses.activate
def test_a_query_token_never_reaches_an_error_message(client) -> None:  # type: ignore[no-untyped-def]
    from jalon.connector.net.http import QueryTokenAuth

    responses.get(f"{BASE}/x", status=403)
    with pytest.raises(Unauthorized) as caught:
        client.using(QueryTokenAuth("auth", "t0ken")).get_json("x")
    assert "t0ken" not in str(caught.value)


@responses.activate
def test_look_ups_are_remembered_per_credentials_for_their_time_to_live(public_dns) -> None:  # type: ignore[no-untyped-def]
    from jalon.connector.net.http import BearerAuth, LookupCache

    now = [0.0]
    cache = LookupCache(ttl=300, timer=lambda: now[0])
    client = RestClient(BASE, timeout=2, cache=cache, cache_scope="jira-a")
    responses.get(f"{BASE}/user/1", json={"name": "Alice"})

    first = client.get_cached("user/1")
    first["name"] = "changed by the caller"
    assert client.get_cached("user/1") == {"name": "Alice"}  # each caller gets its own copy
    assert len(responses.calls) == 1
    client.using(BearerAuth("another token")).get_cached("user/1")  # other credentials may see other things
    RestClient(BASE, timeout=2, cache=cache, cache_scope="jira-b").get_cached("user/1")  # another integration
    assert len(responses.calls) == 3
    now[0] = 301.0
    client.get_cached("user/1")
    assert len(responses.calls) == 4


@responses.activate
def test_a_look_up_that_fails_to_parse_is_not_remembered(public_dns) -> None:  # type: ignore[no-untyped-def]
    from jalon.connector.net.http import LookupCache

    def name_of(data):  # type: ignore[no-untyped-def]
        if "name" not in data:
            raise BadResponse("no name")
        return data["name"]

    client = RestClient(BASE, timeout=2, cache=LookupCache(), cache_scope="k")
    responses.get(f"{BASE}/user/1", json={})
    responses.get(f"{BASE}/user/1", json={"name": "Alice"})
    with pytest.raises(BadResponse):
        client.get_cached("user/1", parse=name_of)
    assert client.get_cached("user/1", parse=name_of) == "Alice"
    assert client.get_cached("user/1", parse=name_of) == "Alice"
    assert len(responses.calls) == 2


@responses.activate
def test_offset_pages_are_read_until_the_total_or_a_short_page(client) -> None:  # type: ignore[no-untyped-def]
    pages = [list(range(0, 2)), list(range(2, 4)), list(range(4, 5))]
    for number, page in enumerate(pages):
        responses.get(f"{BASE}/search", json={"values": page, "total": 5},
                      match=[responses.matchers.query_param_matcher({"startAt": str(number * 2), "maxResults": "2",
                                                                      "q": "x"})])
    assert list(client.paginate_offset("search", items="values", params={"q": "x"}, page_size=2)) == [0, 1, 2, 3, 4]
    assert len(responses.calls) == 3


@responses.activate
def test_page_numbers_advance_by_one(client) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/tasks", json={"tasks": [1, 2]}, match=[responses.matchers.query_param_matcher({"page": "0"})])
    responses.get(f"{BASE}/tasks", json={"tasks": []}, match=[responses.matchers.query_param_matcher({"page": "1"})])
    assert list(client.paginate_offset("tasks", items="tasks", start_param="page", limit_param=None,
                                       page_size=2, total=None)) == [1, 2]


@responses.activate
def test_cursor_pages_follow_a_token_or_a_link_until_the_last(client) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/search", json={"issues": [1], "nextPageToken": "p2"},
                  match=[responses.matchers.query_param_matcher({"jql": "x"})])
    responses.get(f"{BASE}/search", json={"issues": [2], "next": f"{BASE}/search/page3"},
                  match=[responses.matchers.query_param_matcher({"jql": "x", "nextPageToken": "p2"})])
    responses.get(f"{BASE}/search/page3", json={"issues": [3]})

    def following(page):  # type: ignore[no-untyped-def]
        if page.get("nextPageToken"):
            return {"nextPageToken": page["nextPageToken"]}
        return page.get("next")

    assert list(client.paginate_cursor("search", items="issues", params={"jql": "x"}, next_page=following)) == [1, 2, 3]


@responses.activate
def test_a_listing_that_never_ends_stops_with_a_bad_response(client) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{BASE}/loop", json={"issues": [1], "nextPageToken": "again"})
    with pytest.raises(BadResponse, match="more than 3 pages"):
        list(client.paginate_cursor("loop", items="issues", max_pages=3,
                                    next_page=lambda page: {"nextPageToken": page["nextPageToken"]}))
    responses.get(f"{BASE}/odd", json={"values": "not a list"})
    with pytest.raises(BadResponse, match="no list of 'values'"):
        list(client.paginate_offset("odd", items="values"))


# ---------------------------------------------------------------- redirects, on a real socket


# where /<status>/<name> points (else to /<name> on the same server)
ELSEWHERE = {"metadata": "http://169.254.169.254/latest/meta-data?token=s3cr3t"}


class _Redirecting(http.server.BaseHTTPRequestHandler):
    """Answers ``/<status>/<name>`` with that status and a Location, and
    records what it was asked."""

    seen: list[tuple[str, str, bytes]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).seen.append((self.command, self.path, self.rfile.read(length)))
        parts = self.path.split("/", 2)
        if parts[1].isdigit():
            self.send_response(int(parts[1]))
            self.send_header("Location", ELSEWHERE.get(parts[2], "/" + parts[2]))
        else:
            self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _answer  # noqa: N815

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def redirecting() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Redirecting.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_answering_a_post_is_never_followed_nor_turned_into_a_get(redirecting, status) -> None:  # type: ignore[no-untyped-def]
    client = RestClient(redirecting, timeout=2, max_retries=3, allow_private_network=True)  # loopback on purpose
    with pytest.raises(Redirected) as refused:
        client.request("POST", f"/{status}/landing", data=b'{"text": "hello"}')
    assert refused.value.status == status
    assert str(refused.value) == (f"POST 127.0.0.1: HTTP {status} redirect to 127.0.0.1 not followed "
                                  "(configure the address it points to)")
    assert _Redirecting.seen == [("POST", f"/{status}/landing", b'{"text": "hello"}')]  # once, never retried


def test_a_redirect_to_another_host_is_a_failure_naming_the_host_never_the_path(redirecting) -> None:  # type: ignore[no-untyped-def]
    client = RestClient(redirecting, timeout=2, max_retries=0, allow_private_network=True)
    with pytest.raises(Redirected, match=r"HTTP 302 redirect to 169\.254\.169\.254 not followed") as refused:
        client.get_json("/302/metadata")
    assert "meta-data" not in str(refused.value) and "s3cr3t" not in str(refused.value)
    assert [(method, path) for method, path, _ in _Redirecting.seen] == [("GET", "/302/metadata")]


@responses.activate
def test_a_redirect_without_location_is_a_failure_too(client) -> None:  # type: ignore[no-untyped-def]
    responses.post(f"{BASE}/x", status=302)
    with pytest.raises(Redirected, match="HTTP 302 without a Location, not followed"):
        client.post_json("x", {"a": 1})
    assert len(responses.calls) == 1
