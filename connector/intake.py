"""Webhook intake: ``POST /hooks/<source>/<integration-key>``.

Acknowledge first, work later. The order of work is fixed, each step cheaper
than the next and each one refusing before anything is stored:

1. the body is read up to ``settings.max_body_bytes`` (413 beyond it, whatever
   Content-Length claims);
2. the source plugin and the integration must exist, be enabled and agree
   (404 otherwise, the same answer for every case: nothing leaks);
3. the source plugin verifies authenticity on the RAW bytes (401, stored nowhere);
4. the delivery is inserted in the inbox under its idempotency key and
   committed, then answered 202 (or 200 ``duplicate`` when the key is known).

No PM-tool REST call and no billing work happens here: the worker does both.
The handler is benchmarked, so it stays lean: one short transaction, Core
statements, no logging of bodies or secrets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, current_app, request
from sqlalchemy import Engine, bindparam, create_engine, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from werkzeug.exceptions import RequestEntityTooLarge

from jalon.core.models import Delivery, Integration
from jalon.core.types import utcnow

from .api.problems import Problem
from .plugin_types import IntegrationView
from .plugins import sources
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger("jalon.connector.intake")

bp = Blueprint("hooks", __name__)

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

# built once: the request only binds values (the statement's compiled form is cached)
_BY_KEY = select(*_INTEGRATION_COLUMNS).where(_INTEGRATIONS.c.key == bindparam("key"))


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
    """The read-only view a plugin gets of an integration (a row or an ORM object)."""
    return IntegrationView(
        key=integration.key,
        source=integration.source,
        name=integration.name,
        base_url=integration.base_url,
        settings=dict(integration.settings or {}),
        secrets=accepted_secrets(integration, settings, now),
        credentials=dict(integration.credentials or {}),
    )


def stored_headers(headers: Mapping[str, str], secrets: tuple[str, ...]) -> dict[str, str]:
    """The headers kept with a delivery: lower-cased, without credentials and
    without any header whose value carries a secret (GitLab-style token headers)."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in DROPPED_HEADERS:
            continue
        if any(secret and secret in value for secret in secrets):
            continue
        kept[lower] = value
    return kept


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


def _json(status: int, payload: dict[str, Any]):  # type: ignore[no-untyped-def]
    return current_app.response_class(json.dumps(payload), status=status, mimetype="application/json")


def _not_found() -> Problem:
    return Problem(404, "integration_not_found", "no such webhook endpoint")


def _read_body(limit: int) -> bytes:
    declared = request.content_length
    if declared is not None and declared > limit:
        raise Problem(413, "payload_too_large", f"the body exceeds {limit} bytes")
    # Content-Length may be absent (chunked) or lie: read at most one byte more than allowed
    # the app-wide limit is for admin payloads, not this one; one byte more than allowed tells
    # "too long" apart from "exactly the limit" on a stream that stops quietly at its maximum
    request.max_content_length = limit + 1
    try:
        body = request.stream.read(limit + 1)
    except RequestEntityTooLarge:  # a chunked body that ran past the limit
        body = None
    if body is None or len(body) > limit:
        raise Problem(413, "payload_too_large", f"the body exceeds {limit} bytes")
    return body


