"""Webhook intake: ``POST /hooks/<source>/<integration-key>``.

Acknowledge first, work later. The order of work is fixed, each step cheaper
than the next and each one refusing before anything is stored:

1. the body is read up to ``settings.max_body_bytes`` (413 beyond it, whatever
   Content-Length claims, and before reading when Content-Length says so);
2. the source plugin and the integration must exist, be enabled and agree
   (404 otherwise, the same answer for every case: nothing leaks);
3. the source plugin verifies authenticity on the RAW bytes (401, stored nowhere);
4. the delivery is inserted in the inbox under its idempotency key and
   committed, then answered 202 (or 200 ``duplicate`` when the key is known).
   The transaction that inserts it reads the integration first: a delivery is
   stored only if the integration is still the one it was checked against in
   steps 2 and 3; otherwise they run again on the row as it now stands. So a
   change (a new secret, a disabled integration) counts from the next
   delivery on, in any process, even for a delivery verified just before the
   change and not yet stored.

No PM-tool REST call and no billing work happens here: the worker does both.

The path is the hot one of the service (a PM tool may send bursts of
thousands), so it is served by :class:`Intake`, a WSGI middleware in front of
Flask: the request never builds Flask's request context, routing or response
objects, the integration the process already knows is used at once (the
storing transaction confirms it, see step 4; :class:`Endpoints`), and on
SQLite the deliveries of concurrent requests are committed together, the
integration read once for them all (:class:`Inbox`).
Refusals and errors still go through the app's one error handler, so every
answer other than the 2xx is the same JSON problem as anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from flask import Blueprint, Flask, current_app, request
from sqlalchemy import Engine, bindparam, create_engine, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.pool import NullPool
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_content_length, get_input_stream

from jalon.core.db import BUSY_TIMEOUT_SECONDS, make_engine, sqlite_write_lock
from jalon.core.models import Delivery, Integration
from jalon.core.types import utcnow

from jalon.connector.web.api.problems import Problem, handle_error
from jalon.connector.plugin.types import IntegrationView
from jalon.connector.plugin.manager import sources
from jalon.connector.runtime import Runtime
from jalon.connector.settings import Settings

log = logging.getLogger("jalon.connector.relay.intake")

bp = Blueprint("hooks", __name__)

PREFIX = "/hooks/"
MAX_KEY_LENGTH = 200
# never stored: credentials of the sender or of a proxy in between, and hop-by-hop noise
DROPPED_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token",
    "connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection",
})
_DELIVERIES = Delivery.__table__
_INTEGRATIONS = Integration.__table__
_INTEGRATION_COLUMNS = (
    _INTEGRATIONS.c.id, _INTEGRATIONS.c.key, _INTEGRATIONS.c.source, _INTEGRATIONS.c.name,
    _INTEGRATIONS.c.base_url, _INTEGRATIONS.c.settings, _INTEGRATIONS.c.secret,
    _INTEGRATIONS.c.previous_secret, _INTEGRATIONS.c.secret_rotated_at, _INTEGRATIONS.c.credentials,
    _INTEGRATIONS.c.enabled,
)

# the values intake stores for a delivery, in this order
DELIVERY_KEYS = ("integration_id", "source", "idempotency_key", "received_at", "headers", "body", "body_sha256",
                 "status", "attempts", "next_attempt_at", "outcomes")
# those every new delivery starts with
NEW_DELIVERY: Mapping[str, Any] = MappingProxyType({"status": "pending", "attempts": 0, "outcomes": []})

# built once: the request only binds values. Both read the same columns: the raw row a
# delivery was checked against (by key) compares with the row the storing transaction reads (by id)
_BY_KEY = select(*_INTEGRATION_COLUMNS).where(_INTEGRATIONS.c.key == bindparam("key"))
_BY_ID = select(*_INTEGRATION_COLUMNS).where(_INTEGRATIONS.c.id == bindparam("id"))
# Inbox.store's answer for a delivery checked against an integration that has changed since
STALE = -1
# how many times a delivery is checked again when the integration keeps changing under it
_CHECKS = 5
_ACCEPTED = "202 ACCEPTED"
_DUPLICATE = "200 OK"
_DUPLICATE_BODY = json.dumps({"status": "duplicate"}).encode()


def accepted_secrets(integration: Any, settings: Settings, now: datetime) -> tuple[str, ...]:
    """The secrets a delivery may be signed with right now: the current one,
    and the previous one while the rotation overlap lasts."""
    secrets: list[str] = []
    if integration.secret:
        secrets.append(integration.secret)
    previous, rotated_at = integration.previous_secret, integration.secret_rotated_at
    if previous and rotated_at is not None and previous not in secrets:
        if now - rotated_at < timedelta(hours=settings.secret_overlap_hours):
            secrets.append(previous)
    return tuple(secrets)


def integration_view(integration: Any, settings: Settings, now: datetime) -> IntegrationView:
    """The read-only view a plugin gets of an integration (a row or an ORM
    object): its settings and credentials are copies behind read-only
    mappings, so that a view shared between requests cannot be changed."""
    return IntegrationView(
        key=integration.key,
        source=integration.source,
        name=integration.name,
        base_url=integration.base_url,
        settings=MappingProxyType(dict(integration.settings or {})),
        secrets=accepted_secrets(integration, settings, now),
        credentials=MappingProxyType(dict(integration.credentials or {})),
    )


def stored_headers(headers: Mapping[str, str], secrets: tuple[str, ...]) -> dict[str, str]:
    """The headers kept with a delivery (``headers`` as :func:`request_headers`
    gives them, names in lower case): without credentials and without any
    header whose value carries a secret (GitLab-style token headers)."""
    secrets = tuple(secret for secret in secrets if secret)
    return {name: value for name, value in headers.items()
            if name not in DROPPED_HEADERS and not any(secret in value for secret in secrets)}


def request_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers with lower-case names, read from the WSGI
    environ as Werkzeug reads them (``HTTP_*``, plus the content type and length)."""
    headers = {name[5:].replace("_", "-").lower(): value for name, value in environ.items()
               if name[:5] == "HTTP_" and name != "HTTP_CONTENT_TYPE" and name != "HTTP_CONTENT_LENGTH"}
    for name, header in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        value = environ.get(name)
        if value:
            headers[header] = value
    return headers


