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
  and there are ``--threads`` of them per process;
* a client that sends its requests back to back is served by the same thread
  while it does, when no other connection waits for one (gunicorn would hand
  the connection back to its main loop after each request, which costs about
  as much CPU as a bare request: see :meth:`JalonThreadWorker.handle`).

Each gunicorn worker process also runs, by default, the background loops
(worker, dispatcher, scheduler: :mod:`jalon.connector.jobs.runners`), started in
``post_worker_init`` and stopped in ``worker_exit``.

Each worker process is bound to one CPU (``settings.cpu_affinity``, on by
default; see :func:`bind_to_one_cpu`): its threads take turns on Python's one
lock, and handing that lock from a thread on one CPU to a thread on another
costs more than the request itself.

The access log (``--access-log``, on standard output) and the error log
never show the token of a one-click approval link: :class:`RedactingLogger`
writes ``/approve/(secret)`` instead, and ``(secret)`` for credential headers.

:class:`JalonThreadWorker` and :class:`_Connection` lean on gthread's
internals, which no public API promises: what ``handle`` answers, that client
sockets are made blocking with ``setblocking``, the pool's work queue, the
parser's read-ahead buffer. gunicorn is pinned to the versions they were
checked with (pyproject.toml), and ``tests/e2e/test_gunicorn_internals.py``
fails when the installed gunicorn changes them.
"""

from __future__ import annotations

import gc
import logging
import os
import select
import socket
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.gthread import TConn, ThreadWorker

from jalon.connector.redaction import SECRET_PATH, RedactPaths, redact_paths

log = logging.getLogger("jalon.connector.web.server")

# how long a request thread waits for the next request of a kept-alive client
# before handing the connection back to the poller (see JalonThreadWorker.handle)
KEEPALIVE_LINGER_SECONDS = 0.005
# requests served in a row on one connection before it goes back to the poller (fairness)
MAX_REQUESTS_PER_TURN = 100


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

    # the calls of every request, spared the __getattr__ detour
    def recv(self, size: int, flags: int = 0) -> bytes:
        return self._sock.recv(size, flags)

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._sock.sendall(data, flags)

    def gettimeout(self) -> float | None:
        return self._sock.gettimeout()

    def settimeout(self, value: float | None) -> None:
        self._sock.settimeout(value)

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
    linger: float = KEEPALIVE_LINGER_SECONDS

    def enqueue_req(self, conn):  # type: ignore[no-untyped-def]
        if not isinstance(conn.sock, _BoundedSocket):
            conn.sock = _BoundedSocket(conn.sock, self.read_timeout)
            conn.__class__ = _Connection
        super().enqueue_req(conn)

    def handle(self, conn):  # type: ignore[no-untyped-def]
        """Serve the connection's requests in turn while its client keeps them
        coming, then hand it back to the poller.

        gunicorn hands a kept-alive connection back to the main loop after
        each request (a pipe write, a callback, a poller registration, then a
        new submission to the pool: about as much CPU as a bare request). A
        client that sends its next request at once, as a sender with a queue
        of webhooks does, is served by the same thread instead. The thread
        waits ``linger`` seconds at most, and only while no other connection
        waits for a thread; then the connection returns to the poller as
        before (an idle client never holds a thread longer than that)."""
        result = super().handle(conn)
        served = 1
        while (result is True and self.alive and served < MAX_REQUESTS_PER_TURN
               and not self._others_waiting() and self._readable_soon(conn)):
            result = super().handle(conn)
            served += 1
        return result

    def _others_waiting(self) -> bool:
        queue = getattr(self.tpool, "_work_queue", None)
        return bool(queue is not None and not queue.empty())

    def _readable_soon(self, conn) -> bool:  # type: ignore[no-untyped-def]
        if conn.parser is not None and conn.parser.unreader.buf.getvalue():
            return True  # the next request is already read ahead
        try:
            poller = select.poll()
            poller.register(conn.sock.fileno(), select.POLLIN)
            return bool(poller.poll(self.linger * 1000))
        except (OSError, ValueError):
            return False


def bind_to_one_cpu(index: int) -> int | None:
    """Bind every thread of this process to one of the CPUs it may use, the
    ``index``-th modulo their number (so that the workers of a server spread
    over them); the CPU chosen, or None when there is no choice to make.

    A web process runs one Python thread at a time: its request threads and
    background loops take turns on the interpreter's lock. When the threads
    sit on different CPUs, each turn wakes a thread on another CPU and moves
    the request's data between caches; measured here (2 vCPUs, SQLite, 16
    connections), a delivery's acknowledgement cost 1.3 ms of CPU unbound and
    0.7 ms bound, and the process never used more than one CPU's worth of
    Python anyway. What the process waits on outside the lock (the database,
    the network) goes on while it waits, bound or not. Threads started later
    inherit the binding. Off with ``--no-cpu-affinity`` (JALON_CPU_AFFINITY=0),
    say when the host's scheduler should place the process itself."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(allowed) < 2:
        return None
    cpu = allowed[index % len(allowed)]
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), {cpu})
        except OSError:  # a thread that just ended
            pass
    return cpu


