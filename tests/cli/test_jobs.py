"""jalon jobs list: every scheduled job as a table, the plugins' included."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from jalon.connector.cli import main
from jalon.connector.jobs.scheduler import Scheduler
from jalon.connector.net.http import Unavailable
from jalon.connector.runtime import build_runtime
from jalon.connector.settings import Settings
from tests import fake_jobs

NOW = datetime(2026, 11, 2, 10, 7, 30, tzinfo=timezone.utc)
EXTRA = {"JALON_EXTRA_PLUGINS": "tests.fake_jobs:plugin"}


def jalon(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", db_url, *args], env=EXTRA)


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr("jalon.core.types.utcnow", lambda: NOW + timedelta(minutes=20))


def run_reconciler(db_url: str, *errors: Exception | None) -> None:
    """Runs of fake.reconcile, one a quarter from NOW's tick, each failing with its error (None: ok)."""
    reconciler = fake_jobs.Reconciler()
    runtime = build_runtime(db_url, settings=Settings(), plugins=[reconciler], load_entrypoints=False)
    [spec] = reconciler.jalon_scheduler_jobs()
    scheduler = Scheduler(runtime, owner="proc-a", jobs=[spec])
    try:
        for n, error in enumerate(errors):
            reconciler.error = error
            scheduler.run_job(spec, now=NOW + n * fake_jobs.INTERVAL)
    finally:
        scheduler.shutdown()
        runtime.dispose()


def test_list_prints_a_table_of_every_job_with_its_last_run_next_tick_and_error(db_url, clock):
    run_reconciler(db_url, None, Unavailable("fake answered 503\n<html>", status=503))
    result = jalon(db_url, "jobs", "list")
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split() == ["JOB", "EVERY", "LAST", "RUN", "AT", "NEXT", "TICK", "ERROR"]
    rows = {line.split()[0]: line for line in lines}
    assert {"retention", "documents.render", fake_jobs.NAME} <= set(rows)
    reconcile = rows[fake_jobs.NAME].split(maxsplit=7)
    assert reconcile[:7] == [fake_jobs.NAME, "15m", "failed", "2026-11-02", "10:22:30Z", "2026-11-02", "10:30:00Z"]
    assert reconcile[7] == "jalon.connector.net.http.Unavailable: fake answered 503"
    assert rows["retention"].split() == ["retention", "1h", "never", "-", "2026-11-02", "11:00:00Z"]
    # the columns line up under the header
    assert rows[fake_jobs.NAME].index("15m") == header.index("EVERY")
    assert rows[fake_jobs.NAME].index("jalon.connector") == header.index("ERROR")


def test_list_of_jobs_that_never_ran(db_url):
    result = jalon(db_url, "jobs", "list")
    assert result.exit_code == 0, result.output
    assert all(" never " in line for line in result.output.splitlines()[1:])


def test_bad_usage_exits_2(db_url):
    assert jalon(db_url, "jobs", "list", "--bogus").exit_code == 2
    assert jalon(db_url, "jobs", "nonsense").exit_code == 2