def idempotency_key(runtime: Runtime, source: str, view: IntegrationView, headers: Mapping[str, str],
                    body: bytes) -> str:
    key = runtime.pm.hook.jalon_source_idempotency_key(source=source, integration=view, headers=headers, body=body)
    if not key:
        return "sha256:" + hashlib.sha256(body).hexdigest()
    key = str(key)
    if len(key) > MAX_KEY_LENGTH:
        # a too-long key still identifies the delivery: keep its digest
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _not_found() -> Problem:
    return Problem(404, "integration_not_found", "no such webhook endpoint")


def _too_large(limit: int) -> Problem:
    return Problem(413, "payload_too_large", f"the body exceeds {limit} bytes")


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The raw body, at most ``limit`` bytes; a :class:`Problem` 413 beyond it,
    raised before reading anything when Content-Length already says so."""
    declared = get_content_length(environ)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    # Content-Length may be absent (chunked) or lie: read at most one byte more than allowed;
    # one byte more tells "too long" apart from "exactly the limit" on a stream that stops
    # quietly at its maximum
    try:
        body = get_input_stream(environ, max_content_length=limit + 1).read(limit + 1)
    except RequestEntityTooLarge:  # a chunked body that ran past the limit
        body = None
    if body is None or len(body) > limit:
        raise _too_large(limit)
    return body


# ------------------------------------------------------------------ integrations


class _Endpoint:
    """One integration as intake needs it, built from its row."""

    __slots__ = ("row", "id", "source", "enabled", "integration", "view", "view_until")

    def __init__(self, row: tuple[Any, ...], integration: Any):
        self.row = row
        self.id = integration.id
        self.source = integration.source
        self.enabled = bool(integration.enabled)
        self.integration = integration
        self.view: IntegrationView | None = None
        self.view_until: datetime | None = None


class _Row:
    """A processed integration row, with the attribute names of the model."""

    __slots__ = tuple(column.key for column in _INTEGRATION_COLUMNS)

    def __init__(self, values: Iterable[Any]):
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)


class Endpoints:
    """Integrations by key, as this process last read them (``known``), and
    read afresh (``lookup``): one prepared query on a raw connection.

    A delivery is checked against the known integration, and the transaction
    that stores it confirms that the integration's row is still the same
    (:class:`Inbox`); a refusal, or a row found changed there, sends the
    delivery back to a fresh lookup. So the common delivery costs no query
    of its own and a change (a new secret, a disabled integration) still
    counts from the next delivery on, in any process. What is derived from
    the row (its typed values, the view handed to the plugin) is rebuilt
    only when the row differs from the one it was built from, and the view
    when the rotation overlap of a previous secret ends.

    The connections are intake's own (autocommit, read-only on SQLite): one
    per request thread looking up at the same moment, at most."""

    def __init__(self, engine: Engine, settings: Settings):
        self.settings = settings
        self.engine = _lookup_engine(engine)
        dialect = self.engine.dialect
        self.sql = _BY_KEY.compile(dialect=dialect).string
        self.positional = dialect.positional
        self.processors = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in _INTEGRATION_COLUMNS]
        self.cache: dict[str, _Endpoint] = {}
        # (pool proxy, DBAPI connection): the proxy closes the connection when it is dropped
        self.connections: queue.SimpleQueue[tuple[Any, Any]] = queue.SimpleQueue()
        self.overlap = timedelta(hours=settings.secret_overlap_hours)

    def _fetch(self, key: str) -> tuple[Any, ...] | None:
        try:
            held = self.connections.get_nowait()
        except queue.Empty:
            proxy = self.engine.raw_connection()
            held = (proxy, proxy.dbapi_connection)
        try:
            cursor = held[1].cursor()
            try:
                cursor.execute(self.sql, (key,) if self.positional else {"key": key})
                row = cursor.fetchone()
            finally:
                cursor.close()
        except BaseException:
            held[0].invalidate()  # a connection in doubt is not reused
            raise
        self.connections.put(held)
        return None if row is None else tuple(row)

    def known(self, key: str) -> _Endpoint | None:
        """The integration as this process last read it (no query), if it did."""
        return self.cache.get(key)

    def lookup(self, key: str) -> _Endpoint | None:
        """The integration as it stands now."""
        row = self._fetch(key)
        if row is None:
            self.cache.pop(key, None)
            return None
        endpoint = self.cache.get(key)
        if endpoint is None or endpoint.row != row:
            values = [value if process is None else process(value) for process, value in zip(self.processors, row)]
            endpoint = self.cache[key] = _Endpoint(row, _Row(values))
        return endpoint

    def view(self, endpoint: _Endpoint, now: datetime) -> IntegrationView:
        """The plugin's read-only view of the integration, right now."""
        view, until = endpoint.view, endpoint.view_until
        if view is None or (until is not None and now >= until):
            integration = endpoint.integration
            view = integration_view(integration, self.settings, now)
            # the accepted secrets change when the previous one's overlap ends
            rotated_at = integration.secret_rotated_at
            until = rotated_at + self.overlap if (integration.previous_secret and rotated_at is not None
                                                   and now - rotated_at < self.overlap) else None
            endpoint.view, endpoint.view_until = view, until
        return view

    def dispose(self) -> None:
        while True:
            try:
                self.connections.get_nowait()[0].close()
            except queue.Empty:
                break
        self.engine.dispose()


