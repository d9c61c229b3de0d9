"""The inbox as intake's requests share it: each delivery stored only if its
integration is still the one it was checked against, a known key a
duplicate. The one-transaction-per-delivery inbox (the reference, on both
engines) and SQLite's group commit (the deliveries of concurrent requests in
one transaction) give the same answers."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from jalon.connector.relay.inbox import (
    DELIVERY_KEYS,
    NEW_DELIVERY,
    STALE,
    GroupCommitInbox,
    Inbox,
    TransactionInbox,
    _Pending,
    _RawInsert,
    open_inbox,
)
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


@pytest.fixture(params=["transaction", "group commit"])
def make_inbox(request, runtime, db_url):  # type: ignore[no-untyped-def]
    """Each implementation of the inbox on the engine (the group commit on SQLite only)."""
    if request.param == "group commit" and not db_url.startswith("sqlite"):
        pytest.skip("the group commit is SQLite's; PostgreSQL groups commits itself")
    kind = TransactionInbox if request.param == "transaction" else GroupCommitInbox
    made: list[Inbox] = []

    def make() -> Inbox:
        made.append(kind(runtime.engine))
        return made[-1]

    yield make
    for inbox in made:
        inbox.dispose()


def _stored(runtime) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return [tuple(row) for row in session.execute(select(Delivery.id, Delivery.idempotency_key).order_by(Delivery.id))]


def test_each_engine_gets_its_inbox(intake, db_url):  # type: ignore[no-untyped-def]
    expected = GroupCommitInbox if db_url.startswith("sqlite") else TransactionInbox
    assert type(intake.inbox) is expected
    assert type(open_inbox(intake.runtime.engine)) is expected


def test_the_group_commit_is_sqlite_s_only(runtime, db_url):  # type: ignore[no-untyped-def]
    if db_url.startswith("sqlite"):
        pytest.skip("a PostgreSQL case")
    with pytest.raises(ValueError, match="SQLite"):
        GroupCommitInbox(runtime.engine)


def test_a_delivery_is_stored_with_the_values_every_new_one_starts_with(intake, runtime, make_inbox):  # type: ignore[no-untyped-def]
    integration_id, row = _integration(intake)
    values = _values(integration_id, "k-1")
    delivery_id = make_inbox().store(values, row)
    with runtime.sessionmaker() as session:
        delivery = session.get(Delivery, delivery_id)
        assert (delivery.status, delivery.attempts, delivery.outcomes) == ("pending", 0, [])
        assert (delivery.integration_id, delivery.source, delivery.idempotency_key) == (integration_id, "fake", "k-1")
        assert delivery.headers == values["headers"] and delivery.body == b"{}"
        assert delivery.received_at == delivery.next_attempt_at


def test_the_group_commit_stores_the_row_the_reference_stores(intake, runtime, db_url):  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("the group commit is SQLite's")
    integration_id, row = _integration(intake)
    values = _values(integration_id, "by reference")
    reference, grouped = TransactionInbox(runtime.engine), GroupCommitInbox(runtime.engine)
    try:
        ids = [reference.store(values, row), grouped.store({**values, "idempotency_key": "grouped"}, row)]
    finally:
        grouped.dispose()
    columns = [column for column in Delivery.__table__.c if column.key not in ("id", "idempotency_key")]
    with runtime.engine.connect() as conn:  # every column, defaults included, as stored
        stored = [tuple(found) for found in conn.execute(
            select(*columns).where(Delivery.id.in_(ids)).order_by(Delivery.id))]
    assert len(stored) == 2 and stored[0] == stored[1]


def test_the_raw_insert_refuses_a_column_whose_default_it_cannot_compute(runtime, db_url):  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("the group commit is SQLite's")
    keys = [key for key in DELIVERY_KEYS if key != "headers"]  # headers' default is a function (dict)
    with pytest.raises(ValueError, match="deliveries.headers"):
        _RawInsert(runtime.engine.dialect, keys, NEW_DELIVERY)


def test_a_delivery_checked_against_a_changed_integration_is_not_stored(intake, runtime, make_inbox):  # type: ignore[no-untyped-def]
    integration_id, row = _integration(intake)
    inbox = make_inbox()
    first = inbox.store(_values(integration_id, "k-1"), row)
    assert isinstance(first, int) and first != STALE
    with unit_of_work(runtime.sessionmaker) as session:
        session.execute(select(Integration).where(Integration.key == KEY)).scalar_one().name = "renamed"
    assert inbox.store(_values(integration_id, "k-2"), row) == STALE
    assert inbox.store(_values(integration_id, "k-1"), _integration(intake)[1]) is None  # a duplicate
    assert _stored(runtime) == [(first, "k-1")]


def test_concurrent_stores_keep_each_key_once(intake, runtime, make_inbox):  # type: ignore[no-untyped-def]
    integration_id, row = _integration(intake)
    inbox = make_inbox()
    threads_count, keys = 6, [f"k-{n}" for n in range(20)]
    barrier = threading.Barrier(threads_count)
    answers: list[tuple[str, int | None]] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            barrier.wait(timeout=10)
            for key in keys:  # every thread sends every key: one is stored, the others are duplicates
                answers.append((key, inbox.store(_values(integration_id, key), row)))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=send) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(thread.is_alive() for thread in threads)
    stored = dict((key, delivery_id) for delivery_id, key in _stored(runtime))
    assert sorted(stored) == sorted(keys)
    for key in keys:
        got = [delivery_id for answered, delivery_id in answers if answered == key]
        assert sorted(got, key=lambda d: d is None) == [stored[key]] + [None] * (threads_count - 1)


def test_one_transaction_sorts_new_duplicate_and_stale_deliveries(intake, runtime, db_url):  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("deliveries are committed together on SQLite; PostgreSQL groups commits itself")
    integration_id, row = _integration(intake)
    stale = tuple(("old name" if value == row[3] else value) for value in row)  # the name read before a change
    inbox = GroupCommitInbox(runtime.engine)
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
