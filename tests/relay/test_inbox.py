"""The inbox as intake's requests share it: one transaction for the
deliveries of concurrent requests (SQLite), each stored only if its
integration is still the one it was checked against."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jalon.connector.relay.intake import STALE, Inbox, _Pending
from jalon.core.db import unit_of_work
from jalon.core.models import Delivery, Integration
from jalon.core.types import utcnow

from .conftest import KEY


def _integration(intake) -> tuple[int, tuple]:  # type: ignore[no-untyped-def]
    """(id, raw row as intake's endpoints read it)."""
    endpoint = intake.endpoints.lookup(KEY)
    return endpoint.id, endpoint.row


def _values(integration_id: int, key: str) -> dict:  # type: ignore[type-arg]
    now = utcnow()
    return {"integration_id": integration_id, "source": "fake", "idempotency_key": key, "received_at": now,
            "headers": {"x-fake-delivery": key}, "body": b"{}", "body_sha256": "0" * 64, "next_attempt_at": now}


@pytest.fixture
def intake(app):  # type: ignore[no-untyped-def]
    return app.extensions["jalon.intake"]


def _stored(runtime) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return [tuple(row) for row in session.execute(select(Delivery.id, Delivery.idempotency_key).order_by(Delivery.id))]


def test_a_delivery_checked_against_a_changed_integration_is_not_stored(intake, runtime):  # type: ignore[no-untyped-def]
    integration_id, row = _integration(intake)
    inbox = Inbox(runtime.engine)
    try:
        first = inbox.store(_values(integration_id, "k-1"), row)
        assert isinstance(first, int) and first != STALE
        with unit_of_work(runtime.sessionmaker) as session:
            session.execute(select(Integration).where(Integration.key == KEY)).scalar_one().name = "renamed"
        assert inbox.store(_values(integration_id, "k-2"), row) == STALE
        assert inbox.store(_values(integration_id, "k-1"), _integration(intake)[1]) is None  # a duplicate
        assert _stored(runtime) == [(first, "k-1")]
    finally:
        inbox.dispose()


def test_one_transaction_sorts_new_duplicate_and_stale_deliveries(intake, runtime, db_url):  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("deliveries are committed together on SQLite; PostgreSQL groups commits itself")
    integration_id, row = _integration(intake)
    stale = tuple(("old name" if value == row[3] else value) for value in row)  # the name read before a change
    inbox = Inbox(runtime.engine)
    inbox._raw.MAX_ROWS = 2  # several statements in the one transaction
    try:
        known = inbox.store(_values(integration_id, "known"), row)
        batch = [_Pending(_values(integration_id, key), checked) for key, checked in (
            ("a", row), ("known", row), ("b", stale), ("a", row), ("c", row), ("d", row), ("c", row))]
        ids = inbox._write(batch)
        stored = dict((key, delivery_id) for delivery_id, key in _stored(runtime))
        assert ids == [stored["a"], None, STALE, None, stored["c"], stored["d"], None]
        assert sorted(stored) == ["a", "c", "d", "known"] and stored["known"] == known
    finally:
        inbox.dispose()