def _lookup_engine(engine: Engine) -> Engine:
    """An engine for :class:`Endpoints`' own connections: autocommit (a lookup
    holds no snapshot and no lock) and, on SQLite, read-only."""
    if engine.dialect.name == "sqlite":
        lookup = create_engine(engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        event.listen(lookup, "connect", _read_only)
        return lookup
    return make_engine(engine.url.render_as_string(hide_password=False), poolclass=NullPool,
                       isolation_level="AUTOCOMMIT")


# ------------------------------------------------------------------ the inbox


def _read_only(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # reads outside any write transaction: the app's engine opens every transaction with
    # BEGIN IMMEDIATE, which would queue each lookup behind the commit on disk
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


class _Pending:
    """A delivery waiting for the commit that holds it. ``wake`` is a lock
    taken at birth and released once: when the delivery's commit is done, or
    when its thread's turn to commit the queue has come. Each waiting thread
    is woken once, for its own reason (a shared condition would wake every
    waiting thread at every commit, each to find its delivery still queued)."""

    __slots__ = ("values", "checked", "done", "delivery_id", "error", "wake")

    def __init__(self, values: dict[str, Any], checked: tuple[Any, ...]):
        self.values = values
        self.checked = checked
        self.done = False
        self.delivery_id: int | None = None
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


def _inbox_insert(statement: Any) -> Any:
    """The inbox's ``INSERT``: a key already stored for the integration is
    left out, and each row inserted is returned as (id, integration, key)."""
    return (statement.on_conflict_do_nothing(index_elements=["integration_id", "idempotency_key"])
            .returning(_DELIVERIES.c.id, _DELIVERIES.c.integration_id, _DELIVERIES.c.idempotency_key))


class _RawInsert:
    """The inbox's Core ``INSERT`` of ``count`` rows at once (``sql(count)``,
    compiled once per count for the engine's dialect), run on a raw DBAPI
    cursor, its values converted by the columns' own bind processors: what
    SQLAlchemy would send, without its per-statement machinery (which costs
    more than the insert on this path). It returns (id, integration, key) of
    each row inserted; a row whose key is known is left out (``ON CONFLICT DO
    NOTHING``). The values of ``fixed`` are converted once, here; a value
    given for two columns (the time received, which is also the first
    attempt's) once per row."""

    # rows per statement at most (SQLite allows 32,766 parameters from 3.32 on)
    MAX_ROWS = 500

    def __init__(self, insert: Any, dialect: Any, keys: list[str], fixed: Mapping[str, Any]):
        if not dialect.positional:
            raise ValueError(f"{dialect.name}: a positional paramstyle is expected")
        self.insert, self.dialect, self.keys = insert, dialect, keys
        self._sql: dict[int, str] = {}
        sql, names = self._compile(1)
        self._sql[1] = sql
        names = [name.rpartition("_")[0] for name in names]  # the columns, in the statement's order
        processors = [_DELIVERIES.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
        self.template = [None if name not in fixed else fixed[name] if process is None else process(fixed[name])
                         for name, process in zip(names, processors)]
        self.varying = [(index, name, process) for index, (name, process) in enumerate(zip(names, processors))
                        if name not in fixed]

    def _compile(self, count: int) -> tuple[str, list[str]]:
        statement = _inbox_insert(self.insert(_DELIVERIES).values(
            [{key: bindparam(f"{key}_{n}") for key in self.keys} for n in range(count)]))
        compiled = statement.compile(dialect=self.dialect)
        return compiled.string, list(compiled.positiontup or ())

    def sql(self, count: int) -> str:
        sql = self._sql.get(count)
        if sql is None:
            sql = self._sql[count] = self._compile(count)[0]
        return sql

    def row(self, values: Mapping[str, Any]) -> list[Any]:
        out = self.template.copy()
        converted: dict[int, Any] = {}
        for index, name, process in self.varying:
            value = values[name]
            if process is not None:
                done = converted.get(id(value), converted)
                if done is converted:
                    done = converted[id(value)] = process(value)
                value = done
            out[index] = value
        return out


class Inbox:
    """Inserts deliveries, ``ON CONFLICT DO NOTHING`` on (integration, key),
    each only if its integration's row is still the one it was checked
    against (the raw row :class:`Endpoints` read): the transaction reads the
    integration first, and a delivery whose integration changed is not
    inserted (:data:`STALE`).

    On SQLite, commits are grouped: every commit waits for the disk (``fsync``)
    and SQLite writes one transaction at a time, so one commit per request
    would cap intake at one delivery per fsync. Instead, the request thread
    that takes the commit lock commits, in one transaction, every delivery
    queued while the previous commit was on disk (their integration read once
    for them all); the others wait for it. No
    delivery is acknowledged before the commit that holds it returns, so
    durability is unchanged. That transaction runs on a raw connection of the
    engine, under the engine's in-process write lock
    (:func:`~jalon.core.db.sqlite_write_lock`) like any other write.
    PostgreSQL groups commits itself: one transaction per delivery there.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self.grouped = engine.dialect.name == "sqlite"
        self.statement = _inbox_insert(self.insert(_DELIVERIES))
        self.current_sql = _BY_ID.compile(dialect=engine.dialect).string
        self.positional = engine.dialect.positional
        # the deliveries waiting for the next commit, and whether one is under way
        self._queue: list[_Pending] = []
        self._committing = False
        self._turn = threading.Lock()
        if self.grouped:
            self._raw = _RawInsert(self.insert, engine.dialect, list(DELIVERY_KEYS), NEW_DELIVERY)
            self._write_lock = sqlite_write_lock(engine)
            self._writer: Any = None  # the pool's proxy of the raw connection, held while it works

    def _current(self, execute: Callable[[str, Any], Any], integration_id: int) -> tuple[Any, ...] | None:
        """The integration's row as the transaction sees it (``execute`` runs
        raw SQL and returns the cursor)."""
        row = execute(self.current_sql, (integration_id,) if self.positional else {"id": integration_id}).fetchone()
        return None if row is None else tuple(row)

    def store(self, values: dict[str, Any], checked: tuple[Any, ...]) -> int | None:
        """Insert and commit a new delivery (``values``: those of
        :data:`DELIVERY_KEYS` but :data:`NEW_DELIVERY`'s): its id, None for a
        duplicate, or :data:`STALE` (nothing stored) when the integration's
        row is no longer ``checked``, the row the delivery was checked against."""
        if not self.grouped:
            with self.engine.begin() as conn:
                if self._current(conn.exec_driver_sql, values["integration_id"]) != checked:
                    return STALE
                return conn.execute(self.statement, {**values, **NEW_DELIVERY}).scalar()
        item = _Pending(values, checked)
        with self._turn:
            self._queue.append(item)
            leader = not self._committing
            self._committing = True
        if not leader:
            item.wake.acquire()  # its commit is done, or its turn to commit has come
        if not item.done:
            self._lead()
        if item.error is not None:
            raise item.error
        return item.delivery_id

    def _lead(self) -> None:
        """Commit the queue (this thread holds the turn), wake the threads of
        its deliveries, and hand the turn to the first thread queued since, if
        any."""
        with self._turn:
            batch, self._queue = self._queue, []
        try:
            self._commit(batch)
        finally:
            for pending in batch:
                if not pending.done:  # the commit was interrupted: never answer as if it were stored
                    pending.error, pending.done = RuntimeError("the delivery was not stored"), True
            with self._turn:
                following = self._queue[0] if self._queue else None
                self._committing = following is not None
            for pending in batch[1:]:
                pending.wake.release()
            if following is not None:
                following.wake.release()

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            ids = self._write(batch)
        except Exception:
            if len(batch) == 1:
                batch[0].error, batch[0].done = sys.exc_info()[1], True
                return
            for item in batch:  # one bad row must not fail its neighbours: each on its own
                self._commit([item])
            return
        for item, delivery_id in zip(batch, ids):
            item.delivery_id, item.done = delivery_id, True

    def _write(self, batch: list[_Pending]) -> list[int | None]:
        """One transaction: BEGIN IMMEDIATE, the integrations of the batch,
        one insert of the deliveries checked against them as they stand,
        COMMIT (fsync). Few statements, whatever the batch: between two, the
        thread must take the interpreter's lock again, from request threads
        that all want it."""
        if self._writer is None:
            self._writer = self.engine.raw_connection()
        connection = self._writer.dbapi_connection
        if not self._write_lock.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked (another transaction of this process holds it)")
        try:
            cursor = connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    ids = self._insert(cursor, batch)
                    cursor.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.rollback()
                    raise
            finally:
                cursor.close()
        except sqlite3.DatabaseError as error:
            if not isinstance(error, sqlite3.IntegrityError):  # the connection may be broken: a fresh one next time
                self._writer.invalidate()
                self._writer = None
            raise
        finally:
            self._write_lock.release()
        return ids

    def _insert(self, cursor: Any, batch: list[_Pending]) -> list[int | None]:
        """Inside the transaction: each delivery's id, None for a duplicate,
        :data:`STALE` for one checked against an integration that changed."""
        ids: list[int | None] = [None] * len(batch)
        current: dict[int, tuple[Any, ...] | None] = {}
        fresh: list[int] = []
        for index, item in enumerate(batch):
            integration_id = item.values["integration_id"]
            if integration_id not in current:
                current[integration_id] = self._current(cursor.execute, integration_id)
            if current[integration_id] == item.checked:
                fresh.append(index)
            else:
                ids[index] = STALE
        for start in range(0, len(fresh), self._raw.MAX_ROWS):
            chunk = [batch[index] for index in fresh[start:start + self._raw.MAX_ROWS]]
            params: list[Any] = []
            for item in chunk:
                params += self._raw.row(item.values)
            new = {(integration_id, key): delivery_id
                   for delivery_id, integration_id, key in cursor.execute(self._raw.sql(len(chunk)), params)}
            for index, item in zip(fresh[start:], chunk):
                # a key left out is known: a duplicate (the second copy of a key within
                # the chunk too, the first one took the id)
                ids[index] = new.pop((item.values["integration_id"], item.values["idempotency_key"]), None)
        return ids

    def dispose(self) -> None:
        if self.grouped and self._writer is not None:
            self._writer.close()
            self._writer = None


# ------------------------------------------------------------------ the endpoint


class Intake:
    """The webhook endpoint, as a WSGI middleware in front of the Flask app:
    ``POST /hooks/<source>/<key>`` is answered here, anything else goes on
    to ``app``."""

    def __init__(self, flask_app: Flask, app: Callable[..., Any]):
        self.flask_app = flask_app
        self.app = app
        self.runtime: Runtime = flask_app.extensions["jalon"]
        self.sources = frozenset(sources(self.runtime.pm))
        self.inbox = Inbox(self.runtime.engine)
        self.endpoints = Endpoints(self.runtime.engine, self.runtime.settings)
        # webhook requests being answered right now, and started so far: the in-process
        # worker gives way while there are (see jalon.connector.jobs.runners.Door)
        self.inflight = 0
        self.started = 0
        self._inflight_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(PREFIX) and environ.get("REQUEST_METHOD") == "POST":
            source, slash, key = path[len(PREFIX):].partition("/")
            if slash and source and key and "/" not in key:
                if not path.isascii():  # PATH_INFO carries UTF-8 bytes as latin-1, as WSGI says
                    source, key = (part.encode("latin-1").decode("utf-8", "replace") for part in (source, key))
                with self._inflight_lock:
                    self.inflight += 1
                    self.started += 1
                try:
                    return self.answer(environ, start_response, source, key)
                finally:
                    with self._inflight_lock:
                        self.inflight -= 1
        return self.app(environ, start_response)

    def answer(self, environ: dict[str, Any], start_response: Callable[..., Any], source: str,
               key: str) -> Iterable[bytes]:
        try:
            status, body = self.receive(environ, source, key)
        except Exception as error:  # noqa: BLE001 - a refusal, or a failure: the app's error handler answers
            with self.flask_app.request_context(environ):
                response = handle_error(error)
            return response(environ, start_response)
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def receive(self, environ: dict[str, Any], source: str, key: str) -> tuple[str, bytes]:
        """Steps 1 to 4 of the module's docstring; (status line, JSON body),
        or a :class:`Problem` raised."""
        runtime = self.runtime
        body = read_body(environ, runtime.settings.max_body_bytes)
        if source not in self.sources:
            raise _not_found()
        now = utcnow()
        headers = request_headers(environ)
        # the integration as this process knows it; a refusal is only given on a fresh
        # read, and the storing transaction confirms an acceptance (see Endpoints)
        endpoint, fresh = self.endpoints.known(key), False
        for _ in range(_CHECKS):
            if endpoint is None:
                endpoint, fresh = self.endpoints.lookup(key), True  # no lock is held while the plugin verifies
            checked = self._check(endpoint, source, key, headers, body, now, fresh)
            if isinstance(checked, Problem):
                if fresh:
                    raise checked
                endpoint = None
                continue
            assert endpoint is not None
            values = {
                "integration_id": endpoint.id,
                "source": source,
                "idempotency_key": idempotency_key(runtime, source, checked, headers, body),
                "received_at": now,
                "headers": stored_headers(headers, checked.secrets),
                "body": body,
                "body_sha256": hashlib.sha256(body).hexdigest(),
                "next_attempt_at": now,
            }
            # the 2xx below is sent only once the row is committed (durable)
            delivery_id = self.inbox.store(values, endpoint.row)
            if delivery_id != STALE:
                break
            endpoint = None  # changed since it was read: read it again, check again
        else:
            raise Problem(503, "integration_changing", "the integration kept changing while the delivery was "
                          "stored; send it again", headers={"Retry-After": "1"})

        if delivery_id is None:
            return _DUPLICATE, _DUPLICATE_BODY
        runtime.intake_accepted += 1
        wake = runtime.wake_worker
        if not wake.is_set():
            wake.set()
        return _ACCEPTED, b'{"status": "accepted", "delivery": %d}' % delivery_id

    def _check(self, endpoint: _Endpoint | None, source: str, key: str, headers: dict[str, str], body: bytes,
               now: datetime, fresh: bool) -> IntegrationView | Problem:
        """Steps 2 and 3 against ``endpoint``: the plugin's view of the
        integration, or the refusal (404, 401)."""
        if endpoint is None or not endpoint.enabled or endpoint.source != source:
            return _not_found()
        view = self.endpoints.view(endpoint, now)
        try:
            authentic = self.runtime.pm.hook.jalon_source_verify(
                source=source, integration=view, headers=headers, body=body, now=now
            )
        except Exception as error:  # a plugin choking on garbage is a refusal, not a 500
            if fresh:
                log.warning("verification raised %s for %s/%s: refused", type(error).__name__, source, key)
            authentic = False
        if authentic is not True:
            return Problem(401, "signature_invalid", "the delivery could not be authenticated")
        return view

    def dispose(self) -> None:
        self.endpoints.dispose()
        self.inbox.dispose()


@bp.post("/hooks/<source>/<key>")
def receive(source: str, key: str):  # type: ignore[no-untyped-def]
    """The route as Flask knows it (``url_for``, the URL map); requests are
    answered by :class:`Intake` in front of the app, and the same way here."""
    intake: Intake = current_app.extensions["jalon.intake"]
    status, body = intake.receive(request.environ, source, key)
    return current_app.response_class(body, status=int(status.split()[0]), mimetype="application/json")


def register_intake(app: Flask) -> None:
    intake = Intake(app, app.wsgi_app)
    app.extensions["jalon.intake"] = intake
    app.register_blueprint(bp)
    app.wsgi_app = intake  # type: ignore[method-assign]