@bp.post("/hooks/<source>/<key>")
def receive(source: str, key: str):  # type: ignore[no-untyped-def]
    runtime: Runtime = current_app.extensions["jalon"]
    settings = runtime.settings
    body = _read_body(settings.max_body_bytes)

    if source not in current_app.extensions["jalon.sources"]:
        raise _not_found()
    now = utcnow()
    headers = {name.lower(): value for name, value in request.headers.items()}

    inbox: Inbox = current_app.extensions["jalon.inbox"]
    with inbox.read_engine.connect() as conn:
        row = conn.execute(_BY_KEY, {"key": key}).first()
        conn.rollback()  # no lock is held while the plugin verifies
    if row is None or not row.enabled or row.source != source:
        raise _not_found()
    view = integration_view(row, settings, now)
    try:
        authentic = runtime.pm.hook.jalon_source_verify(
            source=source, integration=view, headers=headers, body=body, now=now
        )
    except Exception as error:  # a plugin choking on garbage is a refusal, not a 500
        log.warning("verification raised %s for %s/%s: refused", type(error).__name__, source, key)
        authentic = False
    if authentic is not True:
        raise Problem(401, "signature_invalid", "the delivery could not be authenticated")

    values = {
        "integration_id": row.id,
        "source": source,
        "idempotency_key": idempotency_key(runtime, source, view, headers, body),
        "received_at": now,
        "headers": stored_headers(headers, view.secrets),
        "body": body,
        "body_sha256": hashlib.sha256(body).hexdigest(),
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "outcomes": [],
    }
    # the 2xx below is sent only once the row is committed (durable)
    delivery_id = inbox.store(values)

    if delivery_id is None:
        return _json(200, {"status": "duplicate"})
    runtime.intake_accepted += 1
    runtime.wake_worker.set()
    return _json(202, {"status": "accepted", "delivery": delivery_id})


def _read_only(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.execute("PRAGMA query_only = ON")
    cursor.close()


class _Pending:
    __slots__ = ("values", "done", "delivery_id", "error")

    def __init__(self, values: dict[str, Any]):
        self.values = values
        self.done = False
        self.delivery_id: int | None = None
        self.error: BaseException | None = None


class Inbox:
    """Inserts deliveries, ``ON CONFLICT DO NOTHING`` on (integration, key).

    On SQLite, commits are grouped: every commit waits for the disk (``fsync``)
    and SQLite writes one transaction at a time, so one commit per request
    would cap intake at one delivery per fsync. Instead, the request thread
    that takes the commit lock commits, in one transaction, every delivery
    queued while the previous commit was on disk; the others wait for it. No
    delivery is acknowledged before the commit that holds it returns, so
    durability is unchanged. PostgreSQL groups commits itself: one
    transaction per delivery there.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self.insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self.grouped = engine.dialect.name == "sqlite"
        self.statement = (self.insert(_DELIVERIES)
                          .on_conflict_do_nothing(index_elements=["integration_id", "idempotency_key"])
                          .returning(_DELIVERIES.c.id))
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self.read_engine = engine
        if self.grouped:
            # reads outside any write transaction: our engine opens every transaction with
            # BEGIN IMMEDIATE, which would queue each lookup behind the commit on disk
            self.read_engine = create_engine(engine.url)
            event.listen(self.read_engine, "connect", _read_only)


    def store(self, values: dict[str, Any]) -> int | None:
        """Insert and commit; the new delivery's id, or None for a duplicate."""
        if not self.grouped:
            with self.engine.begin() as conn:
                return conn.execute(self.statement, values).scalar()
        item = _Pending(values)
        with self._queue_lock:
            self._queue.append(item)
        with self._commit_lock:
            if not item.done:  # not committed by the previous holder of the lock: commit the queue
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if item.error is not None:
            raise item.error
        if not item.done:  # its batch was interrupted: never answer as if it were stored
            raise RuntimeError("the delivery was not stored")
        return item.delivery_id

    def _commit(self, batch: list[_Pending]) -> None:
        try:
            with self.engine.begin() as conn:
                ids = [conn.execute(self.statement, item.values).scalar() for item in batch]
        except Exception:
            if len(batch) == 1:
                batch[0].error, batch[0].done = sys.exc_info()[1], True
                return
            for item in batch:  # one bad row must not fail its neighbours: each on its own
                self._commit([item])
            return
        for item, delivery_id in zip(batch, ids):
            item.delivery_id, item.done = delivery_id, True


def register_intake(app: Flask) -> None:
    runtime: Runtime = app.extensions["jalon"]
    app.extensions["jalon.sources"] = frozenset(sources(runtime.pm))
    app.extensions["jalon.inbox"] = Inbox(runtime.engine)
    app.register_blueprint(bp)
