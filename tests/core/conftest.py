"""Fixtures of the core's tests: a seeded world, and empty databases for migrations."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, text

from jalon.core.db import make_engine, unit_of_work

from tests.conftest import POSTGRES_ENV
from tests.factories import seed


@pytest.fixture
def world(Session):  # type: ignore[no-untyped-def]  # noqa: N803
    """The sessionmaker of a database holding the factories' world."""
    with unit_of_work(Session) as session:
        seed(session)
    return Session


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The URL of an empty database that no migration has touched."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests skipped")
    request.node.add_marker(pytest.mark.postgres)
    name = f"jalon_empty_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
