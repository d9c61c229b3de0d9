"""Webhook intake: ``POST /hooks/<source>/<integration-key>``.

Acknowledge first, work later. Four steps (:meth:`Intake.receive`), each
cheaper than the next and each one refusing before anything is stored:

1. **read** the body, up to ``settings.max_body_bytes`` (413 beyond it,
   whatever Content-Length claims, and before reading when Content-Length
   says so);
2. **find** the integration: the source plugin and the integration must
   exist, be enabled and agree (404 otherwise, the same answer for every
   case: nothing leaks);
3. **verify**: the source plugin checks authenticity on the RAW bytes (401,
   stored nowhere);
4. **store** the delivery in the inbox under its idempotency key, committed,
   then answer 202 (or 200 ``duplicate`` when the key is known). The
   transaction that stores it reads the integration first: a delivery is
   stored only if the integration is still the one it was checked against in
   steps 2 and 3; otherwise they run again on the row as it now stands (503
   ``integration_changing`` when it changed at every one of 5 checks). So a
   change (a new secret, a disabled integration) counts from the next
   delivery on, in any process, even for a delivery verified just before the
   change and not yet stored.

No PM-tool REST call and no billing work happens here: the worker does both.

The path is the hot one of the service (a PM tool may send bursts of
thousands), so it is served by :class:`Intake`, a WSGI middleware in front of
Flask: the request never builds Flask's request context, routing or response
objects, and the integration the process already knows is used at once (the
storing transaction confirms it, see step 4; :class:`Endpoints`). How a
delivery is stored is the inbox's business (:mod:`jalon.connector.relay.inbox`:
one transaction per delivery, or SQLite's group commit).
Refusals and errors still go through the app's one error handler, so every
answer other than the 2xx is the same JSON problem as anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from flask import Blueprint, Flask, current_app, request
from sqlalchemy import Engine, bindparam, create_engine, event, select
from sqlalchemy.pool import NullPool
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_content_length, get_input_stream

from jalon.core.db import make_engine
from jalon.core.models import Integration, Mapping as MappingRow
from jalon.core.types import utcnow

from jalon.connector.relay.inbox import INTEGRATION_COLUMNS, STALE, open_inbox
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
_INTEGRATIONS = Integration.__table__
# built once: the request only binds values. The inbox's columns: the raw row a delivery
# was checked against (read by key) compares with the one the storing transaction reads (by id)
_BY_KEY = select(*INTEGRATION_COLUMNS).where(_INTEGRATIONS.c.key == bindparam("key"))
# how many times a delivery is checked when the integration keeps changing under it
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


def integration_view(integration: Any, settings: Settings, now: datetime, *,
                     mapped_done_statuses: Sequence[str] = ()) -> IntegrationView:
    """The read-only view a plugin gets of an integration (a row or an ORM
    object): its settings and credentials are copies behind read-only
    mappings, so that a view shared between requests cannot be changed."""
    return IntegrationView(
        mapped_done_statuses=tuple(mapped_done_statuses),
        key=integration.key,
        source=integration.source,
        name=integration.name,
        base_url=integration.base_url,
        settings=MappingProxyType(dict(integration.settings or {})),
        secrets=accepted_secrets(integration, settings, now),
        credentials=MappingProxyType(dict(integration.credentials or {})),
    )


def mapped_done_statuses(session: Any, integration_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """Per integration, the done statuses its mappings name (each once, in mapping order)."""
    found: dict[int, list[str]] = {}
    rows = session.execute(select(MappingRow.integration_id, MappingRow.done_statuses)
                           .where(MappingRow.integration_id.in_(list(integration_ids))).order_by(MappingRow.id))
    for integration_id, statuses in rows:
        known = found.setdefault(integration_id, [])
        known.extend(status for status in statuses or () if status not in known)
    return {key: tuple(value) for key, value in found.items()}


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
    hooks = runtime.pm.source(source)
    try:
        key = hooks.jalon_source_idempotency_key(source=source, integration=view, headers=headers, body=body) \
            if hooks is not None else None
    except Exception as error:  # noqa: BLE001 - e.g. a body nested too deeply for json.loads (RecursionError)
        # the delivery is authentic: stored under its digest, and the worker says why it cannot be read
        log.warning("the %s plugin could not key a delivery (%s): keyed on its digest", source,
                    type(error).__name__)
        key = None
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

    __slots__ = tuple(column.key for column in INTEGRATION_COLUMNS)

    def __init__(self, values: Iterable[Any]):
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)


class Endpoints:
    """Integrations by key, as this process last read them (``known``), and
    read afresh (``lookup``): one prepared query on a raw connection.

    A delivery is checked against the known integration, and the transaction
    that stores it confirms that the integration's row is still the same
    (:mod:`~jalon.connector.relay.inbox`); a refusal, or a row found changed there, sends the
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
                           for column in INTEGRATION_COLUMNS]
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

    def knows(self, key: str) -> bool:
        """Whether this process has read the integration (and found it)."""
        return key in self.cache

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


