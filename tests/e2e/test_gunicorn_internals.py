"""The gunicorn internals ``jalon.connector.web.server`` relies on, on the
installed gunicorn: this test fails when an upgrade changes them.

The server subclasses gunicorn's threaded worker (``gthread``) and its
connection class, and counts on what they do that no public API promises:
``handle(conn)`` answers True when the connection may serve another request
(and may then be called again at once on the same thread), gunicorn makes a
client socket blocking with ``setblocking(True)`` (never ``settimeout``),
the thread pool is a ``ThreadPoolExecutor`` (its ``_work_queue`` tells
whether other connections wait), a parser's read-ahead sits in
``conn.parser.unreader.buf``, the logger's ``atoms`` and ``setup`` (which
:class:`RedactingLogger` overrides to keep approval tokens out of the access
log), and the settings given are all settings gunicorn knows (it skips
unknown ones silently). The gunicorn dependency is pinned
(pyproject.toml) to the versions this was checked with; when it moves,
re-check the server against the new gthread, then this test.
"""

from __future__ import annotations

import inspect
import os
import selectors
import socket
import threading
import time
import tomllib
from collections.abc import Iterator
from concurrent import futures
from importlib.metadata import version
from pathlib import Path
from typing import Any

import gunicorn
import pytest
from gunicorn.app.base import BaseApplication
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers import base, gthread
from packaging.requirements import Requirement
from packaging.version import Version

from jalon.connector.web import server
from jalon.connector.web.server import JalonServer, JalonThreadWorker, _BoundedSocket, _Connection

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _pinned() -> Requirement:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    [pin] = [Requirement(line) for line in dependencies if Requirement(line).name == "gunicorn"]
    return pin


def test_gunicorn_is_pinned_to_a_tested_range_and_the_installed_one_is_in_it():
    pin = _pinned()
    assert any(spec.operator == "<" for spec in pin.specifier), f"{pin}: no upper bound"
    installed = Version(version("gunicorn"))
    assert installed == Version(gunicorn.__version__)
    assert pin.specifier.contains(installed), f"gunicorn {installed} is outside the tested range {pin}"


def _parameters(function: Any) -> list[tuple[str, Any]]:
    return [(name, parameter.default) for name, parameter in inspect.signature(function).parameters.items()]


# what the server overrides or calls, with the signature it overrides or calls it with
@pytest.mark.parametrize(("function", "expected"), [
    (gthread.ThreadWorker.enqueue_req, [("self", inspect.Parameter.empty), ("conn", inspect.Parameter.empty)]),
    (gthread.ThreadWorker.handle, [("self", inspect.Parameter.empty), ("conn", inspect.Parameter.empty)]),
    (gthread.ThreadWorker.get_thread_pool, [("self", inspect.Parameter.empty)]),
    (gthread.TConn.close, [("self", inspect.Parameter.empty), ("graceful", False)]),
    (gthread.TConn.__init__, [(name, inspect.Parameter.empty) for name in ("self", "cfg", "sock", "client", "server")]),
    (base.Worker.__init__, [(name, inspect.Parameter.empty)
                            for name in ("self", "age", "ppid", "sockets", "app", "timeout", "cfg", "log")]),
    (BaseApplication.__init__, [("self", inspect.Parameter.empty), ("usage", None), ("prog", None)]),
    (BaseApplication.load_config, [("self", inspect.Parameter.empty)]),
    (BaseApplication.load, [("self", inspect.Parameter.empty)]),
    (BaseApplication.run, [("self", inspect.Parameter.empty)]),
    (Logger.atoms, [(name, inspect.Parameter.empty)
                    for name in ("self", "resp", "req", "environ", "request_time")]),
    (Logger.setup, [("self", inspect.Parameter.empty), ("cfg", inspect.Parameter.empty)]),
], ids=lambda value: getattr(value, "__qualname__", ""))
def test_what_the_server_overrides_or_calls_keeps_its_signature(function, expected):  # type: ignore[no-untyped-def]
    assert _parameters(function) == expected


def test_every_method_the_server_overrides_still_exists_in_gunicorn_with_its_signature():
    """Each class of the server module that subclasses one of gunicorn's, each
    method it defines: when a gunicorn class along its bases defines it too,
    the override must take the same parameters (a renamed or reshaped method
    would leave the override never called, or called wrongly)."""
    checked = set()
    for cls in vars(server).values():
        if not (isinstance(cls, type) and cls.__module__ == server.__name__):
            continue
        bases = [base for base in cls.__mro__[1:] if base.__module__.split(".")[0] == "gunicorn"]
        for name, member in vars(cls).items():
            if not inspect.isfunction(member) or name.startswith("__"):  # a constructor is called by us
                continue
            overridden = next((vars(base)[name] for base in bases if name in vars(base)), None)
            if overridden is not None:
                assert _parameters(member) == _parameters(overridden), f"{cls.__name__}.{name}"
                checked.add(f"{cls.__name__}.{name}")
    # never vacuous: at least what the server overrode when this test was written
    assert {"_Connection.close", "JalonThreadWorker.enqueue_req", "JalonThreadWorker.handle",
            "JalonServer.load_config", "JalonServer.load"} <= checked
    assert _parameters(server.RedactingLogger.atoms) == _parameters(Logger.atoms)
    assert _parameters(server.RedactingLogger.setup) == _parameters(Logger.setup)


