"""An app on the conftest's migrated database, and tokens made with the core."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from jalon.connector.app import create_app
from jalon.core import tokens
from jalon.core.db import unit_of_work
from tests import factories

@pytest.fixture
def app(db_url):  # type: ignore[no-untyped-def]
    app = create_app(db_url, TESTING=True)
    yield app
    app.extensions["jalon"].engine.dispose()


@pytest.fixture
def uow(app):  # type: ignore[no-untyped-def]
    """A unit of work on the app's database, for arranging and checking."""
    return lambda: unit_of_work(app.extensions["jalon"].sessionmaker)


def _token(uow, name: str, scope: str) -> str:  # type: ignore[no-untyped-def]
    with uow() as session:
        _, plain = tokens.create_token(session, name=name, scope=scope, actor="test")
    return plain


@pytest.fixture
def admin_token(uow) -> str:  # type: ignore[no-untyped-def]
    return _token(uow, "ops", "admin")


@pytest.fixture
def finance_token(uow) -> str:  # type: ignore[no-untyped-def]
    return _token(uow, "compta", "finance")


class Client:
    """The Flask test client with a bearer token and JSON helpers."""

    def __init__(self, flask_client, token: str | None):  # type: ignore[no-untyped-def]
        self.flask = flask_client
        self.token = token

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**out, **(headers or {})}

    def open(self, method: str, path: str, *, headers: dict[str, str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        return self.flask.open(path, method=method, headers=self._headers(headers), **kw)

    def get(self, path: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.open("GET", path, **kw)

    def put(self, path: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.open("PUT", path, **kw)

    def post(self, path: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.open("POST", path, **kw)

    def as_token(self, token: str | None) -> Client:
        return Client(self.flask, token)


@pytest.fixture
def client(app, admin_token) -> Client:  # type: ignore[no-untyped-def]
    return Client(app.test_client(), admin_token)


@pytest.fixture
def finance(app, finance_token) -> Client:  # type: ignore[no-untyped-def]
    return Client(app.test_client(), finance_token)


@pytest.fixture
def world(uow) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The factories' seed world: entity atelier, client lumiere, contract LUM-2026-01..."""
    with uow() as session:
        factories.seed(session)
    yield

