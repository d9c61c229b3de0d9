"""Engines, sessions and the unit of work.

SQLite is the embedded default (WAL, foreign keys, a busy timeout, and every
transaction opened with ``BEGIN IMMEDIATE`` so that two processes never deadlock
on a lock upgrade). PostgreSQL is the production engine through the same URL
setting. Models never commit: :func:`unit_of_work` does.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///jalon.db"
BUSY_TIMEOUT_SECONDS = 30

# the execution option of a transaction that only reads (see read_only_session)
READ_ONLY = "jalon_read_only"

# engine -> the lock its SQLite write transactions hold within this process
_write_locks: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("JALON_DATABASE_URL") or DEFAULT_URL


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed transaction survives a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    # One writer at a time is SQLite's rule. Inside one process, threads queue on
    # a lock of ours and are woken the moment the writer commits, instead of
    # polling through SQLite's busy handler, whose sleeps grow to 100 ms and
    # made webhook acknowledgements wait up to a second under load. Between
    # processes, the busy timeout still applies.
    lock = _write_locks[engine] = threading.Lock()
    holders: set[int] = set()
    dialect = engine.dialect
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def release(dbapi_conn) -> None:  # type: ignore[no-untyped-def]
        key = id(getattr(dbapi_conn, "dbapi_connection", dbapi_conn))  # the raw connection behind a pool proxy
        if key in holders:
            holders.discard(key)
            lock.release()

    def commit(dbapi_conn) -> None:  # type: ignore[no-untyped-def]
        try:
            do_commit(dbapi_conn)
        finally:
            release(dbapi_conn)

    def rollback(dbapi_conn) -> None:  # type: ignore[no-untyped-def]
        try:
            do_rollback(dbapi_conn)
        finally:
            release(dbapi_conn)

    dialect.do_commit = commit  # type: ignore[method-assign]
    dialect.do_rollback = rollback  # type: ignore[method-assign]

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        if conn.get_execution_options().get(READ_ONLY):
            # reads only: a deferred transaction, a snapshot of its own (WAL), no writer's lock
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_conn = conn.connection.dbapi_connection
        if not lock.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked (another transaction of this process holds it)")
        holders.add(id(getattr(dbapi_conn, "dbapi_connection", dbapi_conn)))
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(dbapi_conn)
            raise

    @event.listens_for(engine, "close")
    def _on_close(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        release(dbapi_conn)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(dbapi_conn, _record, _exception):  # type: ignore[no-untyped-def]
        release(dbapi_conn)


def sqlite_write_lock(engine: Engine) -> threading.Lock:
    """The in-process lock of ``engine``'s SQLite write transactions. Code that
    writes through a raw DBAPI connection of the engine (intake's group commit)
    holds it from its ``BEGIN IMMEDIATE`` to its ``COMMIT`` or ``ROLLBACK``,
    as every transaction begun through the engine does."""
    return _write_locks[engine]


def create_private_file(path: Path) -> None:
    """Create the SQLite file, if it does not exist yet, readable and writable
    by its owner only (0600), before SQLite opens it: it holds clients,
    invoices and the sealed secrets. SQLite gives the ``-wal`` and ``-shm``
    files it creates next to it the same permissions. A file that exists
    keeps its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def make_engine(url: str | None = None, **kwargs) -> Engine:  # type: ignore[no-untyped-def]
    url = database_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            create_private_file(Path(path))
        engine = create_engine(url, **kwargs)
        _sqlite_setup(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    if url.startswith("postgresql"):
        # a commit returns once its WAL record is flushed to disk, whatever the
        # server's or database's default says: an acknowledged webhook is durable
        connect_args = dict(kwargs.pop("connect_args", {}))
        given = connect_args.get("options") or make_url(url).query.get("options") or ""
        connect_args["options"] = f"{given} -c synchronous_commit=on".strip()
        kwargs["connect_args"] = connect_args
    return create_engine(url, **kwargs)


def rewrite_sqlite_file(engine: Engine) -> bool:
    """SQLite: rewrite the database file (``VACUUM``) and empty its
    write-ahead log, so that values overwritten (a secret in clear before it
    was sealed, one sealed with a key since dropped) no longer linger in free
    pages or old log frames. False, and nothing done, on another engine
    (PostgreSQL keeps old row versions until its own VACUUM)."""
    if engine.dialect.name != "sqlite":
        return False
    connection = engine.raw_connection()  # outside any transaction: VACUUM refuses one
    try:
        cursor = connection.cursor()
        cursor.execute("VACUUM")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        connection.close()
    return True


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def read_only_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose one transaction only reads. On SQLite it begins
    DEFERRED and without the writer's lock, so it neither waits for nor holds
    up a write: worth it for a long read next to a busy writer. Keep it to
    reads: nothing refuses a write here, and on SQLite one would go without
    the in-process writer's lock (and roll back at the end anyway)."""
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        try:
            yield session
        finally:
            session.rollback()


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block ends, roll back when it raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgresql(session_or_engine) -> bool:  # type: ignore[no-untyped-def]
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_ignoring_conflicts(dialect_name: str, table: Any, *,
                              index_elements: Sequence[Any] | None = None) -> Any:
    """``INSERT INTO table ... ON CONFLICT DO NOTHING`` in the dialect named
    (``"postgresql"`` or ``"sqlite"``, what ``engine.dialect.name`` says): a
    row whose key (``index_elements``, or any unique constraint when None) is
    already stored is left out, on both engines the same way. ``table`` is a
    Table or a mapped class; the caller adds ``.values(...)``, ``.returning(...)``.
    """
    try:
        insert = _INSERTS[dialect_name]
    except KeyError:
        raise ValueError(f"no INSERT ... ON CONFLICT for the dialect {dialect_name!r}") from None
    return insert(table).on_conflict_do_nothing(index_elements=index_elements)
