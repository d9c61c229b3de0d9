"""Production serving with gunicorn, started from ``jalon serve``.

Threaded workers (``gthread``) so that a slow or stalled client never stalls
intake for the others:

* an idle keep-alive connection waits in the worker's poller, not in a thread,
  and is closed after ``keepalive`` seconds;
* a connection that sends nothing is handed back to the poller by gunicorn
  after a few seconds;
* a client that stops in the middle of its headers or body holds one thread
  for at most ``settings.client_read_timeout_seconds`` (every blocking read on
  a client socket has that timeout here, see :class:`JalonThreadWorker`),
  and there are ``--threads`` of them per process.

Each gunicorn worker process also runs, by default, the background loops
(worker, dispatcher, scheduler: :mod:`jalon.connector.runners`), started in
``post_worker_init`` and stopped in ``worker_exit``.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.gthread import TConn, ThreadWorker

log = logging.getLogger("jalon.connector.server")


class _BoundedSocket:
    """A client socket whose blocking reads give up after ``timeout`` seconds.

    gunicorn switches client sockets between non-blocking (while they wait in
    the poller) and blocking (while a thread reads the request), and blocking
    means "forever": ``setblocking(True)`` becomes ``settimeout(timeout)``."""

    __slots__ = ("_sock", "_timeout")

    def __init__(self, sock: socket.socket, timeout: float):
        self._sock = sock
        self._timeout = timeout

    def setblocking(self, flag: bool) -> None:
        if flag:
            self._sock.settimeout(self._timeout)
        else:
            self._sock.setblocking(False)

    def fileno(self) -> int:
        return self._sock.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _Connection(TConn):  # type: ignore[misc]
    def close(self, graceful: bool = False) -> None:
        """Close without lingering. gunicorn's graceful close waits up to 2 s on
        the worker's main loop for the peer to close its side: a stalled client
        would freeze every other connection of the process meanwhile. Here the
        write side is shut (the peer gets the whole response and a FIN) and what
        already sits in the receive buffer is drained without waiting."""
        sock = self.sock
        if graceful:
            try:
                sock.shutdown(socket.SHUT_WR)
                sock.setblocking(False)
                for _ in range(16):
                    if not sock.recv(65536):
                        break
            except OSError:
                pass
        try:
            sock.close()
        except OSError:
            pass


class JalonThreadWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker with a read timeout on client sockets, and
    closes that never wait on the main loop."""

    read_timeout: float = 10.0

    def enqueue_req(self, conn):  # type: ignore[no-untyped-def]
        if not isinstance(conn.sock, _BoundedSocket):
            conn.sock = _BoundedSocket(conn.sock, self.read_timeout)
            conn.__class__ = _Connection
        super().enqueue_req(conn)


def post_worker_init(worker) -> None:  # type: ignore[no-untyped-def]
    """In each worker process, once the app is loaded: the background loops."""
    app = worker.wsgi
    runtime = app.extensions["jalon"]
    settings = runtime.settings
    JalonThreadWorker.read_timeout = settings.client_read_timeout_seconds
    if not (settings.run_worker or settings.run_scheduler):
        return
    from .runners import Runners

    worker.jalon_runners = Runners(
        runtime, worker=settings.run_worker, dispatcher=settings.run_worker, scheduler=settings.run_scheduler
    ).start()


def worker_exit(server, worker) -> None:  # type: ignore[no-untyped-def]
    runners = getattr(worker, "jalon_runners", None)
    if runners is not None:
        runners.stop(timeout=5.0)
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        app.extensions["jalon"].dispose()


class JalonServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, database_url: str, options: dict[str, Any]):
        self.database_url = database_url
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        from jalon.connector.app import create_app

        app = create_app(database_url=self.database_url)
        if os.environ.get("JALON_BENCH_NOOP") == "1":
            _add_bench_noop(app)
        return app


def _add_bench_noop(app) -> None:  # type: ignore[no-untyped-def]
    """``/bench/noop``, for ``bench/intake.py`` only: reads the body and answers
    202 like intake does, with no plugin and no database. The ceiling a delivery
    is measured against: the same server, the same request, none of the work."""
    from flask import request

    def noop():  # type: ignore[no-untyped-def]
        request.get_data()
        return app.response_class('{"status": "accepted"}', status=202, mimetype="application/json")

    app.add_url_rule("/bench/noop", "bench_noop", noop, methods=["GET", "POST"])


def options(*, host: str, port: int, workers: int, threads: int, access_log: bool = True) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "jalon.connector.server.JalonThreadWorker",
        "threads": threads,
        # kept-alive connections wait in the poller, not in threads: many are cheap
        "worker_connections": max(1000, threads * 4),
        # heartbeat of the worker process to the arbiter (gthread's main loop beats every second)
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        "limit_request_line": 8190,
        "accesslog": "-" if access_log else None,
        # each worker builds its own app, engine and pool after the fork
        "preload_app": False,
        "post_worker_init": post_worker_init,
        # gunicorn's control socket sits at one path per user: two servers would fight over it
        "control_socket_disable": True,
        "worker_exit": worker_exit,
    }


def run(*, database_url: str, host: str, port: int, workers: int, threads: int, access_log: bool = True) -> None:
    JalonServer(database_url, options(host=host, port=port, workers=workers, threads=threads,
                                      access_log=access_log)).run()
