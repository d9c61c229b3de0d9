"""The inbox: where intake stores a delivery before it answers 2xx.

One small interface, :class:`Inbox`: ``store(values, checked)`` inserts and
commits a new delivery under its idempotency key, and answers

* its id (a new delivery: 202),
* ``None`` (the key is already stored for the integration: 200 duplicate),
* :data:`STALE` (nothing stored): the integration's row is no longer
  ``checked``, the row the delivery was found and verified against. Intake
  then reads the integration again and checks the delivery again.

The transaction that stores a delivery reads the integration's row first, so
a change (a new secret, a disabled integration) counts from the next delivery
on, in any process, even for a delivery verified just before the change.

Two implementations, one chosen per engine by :func:`open_inbox`:

* :class:`TransactionInbox`: one transaction per delivery. The reference:
  read it to know what storing a delivery means. PostgreSQL's path
  (PostgreSQL groups the commits of concurrent transactions itself).
* :class:`GroupCommitInbox`: SQLite's. The same answers, but the deliveries
  of concurrent requests are committed together, in one transaction: SQLite
  writes one transaction at a time and each commit waits for the disk, so
  one commit per delivery would cap intake at one delivery per ``fsync``.

Both store the same rows and give the same answers; the tests of
``tests/relay/test_inbox.py`` run on both.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, Protocol

from sqlalchemy import Engine, bindparam, select

from jalon.core.db import BUSY_TIMEOUT_SECONDS, insert_ignoring_conflicts, sqlite_write_lock
from jalon.core.models import Delivery, Integration

_DELIVERIES = Delivery.__table__
_INTEGRATIONS = Integration.__table__

# The integration's row a delivery is checked against, as the DBAPI returns it (no
# type processing): intake reads it by key, the storing transaction by id, and the
# two compare equal only if both select these columns, in this order.
INTEGRATION_COLUMNS: Final = (
    _INTEGRATIONS.c.id, _INTEGRATIONS.c.key, _INTEGRATIONS.c.source, _INTEGRATIONS.c.name,
    _INTEGRATIONS.c.base_url, _INTEGRATIONS.c.settings, _INTEGRATIONS.c.secret,
    _INTEGRATIONS.c.previous_secret, _INTEGRATIONS.c.secret_rotated_at, _INTEGRATIONS.c.credentials,
    _INTEGRATIONS.c.enabled,
)
_BY_ID = select(*INTEGRATION_COLUMNS).where(_INTEGRATIONS.c.id == bindparam("id"))

# the values intake gives for a delivery, and those every new delivery starts with
DELIVERY_KEYS: Final = ("integration_id", "source", "idempotency_key", "received_at", "headers", "body",
                        "body_sha256", "status", "attempts", "next_attempt_at", "outcomes")
NEW_DELIVERY: Mapping[str, Any] = MappingProxyType({"status": "pending", "attempts": 0, "outcomes": []})

# store's answer for a delivery checked against an integration that has changed since
STALE: Final = -1


class Inbox(Protocol):
    """Where a delivery is stored, durably, before it is acknowledged."""

    def store(self, values: dict[str, Any], checked: tuple[Any, ...]) -> int | None:
        """Insert and commit a new delivery (``values``: those of
        :data:`DELIVERY_KEYS` but :data:`NEW_DELIVERY`'s): its id, None for a
        duplicate, or :data:`STALE` (nothing stored) when the integration's
        row is no longer ``checked``. Returns only once the commit has."""
        ...

    def dispose(self) -> None:
        """Release the connections the inbox holds."""
        ...


def open_inbox(engine: Engine) -> Inbox:
    """The inbox for ``engine``'s database: the group commit on SQLite, one
    transaction per delivery elsewhere."""
    if engine.dialect.name == "sqlite":
        return GroupCommitInbox(engine)
    return TransactionInbox(engine)


def _inbox_insert(dialect_name: str) -> Any:
    """The inbox's ``INSERT``: a key already stored for the integration is
    left out, and each row inserted is returned as (id, integration, key).
    The caller adds the values."""
    return (insert_ignoring_conflicts(dialect_name, _DELIVERIES, index_elements=["integration_id", "idempotency_key"])
            .returning(_DELIVERIES.c.id, _DELIVERIES.c.integration_id, _DELIVERIES.c.idempotency_key))


class _CurrentRow:
    """The integration's raw row as a transaction sees it (one prepared query)."""

    def __init__(self, engine: Engine):
        self.sql = _BY_ID.compile(dialect=engine.dialect).string
        self.positional = engine.dialect.positional

    def __call__(self, execute: Callable[[str, Any], Any], integration_id: int) -> tuple[Any, ...] | None:
        """``execute`` runs raw SQL (no type processing) and returns the cursor."""
        row = execute(self.sql, (integration_id,) if self.positional else {"id": integration_id}).fetchone()
        return None if row is None else tuple(row)


# ------------------------------------------------------------------ the reference


class TransactionInbox:
    """One transaction per delivery: read the integration's row, compare it
    with the one the delivery was checked against, insert ``ON CONFLICT DO
    NOTHING`` on (integration, key), commit."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.current = _CurrentRow(engine)
        self.insert = _inbox_insert(engine.dialect.name)

    def store(self, values: dict[str, Any], checked: tuple[Any, ...]) -> int | None:
        with self.engine.begin() as conn:
            if self.current(conn.exec_driver_sql, values["integration_id"]) != checked:
                return STALE
            return conn.execute(self.insert, {**values, **NEW_DELIVERY}).scalar()

    def dispose(self) -> None:
        pass  # it holds no connection between deliveries


# ------------------------------------------------------------------ SQLite's group commit


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


class _RawInsert:
    """The inbox's Core ``INSERT`` of ``count`` rows at once (``sql(count)``,
    compiled once per count for the engine's dialect), run on a raw DBAPI
    cursor, its values converted by the columns' own bind processors: what
    SQLAlchemy would send, without its per-statement machinery (which costs
    more than the insert on this path). It returns (id, integration, key) of
    each row inserted; a row whose key is known is left out (``ON CONFLICT DO
    NOTHING``). The values of ``fixed`` are converted once, here, and so are
    the constant defaults of the columns given no value; a value given for
    two columns (the time received, which is also the first attempt's) once
    per row."""

    # rows per statement at most (SQLite allows 32,766 parameters from 3.32 on)
    MAX_ROWS = 500

    def __init__(self, dialect: Any, keys: list[str], fixed: Mapping[str, Any]):
        if not dialect.positional:
            raise ValueError(f"{dialect.name}: a positional paramstyle is expected")
        self.dialect, self.keys = dialect, keys
        self._sql: dict[int, str] = {}
        sql, names = self._compile(1)
        self._sql[1] = sql
        # the columns, in the statement's order: ours (bound as "<key>_0" in the first row), and
        # those SQLAlchemy adds for a column's default (bound under the column's own name)
        ours = {f"{key}_0": key for key in keys}
        names = [ours.get(name, name) for name in names]
        fixed = {**fixed, **{name: _scalar_default(name) for name in names if name not in keys}}
        processors = [_DELIVERIES.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
        self.template = [None if name not in fixed else fixed[name] if process is None else process(fixed[name])
                         for name, process in zip(names, processors)]
        self.varying = [(index, name, process) for index, (name, process) in enumerate(zip(names, processors))
                        if name not in fixed]

    def _compile(self, count: int) -> tuple[str, list[str]]:
        statement = _inbox_insert(self.dialect.name).values(
            [{key: bindparam(f"{key}_{n}") for key in self.keys} for n in range(count)])
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


def _scalar_default(name: str) -> Any:
    """The value SQLAlchemy would insert for a column the inbox gives no value
    for: its default, which must be a constant here (the raw insert runs no
    default of SQLAlchemy's)."""
    default = _DELIVERIES.c[name].default
    if default is None or not default.is_scalar:
        raise ValueError(f"deliveries.{name}: the inbox's raw insert needs a value or a constant default")
    return default.arg


class GroupCommitInbox:
    """SQLite's inbox: :class:`TransactionInbox`'s answers, the deliveries of
    concurrent requests committed together.

    Every commit waits for the disk (``fsync``) and SQLite writes one
    transaction at a time. So the request thread that finds no commit under
    way commits, in one transaction, every delivery queued while the previous
    commit was on disk (their integration read once for them all); the
    others wait for it. No delivery is acknowledged before the commit that
    holds it returns, so durability is unchanged. That transaction runs on a
    raw connection of the engine, under the engine's in-process write lock
    (:func:`~jalon.core.db.sqlite_write_lock`) like any other write, with few
    statements whatever the batch (between two, the committing thread must
    take the interpreter's lock back from request threads that all want it).
    """

    def __init__(self, engine: Engine):
        if engine.dialect.name != "sqlite":
            raise ValueError(f"the group commit is SQLite's; {engine.dialect.name}: use TransactionInbox")
        self.engine = engine
        self.current = _CurrentRow(engine)
        self._raw = _RawInsert(engine.dialect, list(DELIVERY_KEYS), NEW_DELIVERY)
        self._write_lock = sqlite_write_lock(engine)
        self._writer: Any = None  # the pool's proxy of the raw connection, held while it works
        # the deliveries waiting for the next commit, and whether one is under way
        self._queue: list[_Pending] = []
        self._committing = False
        self._turn = threading.Lock()

    def store(self, values: dict[str, Any], checked: tuple[Any, ...]) -> int | None:
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
        COMMIT (fsync)."""
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
                current[integration_id] = self.current(cursor.execute, integration_id)
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
        if self._writer is not None:
            self._writer.close()
            self._writer = None
