"""The background loops: a pass that raises never stops a loop, a stored
delivery wakes the worker at once (not after the idle poll), and stop() ends
every thread."""

from __future__ import annotations

import threading
import time

import pytest

from sqlalchemy import select

from jalon.connector.app import create_app
from jalon.connector.runners import Loop, Runners
from jalon.connector.settings import Settings
from jalon.core import catalog
from jalon.core.db import unit_of_work
from jalon.core.models import Delivery, TimeEntry
from tests.reliability import fakesource


def test_a_pass_that_raises_is_logged_and_the_loop_goes_on(caplog):
    calls: list[int] = []
    done = threading.Event()

    def step() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        if len(calls) >= 3:
            done.set()
        return 0

    stopping = threading.Event()
    loop = Loop("test-loop", step, wake=threading.Event(), idle=0.01, stopping=stopping)
    loop.start()
    try:
        assert done.wait(10)
    finally:
        stopping.set()
        loop.join(5)
    assert not loop.is_alive()
    assert loop.errors == 1 and loop.passes >= 2
    assert "test-loop: pass failed, going on" in caplog.text


def test_a_loop_waits_on_its_event_not_on_the_idle_timeout():
    calls: list[float] = []
    wake, stopping = threading.Event(), threading.Event()
    loop = Loop("test-loop", lambda: calls.append(time.monotonic()) or 0, wake=wake, idle=60, stopping=stopping)
    loop.start()
    try:
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        wake.set()
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) == 2  # woken well before the 60 s idle poll
    finally:
        stopping.set()
        wake.set()
        loop.join(5)
    assert not loop.is_alive()


def test_a_stored_delivery_is_processed_at_once_by_the_in_process_worker(db_url):
    # an idle poll of a minute: only the wake-up from intake can explain a prompt pick-up
    settings = Settings(worker_idle_seconds=60)
    app = create_app(db_url, settings=settings, plugins=[fakesource.plugin], load_entrypoints=False)
    runtime = app.extensions["jalon"]
    with unit_of_work(runtime.sessionmaker) as session:
        catalog.apply_config(session, fakesource.world(1), actor="test")
    runners = Runners(runtime, scheduler=False).start()
    try:
        time.sleep(0.3)  # both loops are asleep now
        body = fakesource.time_body("WL-1", 5400)
        response = app.test_client().post(
            f"/hooks/fake/{fakesource.INTEGRATION_KEY}", data=body,
            headers=fakesource.headers_for(fakesource.SECRET, "d-1", body),
        )
        assert response.status_code == 202
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            with runtime.sessionmaker() as session:
                status = session.execute(select(Delivery.status)).scalar_one()
            if status == "done":
                break
            time.sleep(0.05)
        assert status == "done"
        with runtime.sessionmaker() as session:
            assert session.execute(select(TimeEntry.seconds)).scalars().all() == [5400]
    finally:
        assert runners.stop(timeout=10)
        runtime.dispose()
    assert not any(loop.is_alive() for loop in runners.loops)


def test_under_a_burst_at_the_door_the_worker_pauses_between_batches_and_not_otherwise(monkeypatch):
    from types import SimpleNamespace

    from jalon.connector import runners, worker

    clock = [1000.0]
    batch_seconds = 0.02

    def a_batch(runtime, **_):  # type: ignore[no-untyped-def]
        clock[0] += batch_seconds
        return 20

    slept: list[float] = []
    monkeypatch.setattr(worker, "process_once", a_batch)
    monkeypatch.setattr(runners, "time", SimpleNamespace(monotonic=lambda: clock[0], sleep=slept.append))
    runtime = SimpleNamespace(settings=Settings(worker_yield_above=100.0, worker_yield_seconds=0.1),
                              intake_accepted=0)
    step = runners._worker_step(runtime, "w")

    assert step() == 20 and slept == []  # a quiet door: no pause
    runtime.intake_accepted += 500  # 500 deliveries during a 20 ms batch: a burst
    assert step() == 20
    # a pause, never longer than the batch itself: the worker keeps half the time at least
    assert slept == [pytest.approx(batch_seconds)]
    clock[0] += 10  # the burst is over
    step()
    assert len(slept) == 1
