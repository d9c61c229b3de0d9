"""The SSRF guard: admin-configured outbound URLs never reach this machine or
its private network, unless a channel explicitly allows it."""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from jalon.connector.net import ssrf
from jalon.connector.net.http import RestClient, Unavailable
from jalon.connector.net.ssrf import UrlNotAllowed, check_url

from .conftest import PUBLIC_ADDRESS, free_port

REFUSED = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://localhost/hook",
    "http://api.localhost/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:169.254.169.254]/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://224.0.0.1/",
    "http://100.64.0.1/",
    "http://192.0.2.10/",
    "http://[2001:db8::1]/",
    "file:///etc/passwd",
    "gopher://192.0.2.1/",
    "ftp://files.example.com/x",
    "https://user:pass@hooks.chat.test/x",
    "https://token@hooks.chat.test/x",
    "not a url",
    "https:///nohost",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_non_public_or_odd_url_is_refused_with_a_stable_code(url: str, public_dns) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UrlNotAllowed) as caught:
        check_url(url)
    assert caught.value.code == "url_not_allowed"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9000/hook", "http://10.0.0.5/hook", "http://[::1]/x",
                                 "http://169.254.169.254/", "http://localhost/hook"])
def test_allow_private_network_lifts_the_address_check(url: str) -> None:
    assert check_url(url, allow_private_network=True) == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "https://user:pass@10.0.0.1/"])
def test_allow_private_network_still_refuses_other_schemes_and_credentials(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        check_url(url, allow_private_network=True)


def test_a_public_name_passes_and_every_address_is_checked(public_dns) -> None:  # type: ignore[no-untyped-def]
    assert check_url("https://hooks.chat.test/services/x") == [PUBLIC_ADDRESS]


def test_a_name_is_refused_when_any_of_its_addresses_is_private() -> None:
    with pytest.raises(UrlNotAllowed, match="10.1.2.3"):
        check_url("https://mixed.test/", resolver=lambda host, port: [PUBLIC_ADDRESS, "10.1.2.3"])


def test_a_name_resolving_to_ipv4_mapped_loopback_is_refused() -> None:
    with pytest.raises(UrlNotAllowed):
        check_url("https://sneaky.test/", resolver=lambda host, port: ["::ffff:127.0.0.1"])


def test_at_configuration_time_an_unresolvable_name_is_accepted_but_not_at_send_time(public_dns) -> None:  # type: ignore[no-untyped-def]
    assert check_url("https://not-yet-in-dns.test/hook", resolve=False) == []
    with pytest.raises(socket.gaierror):
        check_url("https://not-yet-in-dns.test/hook")


def test_the_client_refuses_before_any_request_is_made(public_dns) -> None:  # type: ignore[no-untyped-def]
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post("http://127.0.0.1:9/hook", status=200)
        with pytest.raises(UrlNotAllowed):
            RestClient(None, timeout=1).request("POST", "http://127.0.0.1:9/hook", json={})
        assert len(mock.calls) == 0


def test_the_client_reports_an_unresolvable_host_as_unavailable(public_dns) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unavailable, match="cannot resolve"):
        RestClient(None, timeout=1, max_retries=0).request("GET", "https://gone.test/x")


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


def test_dns_rebinding_between_check_and_connect_is_caught_before_anything_is_sent(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The guard's lookup says public; the connection's own lookup says
    loopback (a zero-TTL rebind): the connected socket's peer is checked and
    closed before the request is written."""
    port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", port), _Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _Recorder.seen = []
    real_getaddrinfo = socket.getaddrinfo
    try:
        monkeypatch.setattr(ssrf, "resolve_host", lambda host, p: [PUBLIC_ADDRESS])

        def rebinding(host, *args, **kwargs):  # type: ignore[no-untyped-def]
            return real_getaddrinfo("127.0.0.1" if host == "rebind.test" else host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        with pytest.raises(UrlNotAllowed, match="loopback"):
            RestClient(None, timeout=2, max_retries=0).request("GET", f"http://rebind.test:{port}/secret")
        # the same server is reachable when a channel allows the private network
        response = RestClient(None, timeout=2, max_retries=0, allow_private_network=True).request(
            "GET", f"http://rebind.test:{port}/allowed")
        assert response.status_code == 200
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert _Recorder.seen == ["/allowed"]