def post_worker_init(worker) -> None:  # type: ignore[no-untyped-def]
    """In each worker process, once the app is loaded: the CPU binding, then
    the background loops."""
    app = worker.wsgi
    runtime = app.extensions["jalon"]
    settings = runtime.settings
    if settings.cpu_affinity:
        cpu = bind_to_one_cpu(worker.age - 1)
        if cpu is not None:
            log.info("worker %s bound to CPU %s", worker.pid, cpu)
    JalonThreadWorker.read_timeout = settings.client_read_timeout_seconds
    # What exists once the app is loaded lives as long as the process: a full
    # garbage collection need not walk it again. Unfrozen, such a collection
    # took some 60 ms here, a pause of every thread, acknowledgements included.
    gc.collect()
    gc.freeze()
    if not (settings.run_worker or settings.run_scheduler):
        return
    from jalon.connector.jobs.runners import Runners

    intake = app.extensions["jalon.intake"]
    worker.jalon_runners = Runners(
        runtime, worker=settings.run_worker, dispatcher=settings.run_worker, scheduler=settings.run_scheduler,
        intake=intake,
    ).start()


def worker_exit(server, worker) -> None:  # type: ignore[no-untyped-def]
    runners = getattr(worker, "jalon_runners", None)
    if runners is not None:
        runners.stop(timeout=5.0)
    app = getattr(worker, "wsgi", None)
    if app is not None and hasattr(app, "extensions"):
        intake = app.extensions.get("jalon.intake")
        if intake is not None:
            intake.dispose()
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


BENCH_NOOP_BODY = b'{"status": "accepted"}'


def _add_bench_noop(app) -> None:  # type: ignore[no-untyped-def]
    """Two bare endpoints, for ``bench/intake.py`` only: each reads the body and
    answers 202 like intake does, with no plugin and no database. The ceilings a
    delivery is measured against: the same server, the same request, none of
    the work.

    * ``/bench/noop`` is a Flask view (what any endpoint of the app costs);
    * ``/bench/noop-wsgi`` is answered in front of Flask, where intake's
      :class:`~jalon.connector.relay.intake.Intake` answers ``/hooks/...``, with the
      same body reading: the like-for-like ceiling of intake."""
    from flask import request

    from jalon.connector.relay.intake import read_body

    def noop():  # type: ignore[no-untyped-def]
        request.get_data()
        return app.response_class(BENCH_NOOP_BODY, status=202, mimetype="application/json")

    app.add_url_rule("/bench/noop", "bench_noop", noop, methods=["GET", "POST"])

    limit = app.extensions["jalon"].settings.max_body_bytes
    inner = app.wsgi_app
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(BENCH_NOOP_BODY)))]

    def bare(environ, start_response):  # type: ignore[no-untyped-def]
        if environ.get("PATH_INFO") == "/bench/noop-wsgi" and environ.get("REQUEST_METHOD") == "POST":
            read_body(environ, limit)
            start_response("202 ACCEPTED", headers)
            return [BENCH_NOOP_BODY]
        return inner(environ, start_response)

    app.wsgi_app = bare


# access-log atoms that are credentials whatever the request (an operator's own format may name them)
SECRET_ATOMS = frozenset({
    "{authorization}i", "{proxy-authorization}i", "{cookie}i", "{x-api-key}i", "{x-auth-token}i", "{set-cookie}o",
    "{http_authorization}e", "{http_proxy_authorization}e", "{http_cookie}e", "{http_x_api_key}e",
    "{http_x_auth_token}e",
})


class RedactingLogger(Logger):
    """gunicorn's logger, keeping capabilities out of the logs: the token of a
    one-click approval link (``/approve/<token>``: whoever reads it may issue
    an invoice) is ``(secret)`` in every atom of the access log (request
    line, path, referer, environ), as are credential headers; the error log
    redacts the same paths ("Error handling request /approve/…")."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        if not any(isinstance(f, RedactPaths) for f in self.error_log.filters):
            self.error_log.addFilter(RedactPaths())

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if name in SECRET_ATOMS:
                atoms[name] = SECRET_PATH
            elif isinstance(value, str):
                atoms[name] = redact_paths(value)
        return atoms


def options(*, host: str, port: int, workers: int, threads: int, access_log: bool = True) -> dict[str, Any]:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "jalon.connector.web.server.JalonThreadWorker",
        "threads": threads,
        # kept-alive connections wait in the poller, not in threads: many are cheap
        "worker_connections": max(1000, threads * 4),
        # heartbeat of the worker process to the arbiter (gthread's main loop beats every second)
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 5,
        "limit_request_line": 8190,
        "accesslog": "-" if access_log else None,
        # no approval token nor credential in the access and error logs
        "logger_class": "jalon.connector.web.server.RedactingLogger",
        # each worker builds its own app, engine and pool after the fork
        "preload_app": False,
        "post_worker_init": post_worker_init,
        # gunicorn's control socket sits at one path per user: two servers would fight over it
        "control_socket_disable": True,
        "worker_exit": worker_exit,
    }


def start_up_warnings(database_url: str) -> list[str]:
    """What the admin hears once when the server starts, from the arbiter
    before any worker process is forked (so once per start, whatever
    ``--workers``): today, that finance has no channel. A database that
    cannot be read yet says nothing here: the workers will say it."""
    from sqlalchemy.exc import SQLAlchemyError

    from jalon.connector.outbox.notify import finance_channel_warning
    from jalon.core.db import make_engine, make_sessionmaker, read_only_session

    engine = make_engine(database_url)
    try:
        with read_only_session(make_sessionmaker(engine)) as session:
            warning = finance_channel_warning(session)
    except SQLAlchemyError:
        return []
    finally:
        engine.dispose()
    return [warning] if warning else []


def run(*, database_url: str, host: str, port: int, workers: int, threads: int, access_log: bool = True) -> None:
    for warning in start_up_warnings(database_url):
        log.warning("warning: %s", warning)  # no logging set up here: Python prints it bare on stderr
    JalonServer(database_url, options(host=host, port=port, workers=workers, threads=threads,
                                      access_log=access_log)).run()
