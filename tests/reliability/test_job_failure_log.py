"""A failing job is one line in the log, with the job and the reason; the
traceback only at DEBUG; the run keeps its error, as before."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from jalon.connector.jobs.scheduler import Scheduler
from jalon.connector.net.http import Unavailable
from jalon.connector.plugin.types import JobSpec
from jalon.connector.runtime import build_runtime
from jalon.connector.settings import Settings
from jalon.core.models import JobRun

NOW = datetime(2026, 11, 2, 10, 7, 30, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
LOGGER = "jalon.connector.jobs.scheduler"


@pytest.fixture
def runtime(db_url):  # type: ignore[no-untyped-def]
    runtime = build_runtime(db_url, settings=Settings(), load_entrypoints=False)
    try:
        yield runtime
    finally:
        runtime.dispose()


def fail_with(error: Exception) -> JobSpec:
    def reconcile(context):  # type: ignore[no-untyped-def]
        raise error

    return JobSpec("fake.reconcile", HOUR, reconcile)


def run_once(runtime, job: JobSpec):  # type: ignore[no-untyped-def]
    scheduler = Scheduler(runtime, owner="proc-a", jobs=[job])
    try:
        return scheduler.run_job(job, now=NOW)
    finally:
        scheduler.shutdown()


def test_a_failing_reconciliation_logs_one_line_with_the_reason_and_no_traceback(runtime, caplog):
    caplog.set_level(logging.INFO)
    error = Unavailable("fake answered 503 (Service Unavailable)\n<html>down for maintenance</html>", status=503)
    record = run_once(runtime, fail_with(error))
    assert record.status == "failed"

    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.name == LOGGER and line.levelno == logging.ERROR
    assert line.getMessage() == ("scheduled job fake.reconcile failed (tick 2026-11-02T10:00:00+00:00): "
                                 "Unavailable: fake answered 503 (Service Unavailable)")
    assert line.exc_info is None
    assert "Traceback" not in caplog.text and "maintenance" not in caplog.text


def test_a_programming_error_is_one_line_too_with_its_type(runtime, caplog):
    caplog.set_level(logging.INFO)
    run_once(runtime, fail_with(KeyError("project")))
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.getMessage().endswith("failed (tick 2026-11-02T10:00:00+00:00): KeyError: 'project'")
    assert "Traceback" not in caplog.text


def test_the_traceback_is_logged_at_debug_level_only(runtime, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    run_once(runtime, fail_with(RuntimeError("the fake tool is down")))
    [debug] = [r for r in caplog.records if r.levelno == logging.DEBUG and r.exc_info]
    assert "Traceback" in caplog.text and "the fake tool is down" in caplog.text
    assert debug.name == LOGGER


def test_the_run_keeps_the_whole_error_as_recorded_before(runtime):
    run_once(runtime, fail_with(Unavailable("fake answered 503\nsecond line", status=503)))
    with runtime.sessionmaker() as session:
        [run] = session.execute(select(JobRun)).scalars()
    assert (run.status, run.error) == ("failed", "jalon.connector.net.http.Unavailable: fake answered 503\nsecond line")
