"""An app with the fake source plugins on the conftest's migrated database,
the factories' world re-keyed onto the fake source, and signed posts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from jalon.connector.app import create_app
from jalon.connector.settings import Settings
from jalon.core import tokens
from jalon.core.db import unit_of_work
from jalon.core.models import Delivery
from tests import factories

from .fake_source import FakeSource, OtherSource, signature

KEY = "fake-atelier"
SECRET = "s3cret"
INTEGRATION = {"key": KEY, "source": "fake", "name": "Fake Atelier", "secret": SECRET}
MAPPING = {"integration": KEY, "project": "WEB", "contract": "LUM-2026-01"}


def seed(session) -> None:  # type: ignore[no-untyped-def]
    factories.seed(session, integrations=[INTEGRATION], mappings=[MAPPING])


@pytest.fixture
def fake() -> FakeSource:
    return FakeSource()


@pytest.fixture
def make_app(db_url, fake) -> Iterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    """create_app(...) with the fake sources and these settings; seeded once."""
    apps: list[Any] = []

    def make(**settings: Any):  # type: ignore[no-untyped-def]
        defaults = {"max_body_bytes": 4096, "worker_idle_seconds": 0.05}
        app = create_app(db_url, settings=Settings(**{**defaults, **settings}), plugins=[fake, OtherSource()],
                         load_entrypoints=False, TESTING=True)
        if not apps:
            with unit_of_work(app.extensions["jalon"].sessionmaker) as session:
                seed(session)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["jalon"].dispose()


@pytest.fixture
def app(make_app):  # type: ignore[no-untyped-def]
    return make_app()


@pytest.fixture
def runtime(app):  # type: ignore[no-untyped-def]
    return app.extensions["jalon"]


@pytest.fixture
def uow(runtime):  # type: ignore[no-untyped-def]
    return lambda: unit_of_work(runtime.sessionmaker)


def payload(event: str = "task.done", **fields: Any) -> bytes:
    data = {"event": event, "project": "WEB", "task": "WEB-1", "at": "2026-11-02T10:00:00+00:00", **fields}
    return json.dumps(data).encode()


def post(client, body: bytes, *, delivery: str | None = "d-1", secret: str | None = SECRET,  # type: ignore[no-untyped-def]
         source: str = "fake", key: str = KEY, headers: dict[str, str] | None = None, **kw: Any):
    sent = {"Content-Type": "application/json"}
    if secret is not None:
        sent["X-Fake-Signature"] = signature(body, secret)
    if delivery is not None:
        sent["X-Fake-Delivery"] = delivery
    sent.update(headers or {})
    return client.post(f"/hooks/{source}/{key}", data=body, headers=sent, **kw)


def count_deliveries(runtime) -> int:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return session.scalar(select(func.count()).select_from(Delivery))


def token(runtime, scope: str) -> str:  # type: ignore[no-untyped-def]
    with unit_of_work(runtime.sessionmaker) as session:
        _, plain = tokens.create_token(session, name=f"{scope} test", scope=scope, actor="test")
    return plain
