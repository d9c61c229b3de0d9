"""The 2xx is sent only once the delivery is durably committed.

SQLite: WAL with ``synchronous=FULL`` (every commit is fsynced, see
``jalon.core.db``). PostgreSQL: ``synchronous_commit=on``, set on every
connection by the engine, whatever the server's or database's default.
"""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import create_engine, make_url, select, text

from jalon.core.db import make_engine
from jalon.core.models import Delivery
from tests.reliability import fakesource


def test_the_engine_asks_for_durable_commits(db_url):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            else:
                assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
    finally:
        engine.dispose()


def test_synchronous_commit_stays_on_even_when_the_database_default_is_off(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL setting")
    name = make_url(db_url).database
    admin = make_engine(db_url, isolation_level="AUTOCOMMIT")
    engine = make_engine(db_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
        plain = create_engine(db_url)  # without jalon's connection options
        try:
            with plain.connect() as conn:
                assert conn.execute(text("SHOW synchronous_commit")).scalar() == "off"
        finally:
            plain.dispose()
        with engine.connect() as conn:
            assert conn.execute(text("SHOW synchronous_commit")).scalar() == "on"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" RESET synchronous_commit'))
        engine.dispose()
        admin.dispose()


def test_each_acknowledged_delivery_is_already_visible_to_another_connection(relay, engine):
    server = relay(milestones=1)
    with requests.Session() as session:
        for i in range(30):
            key, body = f"dur-{i}", fakesource.time_body(f"WL-dur-{i}", 60)
            response = session.post(server.hook_url, data=body, timeout=10,
                                    headers=fakesource.headers_for(fakesource.SECRET, key, body))
            assert response.status_code == 202
            # a connection of our own, opened after the answer: the row is there
            with engine.connect() as conn:
                found = conn.execute(
                    select(Delivery.id).where(Delivery.idempotency_key == key)
                ).scalar_one_or_none()
            assert found == response.json()["delivery"]
