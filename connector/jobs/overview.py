"""What each scheduled job did last and when it runs next, read from ``job_runs``.

The API (``GET /api/v1/jobs``) and ``jalon jobs list`` show the same thing, so
that a job's state is visible without reading the logs. The jobs are those the
scheduler would run (:func:`collect_jobs`: the built-in ones and every
plugin's); a job that never ran has no last run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from jalon.core.errors import NotFound
from jalon.core.models import JobRun

from jalon.connector.jobs.scheduler import tick_of
from jalon.connector.plugin.types import JobSpec


@dataclass(frozen=True)
class JobStatus:
    name: str
    description: str
    interval: timedelta
    last_run: JobRun | None  # the run of the latest tick, whatever its status
    last_success: JobRun | None  # the latest run that ended ok
    next_tick: datetime

    @property
    def interval_seconds(self) -> int:
        return self.interval // timedelta(seconds=1)


def find_job(jobs: Sequence[JobSpec], name: str) -> JobSpec:
    for job in jobs:
        if job.name == name:
            return job
    raise NotFound(f"no scheduled job {name!r}", code="job_not_found")


def job_statuses(session: Session, jobs: Sequence[JobSpec], now: datetime) -> list[JobStatus]:
    """One status per job, in the order given (two queries, whatever the number of jobs)."""
    names = [job.name for job in jobs]
    last_runs = _latest(session, names)
    successes = _latest(session, names, status="ok")
    return [
        JobStatus(
            name=job.name,
            description=job.description,
            interval=job.interval,
            last_run=last_runs.get(job.name),
            last_success=successes.get(job.name),
            # the scheduler fires at every tick boundary: the next one is the end of the current tick
            next_tick=tick_of(now, job.interval) + job.interval,
        )
        for job in jobs
    ]


def runs_of(name: str) -> Select[tuple[JobRun]]:
    """A job's runs, latest tick first."""
    return select(JobRun).where(JobRun.job == name).order_by(JobRun.tick.desc())


def first_line(text: str | None) -> str | None:
    if not text:
        return text
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _latest(session: Session, names: Sequence[str], *, status: str | None = None) -> dict[str, JobRun]:
    if not names:
        return {}
    latest = select(JobRun.job, func.max(JobRun.tick).label("tick")).where(JobRun.job.in_(names))
    if status is not None:
        latest = latest.where(JobRun.status == status)
    newest = latest.group_by(JobRun.job).subquery()
    rows = session.execute(
        select(JobRun).join(newest, and_(JobRun.job == newest.c.job, JobRun.tick == newest.c.tick))
    ).scalars()
    return {row.job: row for row in rows}
