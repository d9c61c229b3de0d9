"""A transaction that only reads (the worker reading the deliveries it just
leased) neither waits for a write transaction nor holds one up."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from jalon.core import catalog
from jalon.core.db import make_sessionmaker, read_only_session, unit_of_work
from jalon.core.models import Integration


def test_a_read_only_session_neither_waits_for_a_writer_nor_sees_its_uncommitted_rows(engine):
    factory = make_sessionmaker(engine)
    writing, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            with unit_of_work(factory) as session:
                catalog.upsert_integration(session, {"key": "held", "source": "fake", "secret": "s"}, actor="test")
                session.flush()
                writing.set()
                release.wait(10)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        began = time.monotonic()
        with read_only_session(factory) as session:
            assert session.scalar(select(func.count()).select_from(Integration).where(Integration.key == "held")) == 0
        assert time.monotonic() - began < 2  # not queued behind the open write transaction
    finally:
        release.set()
        thread.join(10)
    assert not errors
    with read_only_session(factory) as session:
        assert session.scalar(select(func.count()).select_from(Integration).where(Integration.key == "held")) == 1
