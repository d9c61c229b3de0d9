"""Stalled and idle clients do not stall intake for the others.

A client that sends its headers and half its body, then stops; one that
connects and says nothing; idle keep-alive connections: all of them held open
while another client's signed deliveries keep being acknowledged.
"""

from __future__ import annotations

import socket
import time
from contextlib import ExitStack

import pytest
import requests

from tests.reliability import fakesource

ANSWER_WITHIN = 5.0  # seconds: generous, this is about being answered at all, not speed


def stalled_half_body(port: int, path: str) -> socket.socket:
    body = fakesource.time_body("WL-stalled", 60)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Fake-Delivery: stalled\r\nX-Fake-Signature: {fakesource.sign(fakesource.SECRET, body)}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(head + body[: len(body) // 2])
    return sock


def stalled_in_headers(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le".encode())
    return sock


def silent(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def idle_keep_alive(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    return sock  # kept open, saying nothing more


def deliveries_are_answered_promptly(server, count: int, prefix: str) -> list[float]:  # type: ignore[no-untyped-def]
    timings = []
    with requests.Session() as session:
        for i in range(count):
            key, body = f"{prefix}-{i}", fakesource.time_body(f"WL-{prefix}-{i}", 60)
            started = time.monotonic()
            response = session.post(server.hook_url, data=body, timeout=ANSWER_WITHIN,
                                    headers=fakesource.headers_for(fakesource.SECRET, key, body))
            timings.append(time.monotonic() - started)
            assert response.status_code == 202, response.text
    return timings


@pytest.mark.slow
def test_stalled_and_idle_connections_do_not_stall_signed_deliveries(relay):
    server = relay(milestones=1)
    path = f"/hooks/fake/{fakesource.INTEGRATION_KEY}"
    with ExitStack() as held:
        for _ in range(4):
            held.callback(stalled_half_body(server.port, path).close)
            held.callback(stalled_in_headers(server.port, path).close)
            held.callback(silent(server.port).close)
        for _ in range(20):
            held.callback(idle_keep_alive(server.port).close)
        time.sleep(0.5)  # the stalled ones are now sitting in the server
        deliveries_are_answered_promptly(server, 20, "busy")


@pytest.mark.slow
def test_more_stalled_clients_than_threads_are_cut_off_by_the_read_timeout(relay):
    # 4 threads, 8 clients stalled mid-request: only the read timeout frees the threads
    server = relay(milestones=1, threads=4, extra_env={"JALON_CLIENT_READ_TIMEOUT_SECONDS": "1"})
    path = f"/hooks/fake/{fakesource.INTEGRATION_KEY}"
    with ExitStack() as held:
        for _ in range(4):
            held.callback(stalled_half_body(server.port, path).close)
            held.callback(stalled_in_headers(server.port, path).close)
        time.sleep(0.3)
        deliveries_are_answered_promptly(server, 5, "starved")
