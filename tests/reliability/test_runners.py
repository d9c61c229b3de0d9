"""The background loops: a pass that raises never stops a loop, a stored
delivery wakes the worker at once (not after the idle poll), and stop() ends
every thread."""

from __future__ import annotations

import threading
import time

from sqlalchemy import select

from jalon.connector.app import create_app
from jalon.connector.jobs.runners import Loop, Runners
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


class _Door:
    """A door whose business the test decides; it records the worker's waits."""

    def __init__(self) -> None:
        self.burst = False
        self.rate = 0.0
        self.quiet = False
        self.waits: list[float] = []
        self.calm_waits: list[float] = []

    def bursting(self) -> bool:
        return self.burst

    def wait_calm(self, timeout: float, rate: float) -> bool:
        self.calm_waits.append(timeout)
        return False

    def wait_quiet(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return self.quiet


def test_under_a_burst_the_worker_applies_one_delivery_at_a_time_after_waiting_for_the_door(monkeypatch):
    from types import SimpleNamespace

    from jalon.connector.jobs import runners

    from jalon.connector.relay import worker

    passes: list[tuple[int, list[float]]] = []
    door = _Door()

    def a_batch(runtime, *, owner, limit, group, pause):  # type: ignore[no-untyped-def]
        before = len(door.waits)
        for _ in range(3):  # three apply transactions
            pause()
        passes.append((group, door.waits[before:]))
        return 20

    monkeypatch.setattr(worker, "process_once", a_batch)
    runtime = SimpleNamespace(settings=Settings(worker_yield_above=100.0, worker_yield_seconds=0.1),
                              intake_accepted=0)
    step = runners._worker_step(runtime, "w", door)  # type: ignore[arg-type]

    assert step() == 20
    assert passes[-1] == (worker.APPLY_GROUP, [])  # a quiet door: several per transaction, no wait
    door.burst, door.rate = True, 200.0
    door.waits.clear()
    assert step() == 20
    # one delivery per transaction, each one (and the claim before them) after waiting
    # for a quiet moment at the door, worker_yield_seconds first, twice as long after
    # each wait that found none, up to YIELD_MAX_SECONDS
    assert passes[-1] == (1, [0.2, 0.4, 0.8])
    assert door.waits == [0.1, 0.2, 0.4, 0.8]
    assert step() == 20
    assert door.waits[4:] == [1.6, 2.0, 2.0, 2.0]
    # a quiet moment found: back to worker_yield_seconds
    door.quiet = True
    step()
    assert door.waits[8:] == [2.0, 0.1, 0.1, 0.1]
    door.quiet = False
    step()
    assert door.waits[12:] == [0.1, 0.2, 0.4, 0.8]
    assert door.calm_waits == []  # 200/s: below worker_stand_back_above, the worker looks for quiet moments
    door.burst = False
    step()
    assert passes[-1] == (worker.APPLY_GROUP, [])


def test_above_what_it_could_apply_the_worker_waits_for_the_burst_to_ease(monkeypatch):
    from types import SimpleNamespace

    from jalon.connector.jobs import runners

    from jalon.connector.relay import worker

    door = _Door()
    door.burst, door.rate, door.quiet = True, 1500.0, True

    def a_batch(runtime, *, owner, limit, group, pause):  # type: ignore[no-untyped-def]
        pause()
        return 1

    monkeypatch.setattr(worker, "process_once", a_batch)
    runtime = SimpleNamespace(settings=Settings(worker_yield_above=100.0, worker_yield_seconds=0.1,
                                                worker_stand_back_above=500.0), intake_accepted=0)
    step = runners._worker_step(runtime, "w", door)  # type: ignore[arg-type]
    for _ in range(4):
        step()
    # the burst never eased: no quiet moment looked for, the waits lengthen to YIELD_MAX_SECONDS
    assert door.calm_waits == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert door.waits == []


def test_the_door_is_bursting_above_the_rate_and_quiet_only_after_a_pause_between_requests(monkeypatch):
    from types import SimpleNamespace

    from jalon.connector.jobs import runners

    clock = [1000.0]
    monkeypatch.setattr(runners.time, "monotonic", lambda: clock[0])
    intake = SimpleNamespace(inflight=1, started=0)
    runtime = SimpleNamespace(settings=Settings(worker_yield_above=100.0), intake_accepted=0)
    door = runners.Door(runtime, intake)  # type: ignore[arg-type]
    assert not door.bursting()
    clock[0] += 0.3
    runtime.intake_accepted += 50  # 50 in the last quarter of a second (or more): 200/s
    assert door.bursting()
    clock[0] += 0.1
    assert door.bursting()  # judged again once a window has passed
    clock[0] += 0.2
    runtime.intake_accepted += 10
    assert not door.bursting()
    monkeypatch.undo()

    # a request being answered: not quiet, whatever the wait
    assert door.wait_quiet(0.05) is False
    # no request being answered, none starting: quiet after QUIET_SECONDS
    intake.inflight = 0
    began = time.monotonic()
    assert door.wait_quiet(5.0) is True
    assert time.monotonic() - began < 1.0
    # without a web server in the process (jalon worker): never quiet, the worker waits its turn
    assert runners.Door(runtime).wait_quiet(0.01) is False
