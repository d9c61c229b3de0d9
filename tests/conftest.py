"""Test databases: every test that asks for ``db_url`` runs on SQLite, and again
on PostgreSQL when ``JALON_TEST_POSTGRES_URL`` is set (``.ci/run`` sets it).

The schema is migrated once per engine and session (a migrated SQLite template
file is copied for each test; PostgreSQL gets a database of its own for the
run, truncated between tests), so Alembic is exercised without paying for it in
every test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, text

from jalon.core import secrets
from jalon.core.db import make_engine, make_sessionmaker
from jalon.core.migrate import upgrade
from jalon.core.models import Base

POSTGRES_ENV = "JALON_TEST_POSTGRES_URL"
# the key the tests' secrets are sealed with (JALON_SECRET_KEYS), one per run
TEST_SECRET_KEY = secrets.generate_key()


def pytest_report_header(config) -> str:  # type: ignore[no-untyped-def]
    url = os.environ.get(POSTGRES_ENV)
    return f"jalon: SQLite always; PostgreSQL {'at ' + make_url(url).render_as_string() if url else 'skipped (' + POSTGRES_ENV + ' not set)'}"


@pytest.fixture(scope="session", autouse=True)
def secret_keys() -> Iterator[str]:
    """Secrets sealed with a key of the run's own: in this process (the core's
    keys) and in every process it starts (the environment)."""
    saved = os.environ.get(secrets.KEYS_SETTING)
    os.environ[secrets.KEYS_SETTING] = TEST_SECRET_KEY
    secrets.configure_keys([TEST_SECRET_KEY])
    try:
        yield TEST_SECRET_KEY
    finally:
        if saved is None:
            os.environ.pop(secrets.KEYS_SETTING, None)
        else:
            os.environ[secrets.KEYS_SETTING] = saved
        secrets.forget_keys()


@pytest.fixture(autouse=True)
def fresh_rate_budgets() -> Iterator[None]:
    """The process's request budgets (per token) start empty in each test: one test's
    calls never make another wait."""
    from jalon.connector.net.http import RATE_BUDGETS

    RATE_BUDGETS.clear()
    yield
    RATE_BUDGETS.clear()


@pytest.fixture(autouse=True)
def run_secret_keys(secret_keys: str) -> Iterator[None]:
    """Each test ends with the run's key back, whatever keys it used."""
    yield
    os.environ[secrets.KEYS_SETTING] = secret_keys
    secrets.configure_keys([secret_keys])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return str(path)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests skipped")
    name = f"jalon_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """The URL of a freshly migrated, empty database."""
    if request.param == "sqlite":
        path = tmp_path / "jalon.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    request.node.add_marker(pytest.mark.postgres)
    url = request.getfixturevalue("postgres_database")
    _truncate_postgres(url)
    return url


@pytest.fixture
def engine(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def Session(engine):  # type: ignore[no-untyped-def]  # noqa: N802 (a factory, named as SQLAlchemy does)
    return make_sessionmaker(engine)