def test_every_option_is_a_gunicorn_setting_that_takes_its_value():
    given = server.options(host="127.0.0.1", port=8000, workers=1, threads=4)
    cfg = Config()
    unknown = sorted(set(given) - set(cfg.settings))
    assert not unknown, f"settings gunicorn no longer knows (it would skip them silently): {unknown}"
    for name, value in given.items():
        cfg.set(name, value)  # the validators: hooks' arity, types
    assert cfg.worker_class is JalonThreadWorker
    assert cfg.settings["post_worker_init"].get() is server.post_worker_init
    assert cfg.settings["worker_exit"].get() is server.worker_exit
    assert cfg.logger_class is server.RedactingLogger
    assert JalonServer("sqlite://", given).cfg.threads == 4  # load_config applies them


# ---------------------------------------------------------------- the worker at work


def _app(environ, start_response):  # type: ignore[no-untyped-def]
    environ["wsgi.input"].read()
    served.append(threading.get_ident())
    body = b"ok"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


served: list[int] = []


@pytest.fixture
def worker() -> Iterator[JalonThreadWorker]:
    """A worker as gunicorn's arbiter would make it, its pool, poller and
    callback queue ready, serving ``_app``, with no process of its own."""
    cfg = Config()
    for name, value in server.options(host="127.0.0.1", port=0, workers=1, threads=2, access_log=False).items():
        cfg.set(name, value)
    made = JalonThreadWorker(1, os.getpid(), [], None, 30, cfg, Logger(cfg))
    made.wsgi = _app
    made.tpool = made.get_thread_pool()
    made.poller = selectors.DefaultSelector()
    made.method_queue.init()
    served.clear()
    try:
        yield made
    finally:
        made.murder_keepalived(force=True)
        made.tpool.shutdown(wait=True)
        made.poller.close()
        made.method_queue.close()
        made.tmp.close()


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(server side, client side) of a loopback TCP connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        accepted, _ = listener.accept()
    try:
        yield accepted, client
    finally:
        client.close()
        accepted.close()


def _request(path: str, body: bytes = b"{}") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _run_callbacks(worker: JalonThreadWorker, timeout: float = 5.0) -> None:
    """What the worker's main loop does when a request thread is done."""
    ready = selectors.DefaultSelector()
    ready.register(worker.method_queue.fileno(), selectors.EVENT_READ)
    try:
        assert ready.select(timeout), "the request thread never handed the connection back"
    finally:
        ready.close()
    worker.method_queue.run_callbacks(None)


def test_requests_sent_back_to_back_are_served_by_one_thread_and_the_connection_kept(worker, connection):  # type: ignore[no-untyped-def]
    accepted, client = connection
    assert isinstance(worker.tpool, futures.ThreadPoolExecutor) and hasattr(worker.tpool, "_work_queue")
    client.sendall(_request("/a") + _request("/b") + _request("/c"))
    conn = gthread.TConn(worker.cfg, accepted, client.getsockname(), accepted.getsockname())
    worker.enqueue_req(conn)
    assert type(conn) is _Connection and isinstance(conn.sock, _BoundedSocket)
    received = b""
    while received.count(b"HTTP/1.1 200") < 3:
        chunk = client.recv(65536)
        assert chunk, received
        received += chunk
    _run_callbacks(worker)
    # one handle() call served the three (handle answered True: keep-alive), then gunicorn
    # put the connection back in its poller, as a kept-alive connection
    assert len(served) == 3 and len(set(served)) == 1
    assert list(worker.keepalived_conns) == [conn]
    assert conn.parser.unreader.buf.getvalue() == b""


def test_a_client_stalled_mid_body_is_cut_off_by_the_read_timeout(worker, connection):  # type: ignore[no-untyped-def]
    accepted, client = connection
    worker.read_timeout = 0.3
    whole = _request("/stalled", b"x" * 100)
    client.sendall(whole[:-50])
    conn = gthread.TConn(worker.cfg, accepted, client.getsockname(), accepted.getsockname())
    started = time.monotonic()
    worker.enqueue_req(conn)
    _run_callbacks(worker)  # handle() gave up: the blocking read had the timeout, not "forever"
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 4.0
    assert not served and not worker.keepalived_conns
    client.settimeout(2)
    assert client.recv(65536) == b""  # closed, without lingering on the main loop