def _read_only(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # reads outside any write transaction: the app's engine opens every transaction with
    # BEGIN IMMEDIATE, which would queue each lookup behind the commit on disk
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


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
        self.inbox = open_inbox(self.runtime.engine)
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
        """The four steps of the module's docstring: (status line, JSON body),
        or a :class:`Problem` raised.

        Steps 2 and 3 run first on the integration as this process last read
        it; a refusal is only given on the integration as it stands (read
        again), and the inbox's transaction confirms an acceptance: when the
        integration changed since it was read, steps 2 to 4 run again."""
        body = read_body(environ, self.runtime.settings.max_body_bytes)  # 1. read (413)
        headers, now = request_headers(environ), utcnow()
        fresh = not self.endpoints.knows(key)
        for _ in range(_CHECKS):
            try:
                endpoint = self.find(source, key, fresh)  # 2. find (404)
                view = self.verify(endpoint, source, key, headers, body, now, fresh)  # 3. verify (401)
            except Problem:
                if fresh:
                    raise
            else:
                values = self.delivery(endpoint, view, source, headers, body, now)
                stored = self.inbox.store(values, endpoint.row)  # 4. store (202, 200 duplicate), once durable
                if stored != STALE:
                    return self.acknowledge(stored)
            fresh = True  # refused on the copy, or the integration changed since: read it again, check again
        raise Problem(503, "integration_changing", "the integration kept changing while the delivery was "
                      "stored; send it again", headers={"Retry-After": "1"})

    def find(self, source: str, key: str, fresh: bool) -> _Endpoint:
        """Step 2: the integration, as this process last read it, or as it
        stands now (``fresh``); 404 when it does not exist, is disabled, or
        belongs to another source (one answer for all: nothing leaks)."""
        if source not in self.sources:
            raise _not_found()
        endpoint = self.endpoints.lookup(key) if fresh else self.endpoints.known(key)
        if endpoint is None or not endpoint.enabled or endpoint.source != source:
            raise _not_found()
        return endpoint

    def verify(self, endpoint: _Endpoint, source: str, key: str, headers: dict[str, str], body: bytes,
               now: datetime, fresh: bool) -> IntegrationView:
        """Step 3: the plugin's view of the integration, once the source
        plugin found the raw delivery authentic with it; 401 otherwise."""
        hooks = self.runtime.pm.source(source)
        if hooks is None:
            raise _not_found()
        view = self.endpoints.view(endpoint, now)
        try:
            authentic = hooks.jalon_source_verify(
                source=source, integration=view, headers=headers, body=body, now=now
            )
        except Exception as error:  # a plugin choking on garbage is a refusal, not a 500
            if fresh:
                log.warning("verification raised %s for %s/%s: refused", type(error).__name__, source, key)
            authentic = False
        if authentic is not True:
            raise Problem(401, "signature_invalid", "the delivery could not be authenticated")
        return view

    def delivery(self, endpoint: _Endpoint, view: IntegrationView, source: str, headers: dict[str, str],
                 body: bytes, now: datetime) -> dict[str, Any]:
        """Step 4's values: what the inbox stores for a verified delivery."""
        return {
            "integration_id": endpoint.id,
            "source": source,
            "idempotency_key": idempotency_key(self.runtime, source, view, headers, body),
            "received_at": now,
            "headers": stored_headers(headers, view.secrets),
            "body": body,
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "next_attempt_at": now,
        }

    def acknowledge(self, delivery_id: int | None) -> tuple[str, bytes]:
        """Step 4's answer: 202 with the new delivery's id (and the worker
        woken), or 200 ``duplicate``."""
        if delivery_id is None:
            return _DUPLICATE, _DUPLICATE_BODY
        runtime = self.runtime
        runtime.intake_accepted += 1
        wake = runtime.wake_worker
        if not wake.is_set():
            wake.set()
        return _ACCEPTED, b'{"status": "accepted", "delivery": %d}' % delivery_id

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
