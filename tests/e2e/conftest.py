"""A real `jalon serve` process on a free loopback port, stopped after the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

JALON = str(Path(sys.executable).with_name("jalon"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log: Path


def wait_until_up(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"jalon serve exited: {server.log.read_text(errors='replace')[-2000:]}")
        try:
            if requests.get(f"{server.url}/healthz", timeout=5).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or still starting on a busy machine
            pass
        time.sleep(0.1)
    raise RuntimeError(f"jalon serve did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture
def serve(db_url, tmp_path) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [JALON, "--database-url", db_url, "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", db_url, process, log)
    try:
        wait_until_up(server)
        yield server
    finally:
        stop(process)
