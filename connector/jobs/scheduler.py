"""Scheduled jobs: APScheduler fires, the database decides who runs.

APScheduler 3 cannot share a job store between processes, so it is only the
alarm clock here. What makes a job run once per tick, whatever the number of
processes, is the ``job_runs`` table:

* a tick is the start of the job's current interval, aligned on the epoch
  (``tick = floor(now / interval) * interval``), so every process computes the
  same tick for the same moment;
* before running, a process inserts the row ``(job, tick)`` with
  ``ON CONFLICT DO NOTHING``; whoever inserted it runs the tick, the others
  see no row inserted and skip it;
* after downtime, the current tick is run once, not every tick missed;
* a failed run is recorded ``failed`` with its error and retried next tick.

On PostgreSQL one scheduler leads at a time, through an advisory lock held on
a dedicated connection for as long as it leads (a lost connection is lost
leadership; another process takes over at its next check). On SQLite the
``(job, tick)`` row is enough.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.orm import Session

from jalon.core.audit import jsonable
from jalon.core.db import insert_ignoring_conflicts, unit_of_work
from jalon.core.models import JobRun
from jalon.core.types import utcnow

from jalon.connector.plugin.types import JobSpec, JobTick
from jalon.connector.runtime import Runtime

log = logging.getLogger("jalon.connector.jobs.scheduler")

_JOB_RUNS = JobRun.__table__
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# pg_try_advisory_lock key: "jalon" + "sched" as one bigint, the same in every process
LEADER_LOCK_KEY = 0x6A616C6F6E5C
# how often a process that does not lead tries to take over, and a leader checks its connection
LEADER_CHECK_SECONDS = 5.0


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:100]


def tick_of(now: datetime, interval: timedelta) -> datetime:
    """The start of the interval ``now`` falls in, aligned on the epoch."""
    step = interval // timedelta(microseconds=1)
    if step <= 0:
        raise ValueError("a job's interval must be positive")
    elapsed = (now - EPOCH) // timedelta(microseconds=1)
    return EPOCH + timedelta(microseconds=(elapsed // step) * step)


@dataclass(frozen=True)
class JobContext:
    """What a job's ``run(context)`` receives."""

    runtime: Runtime
    job: str
    tick: datetime
    now: datetime
    # when the last successful run of this job started (None: never ran)
    last_success: datetime | None

    def session(self) -> AbstractContextManager[Session]:
        """A unit of work: commits when the block ends, rolls back when it raises."""
        return unit_of_work(self.runtime.sessionmaker)


@dataclass(frozen=True)
class RunRecord:
    job: str
    tick: datetime
    status: str  # ok | failed
    result: Mapping[str, Any] | None = None
    error: str | None = None


def builtin_jobs() -> list[JobSpec]:
    """The connector's own jobs: retention of raw bodies, documents of issued invoices."""
    from jalon.connector.outbox.rendering import documents_job
    from jalon.connector.relay.retention import retention_job

    return [retention_job, documents_job]


def collect_jobs(runtime: Runtime, *, builtins: bool = True) -> list[JobSpec]:
    """Built-in jobs (with the reconciliation of each source that can say what
    changed), then every plugin's; a name appearing twice is an error."""
    from jalon.connector.jobs.reconcile import reconcile_jobs

    jobs = [*builtin_jobs(), *reconcile_jobs(runtime)] if builtins else []
    for contributed in runtime.pm.hook.jalon_scheduler_jobs():
        jobs.extend(_for_a_plugin(job) for job in contributed or ())
    names = [job.name for job in jobs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"scheduled job names must be unique: {', '.join(duplicates)}")
    for job in jobs:
        if job.interval <= timedelta(0):
            raise ValueError(f"job {job.name}: the interval must be positive")
    return jobs


def _for_a_plugin(job: JobSpec) -> JobSpec:
    """A plugin's job runs with a :class:`JobTick` (its tick, the time, its last
    success), never the runtime: a plugin holds no database session."""
    def run(context: JobContext) -> Mapping[str, Any] | None:
        return job.run(JobTick(job=context.job, tick=context.tick, now=context.now, last_success=context.last_success))

    return replace(job, run=run)


