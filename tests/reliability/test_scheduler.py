"""The scheduler: each tick of each job runs once across processes, a failure
is recorded and retried next tick, downtime is caught up once, and on
PostgreSQL one scheduler leads at a time."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.types import JobSpec
from jalon.connector.runtime import build_runtime
from jalon.connector.jobs.scheduler import LeaderLock, Scheduler, collect_jobs, tick_of
from jalon.connector.settings import Settings
from jalon.core.models import AuditRecord, JobRun

NOW = datetime(2026, 11, 2, 10, 7, 30, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


@pytest.fixture
def runtime(db_url):  # type: ignore[no-untyped-def]
    runtime = build_runtime(db_url, settings=Settings(), load_entrypoints=False)
    try:
        yield runtime
    finally:
        runtime.dispose()


@pytest.fixture
def make_scheduler(runtime):  # type: ignore[no-untyped-def]
    """Schedulers that give up leadership (their lock connection) after the test."""
    made: list[Scheduler] = []

    def make(*jobs: JobSpec, owner: str = "proc-a", on=None) -> Scheduler:  # type: ignore[no-untyped-def]
        scheduler = Scheduler(on or runtime, owner=owner, jobs=list(jobs) if jobs else None)
        made.append(scheduler)
        return scheduler

    try:
        yield make
    finally:
        for scheduler in made:
            scheduler.shutdown()


class Counter:
    def __init__(self, fail_times: int = 0):
        self.calls: list[object] = []
        self.fail_times = fail_times
        self.lock = threading.Lock()

    def __call__(self, context):  # type: ignore[no-untyped-def]
        with self.lock:
            self.calls.append(context)
            if len(self.calls) <= self.fail_times:
                raise RuntimeError("the remote tool is down")
        return {"seen": len(self.calls)}


def runs(runtime, job: str = "count") -> list[JobRun]:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return list(session.execute(select(JobRun).where(JobRun.job == job).order_by(JobRun.tick)).scalars())


def test_a_tick_is_the_start_of_the_interval_aligned_on_the_epoch():
    assert tick_of(NOW, HOUR) == datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)
    assert tick_of(NOW, timedelta(minutes=5)) == datetime(2026, 11, 2, 10, 5, tzinfo=timezone.utc)
    assert tick_of(NOW, timedelta(days=1)) == datetime(2026, 11, 2, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        tick_of(NOW, timedelta(0))


def test_a_run_is_recorded_with_its_tick_owner_result_and_times(runtime, make_scheduler):
    job = Counter()
    [record] = make_scheduler(JobSpec("count", HOUR, job)).run_due(NOW)
    assert (record.status, record.result) == ("ok", {"seen": 1})
    [row] = runs(runtime)
    assert (row.tick, row.owner, row.status, row.result) == (tick_of(NOW, HOUR), "proc-a", "ok", {"seen": 1})
    assert row.started_at == NOW and row.finished_at is not None and row.error is None


def test_a_tick_runs_once_across_schedulers_even_started_together(runtime, make_scheduler):
    job = Counter()
    spec = JobSpec("count", HOUR, job)
    schedulers = [make_scheduler(spec, owner=f"proc-{n}") for n in range(4)]
    barrier = threading.Barrier(len(schedulers))
    errors: list[BaseException] = []

    def go(scheduler: Scheduler) -> None:
        try:
            barrier.wait(timeout=10)
            scheduler.run_due(NOW + timedelta(minutes=1))
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=go, args=(s,)) for s in schedulers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert len(job.calls) == 1
    assert len(runs(runtime)) == 1
    # later in the same hour: still nothing to do
    assert schedulers[0].run_due(NOW + timedelta(minutes=40)) == []
    assert len(job.calls) == 1


def test_after_downtime_the_job_catches_up_once_not_once_per_missed_tick(runtime, make_scheduler):
    job = Counter()
    scheduler = make_scheduler(JobSpec("count", HOUR, job))
    scheduler.run_due(NOW)
    # the process was down for ten hours: one run, for the current tick
    later = NOW + 10 * HOUR
    [record] = scheduler.run_due(later)
    assert record.tick == tick_of(later, HOUR)
    assert [r.tick for r in runs(runtime)] == [tick_of(NOW, HOUR), tick_of(later, HOUR)]
    assert len(job.calls) == 2
    # the job learns when it last succeeded, to pick up from there
    assert job.calls[0].last_success is None
    assert job.calls[1].last_success == NOW
    assert job.calls[1].now == later


def test_a_failed_run_is_recorded_and_retried_at_the_next_tick(runtime, make_scheduler):
    job = Counter(fail_times=1)
    scheduler = make_scheduler(JobSpec("count", HOUR, job))
    [failed] = scheduler.run_due(NOW)
    assert failed.status == "failed" and "the remote tool is down" in failed.error
    assert scheduler.run_due(NOW + timedelta(minutes=5)) == []  # same tick: not hammered
    [ok] = scheduler.run_due(NOW + HOUR)
    assert ok.status == "ok"
    first, second = runs(runtime)
    assert (first.status, second.status) == ("failed", "ok")
    assert "RuntimeError: the remote tool is down" in first.error
    # a failure is not a success: the retry still sees no previous success
    assert job.calls[1].last_success is None


def test_a_run_left_running_by_a_dead_process_is_marked_failed_later(runtime, make_scheduler):
    job = Counter()
    scheduler = make_scheduler(JobSpec("count", HOUR, job))
    with runtime.sessionmaker() as session, session.begin():
        session.add(JobRun(job="count", tick=tick_of(NOW, HOUR), owner="dead-process", status="running",
                           started_at=NOW, result={}))
    # the next tick: the old run may still be running elsewhere, it is left alone
    scheduler.run_due(NOW + HOUR)
    assert [r.status for r in runs(runtime)] == ["running", "ok"]
    # two ticks later nobody is running it any more
    scheduler.run_due(NOW + 2 * HOUR)
    abandoned = runs(runtime)[0]
    assert abandoned.status == "failed" and "abandoned" in abandoned.error
    assert abandoned.finished_at is not None


def test_a_job_writes_through_the_context_unit_of_work(runtime, make_scheduler):
    def job(context):  # type: ignore[no-untyped-def]
        with context.session() as session:
            session.add(AuditRecord(actor="scheduler", action="job.ran", subject_type="job",
                                    subject_id=context.job, details={"tick": context.tick.isoformat()}))
        return {"written": 1}

    make_scheduler(JobSpec("audited", HOUR, job)).run_due(NOW)
    with runtime.sessionmaker() as session:
        actions = session.execute(select(AuditRecord.action).where(AuditRecord.subject_id == "audited")).scalars()
        assert list(actions) == ["job.ran"]


def test_plugins_contribute_jobs_and_names_must_be_unique(db_url, make_scheduler):
    job = Counter()

    class Plugin:
        @hookimpl
        def jalon_scheduler_jobs(self):  # type: ignore[no-untyped-def]
            return [JobSpec("poll", timedelta(minutes=10), job)]

    runtime = build_runtime(db_url, settings=Settings(), plugins=[Plugin()], load_entrypoints=False)
    try:
        assert "poll" in [spec.name for spec in collect_jobs(runtime)]
        make_scheduler(on=runtime).run_due(NOW)
        assert len(job.calls) == 1

        class Twin:
            @hookimpl
            def jalon_scheduler_jobs(self):  # type: ignore[no-untyped-def]
                return [JobSpec("poll", HOUR, job)]

        runtime.pm.register(Twin())
        with pytest.raises(ValueError, match="unique: poll"):
            collect_jobs(runtime)
    finally:
        runtime.dispose()


def test_a_plugins_job_runs_with_its_tick_and_no_database(db_url, make_scheduler):
    from jalon.connector.plugin import JobTick

    seen: list = []

    class Plugin:
        @hookimpl
        def jalon_scheduler_jobs(self):  # type: ignore[no-untyped-def]
            return [JobSpec("poll", timedelta(minutes=10), seen.append)]

    runtime = build_runtime(db_url, settings=Settings(), plugins=[Plugin()], load_entrypoints=False)
    try:
        make_scheduler(on=runtime).run_due(NOW)
    finally:
        runtime.dispose()
    [context] = seen
    assert isinstance(context, JobTick) and (context.job, context.now, context.last_success) == ("poll", NOW, None)
    assert not hasattr(context, "runtime") and not hasattr(context, "session")


def test_started_scheduler_runs_the_current_tick_at_once_and_stops(runtime, make_scheduler):
    job = Counter()
    scheduler = make_scheduler(JobSpec("count", timedelta(days=1), job))
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while not job.calls and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scheduler.shutdown()
    assert len(job.calls) == 1
    assert [r.status for r in runs(runtime)] == ["ok"]


def test_one_scheduler_leads_on_postgresql_and_another_takes_over_when_its_connection_dies(runtime):
    first, second = LeaderLock(runtime), LeaderLock(runtime)
    try:
        assert first.acquire()
        if runtime.engine.dialect.name != "postgresql":
            # SQLite: no lock to hold, every scheduler may act; the (job, tick) row keeps ticks single
            assert second.acquire()
            return
        assert not second.acquire()
        assert first.acquire()  # still leading
        # the leader's connection dies (network cut, server restart of that backend)
        pid = first._conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            # pg_terminate_backend only signals: the backend (and its advisory lock) goes a moment later
            # (pg_stat_activity is read once per transaction: each look is a transaction of its own)
            conn.commit()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                gone = not conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                        {"pid": pid}).scalar()
                conn.rollback()
                if gone:
                    break
                time.sleep(0.02)
        assert second.acquire()
        assert not first.acquire()  # it learns it lost, and cannot take the lock back
    finally:
        first.release()
        second.release()


def test_a_scheduler_that_does_not_lead_runs_nothing(runtime, make_scheduler):
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("leadership is a PostgreSQL advisory lock")
    job = Counter()
    leader = LeaderLock(runtime)
    try:
        assert leader.acquire()
        assert make_scheduler(JobSpec("count", HOUR, job), owner="proc-b").run_due(NOW) == []
        assert job.calls == [] and runs(runtime) == []
    finally:
        leader.release()