class LeaderLock:
    """Leadership among schedulers. PostgreSQL: a session advisory lock on a
    dedicated connection; other engines: every process may act (the
    ``(job, tick)`` row keeps ticks single)."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.postgresql = runtime.engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return not self.postgresql or self._conn is not None

    def acquire(self) -> bool:
        """Lead if possible; True when this process leads now."""
        if not self.postgresql:
            return True
        with self._lock:
            if self._conn is not None:
                try:  # still the same session, so still the lock's holder
                    self._conn.exec_driver_sql("SELECT 1")
                    return True
                except Exception:
                    log.warning("scheduler: leader connection lost, leadership lost")
                    self._drop()
            try:
                conn = self.runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except Exception:
                log.warning("scheduler: database unreachable, not leading", exc_info=True)
                return False
            try:
                won = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"),
                                        {"key": LEADER_LOCK_KEY}).scalar())
            except Exception:
                log.warning("scheduler: could not ask for the leader lock", exc_info=True)
                conn.close()
                return False
            if won:
                self._conn = conn
                log.info("scheduler: leading")
            else:
                conn.close()
            return won

    def release(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LEADER_LOCK_KEY})
                except Exception:
                    pass
                self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.invalidate()  # never hand a connection that held the lock back to the pool
        except Exception:
            pass
        try:
            conn.close()
        except Exception:
            pass


class Scheduler:
    """Runs due ticks (:meth:`run_due`), and fires itself with APScheduler
    (:meth:`start` / :meth:`shutdown`)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        owner: str | None = None,
        jobs: Sequence[JobSpec] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.runtime = runtime
        self.owner = owner or default_owner()
        self.jobs = list(jobs) if jobs is not None else collect_jobs(runtime)
        self.clock = clock
        self.leader = LeaderLock(runtime)
        self._aps: Any = None
        self._run_lock = threading.Lock()

    # --- the database side: one tick, once ---------------------------------------------

    def run_due(self, now: datetime | None = None) -> list[RunRecord]:
        """Run every job whose current tick nobody has run yet (when leading)."""
        if not self.leader.acquire():
            return []
        now = now or self.clock()
        records = []
        for job in self.jobs:
            record = self.run_job(job, now=now)
            if record is not None:
                records.append(record)
        return records

    def run_job(self, job: JobSpec, *, now: datetime | None = None) -> RunRecord | None:
        """Run ``job`` for the tick of ``now`` if no process has; None when taken."""
        with self._run_lock:
            now = now or self.clock()
            tick = tick_of(now, job.interval)
            claimed = self._claim(job.name, tick, now, interval=job.interval)
            if claimed is None:
                return None
            run_id, last_success = claimed
            context = JobContext(self.runtime, job.name, tick, now, last_success)
            try:
                result = dict(job.run(context) or {})
            except Exception as error:
                detail = "".join(traceback.format_exception_only(type(error), error)).strip()[:2000]
                # one line with the reason: a remote tool that is down fails every tick, and a
                # traceback each time would bury the log; the run keeps the error (GET /api/v1/jobs)
                log.error("scheduled job %s failed (tick %s): %s: %s", job.name, tick.isoformat(),
                          type(error).__name__, next(iter(str(error).strip().splitlines()), ""))
                log.debug("scheduled job %s (tick %s): traceback", job.name, tick.isoformat(), exc_info=True)
                self._finish(run_id, "failed", error=detail)
                return RunRecord(job.name, tick, "failed", error=detail)
            self._finish(run_id, "ok", result=jsonable(result))
            return RunRecord(job.name, tick, "ok", result=result)

    def _claim(self, job: str, tick: datetime, now: datetime, *, interval: timedelta
               ) -> tuple[int, datetime | None] | None:
        with unit_of_work(self.runtime.sessionmaker) as session:
            values = {"job": job, "tick": tick, "owner": self.owner, "status": "running",
                      "started_at": now, "result": {}}
            statement = (
                insert_ignoring_conflicts(session.get_bind().dialect.name, _JOB_RUNS, index_elements=["job", "tick"])
                .values(**values)
                .returning(_JOB_RUNS.c.id)
            )
            run_id = session.execute(statement).scalar()
            if run_id is None:  # another process has this tick
                return None
            # a run still "running" two ticks later belonged to a process that died
            # mid-run: say so, so that the job's history is not left hanging
            session.execute(
                update(JobRun)
                .where(JobRun.job == job, JobRun.status == "running", JobRun.tick < tick - interval)
                .values(status="failed", finished_at=now,
                        error="abandoned: the process running it stopped before it finished")
            )
            last_success = session.execute(
                select(JobRun.started_at)
                .where(JobRun.job == job, JobRun.status == "ok")
                .order_by(JobRun.tick.desc())
                .limit(1)
            ).scalar_one_or_none()
        return run_id, last_success

    def _finish(self, run_id: int, status: str, *, result: Mapping[str, Any] | None = None,
                error: str | None = None) -> None:
        with unit_of_work(self.runtime.sessionmaker) as session:
            session.execute(
                update(JobRun).where(JobRun.id == run_id).values(
                    status=status, finished_at=utcnow(), result=dict(result or {}), error=error
                )
            )

    # --- the clock side: APScheduler -----------------------------------------------------

    def start(self) -> None:
        """Fire each job at every tick boundary, and once now (the catch-up run)."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        aps = BackgroundScheduler(timezone=timezone.utc, daemon=True)
        first = utcnow()
        for job in self.jobs:
            aps.add_job(
                self._fire, IntervalTrigger(seconds=job.interval.total_seconds(), start_date=EPOCH,
                                            timezone=timezone.utc),
                args=[job], id=f"jalon:{job.name}", name=job.name,
                coalesce=True, max_instances=1, misfire_grace_time=None, next_run_time=first,
            )
        # a process that does not lead tries again now and then; a leader checks its connection
        aps.add_job(self._check_leader, IntervalTrigger(seconds=LEADER_CHECK_SECONDS), id="jalon:leader",
                    coalesce=True, max_instances=1, next_run_time=first)
        aps.start()
        self._aps = aps

    def shutdown(self, wait: bool = True) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=wait)
            self._aps = None
        self.leader.release()

    def _fire(self, job: JobSpec) -> None:
        try:
            if self.leader.acquire():
                self.run_job(job)
        except Exception:  # a database hiccup: the next firing tries again
            log.exception("scheduler: could not run %s", job.name)

    def _check_leader(self) -> None:
        was = self.leader.held
        try:
            now_leads = self.leader.acquire()
        except Exception:
            log.exception("scheduler: leader check failed")
            return
        if now_leads and not was:
            # just took over: run what the previous leader left for this tick
            for job in self.jobs:
                self._fire(job)
