"""GET /api/v1/jobs: every scheduled job (the connector's and the plugins'),
its last run, its error and its next tick, without reading the logs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from jalon.connector.app import create_app
from jalon.connector.jobs.scheduler import Scheduler, collect_jobs
from jalon.connector.net.http import Unavailable
from tests import fake_jobs
from tests.api.support import assert_problem

NOW = datetime(2026, 11, 2, 10, 7, 30, tzinfo=timezone.utc)  # fake.reconcile's tick: 10:00
QUARTER = fake_jobs.INTERVAL


@pytest.fixture
def reconciler() -> fake_jobs.Reconciler:
    return fake_jobs.Reconciler()


@pytest.fixture
def app(db_url, reconciler):  # type: ignore[no-untyped-def]
    app = create_app(db_url, TESTING=True, plugins=[reconciler], load_entrypoints=False)
    yield app
    app.extensions["jalon"].engine.dispose()


@pytest.fixture
def clock(monkeypatch):  # type: ignore[no-untyped-def]
    """The API's "now", for the next tick."""
    moments = [NOW]
    monkeypatch.setattr("jalon.connector.web.api.jobs.utcnow", lambda: moments[-1])
    return moments


@pytest.fixture
def run(app):  # type: ignore[no-untyped-def]
    """``run(at)``: the scheduler runs the plugin's job for the tick of ``at``."""
    runtime = app.extensions["jalon"]
    [spec] = [job for job in collect_jobs(runtime) if job.name == fake_jobs.NAME]
    scheduler = Scheduler(runtime, owner="proc-a", jobs=[spec])
    yield lambda at: scheduler.run_job(spec, now=at)
    scheduler.shutdown()


def by_name(response) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)
    return {job["name"]: job for job in response.json["items"]}


def floats_in(value) -> list[float]:  # type: ignore[no-untyped-def]
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return [found for item in value for found in floats_in(item)]
    return []


def test_every_job_is_listed_the_connectors_and_a_plugins_with_nulls_until_it_runs(client, clock):
    jobs = by_name(client.get("/api/v1/jobs"))
    assert {"retention", "documents.render", fake_jobs.NAME} <= set(jobs)
    assert jobs[fake_jobs.NAME] == {
        "name": fake_jobs.NAME,
        "description": "Compare the fake tool's tasks with jalon's",
        "interval": 900,
        "last_run": None,
        "last_success": None,
        "next_tick": "2026-11-02T10:15:00+00:00",
    }
    assert jobs["retention"]["interval"] == 3600
    assert jobs["retention"]["next_tick"] == "2026-11-02T11:00:00+00:00"


def test_a_failed_run_shows_the_first_line_of_its_error_and_the_last_success_stays(client, clock, run,
                                                                                   reconciler):
    run(NOW)
    reconciler.error = Unavailable("fake answered 503 (Service Unavailable)\n<html>maintenance</html>", status=503)
    run(NOW + QUARTER)
    clock.append(NOW + QUARTER + timedelta(minutes=1))

    response = client.get("/api/v1/jobs")
    job = by_name(response)[fake_jobs.NAME]
    assert job["last_run"]["status"] == "failed"
    assert job["last_run"]["tick"] == "2026-11-02T10:15:00+00:00"
    assert job["last_run"]["error"] == "jalon.connector.net.http.Unavailable: fake answered 503 (Service Unavailable)"
    assert job["last_run"]["finished_at"] is not None
    assert job["last_success"]["tick"] == "2026-11-02T10:00:00+00:00"
    assert job["last_success"]["status"] == "ok" and job["last_success"]["error"] is None
    assert job["next_tick"] == "2026-11-02T10:30:00+00:00"
    assert floats_in(response.json) == []


def test_a_job_shows_its_runs_latest_first_a_page_at_a_time(client, clock, run, reconciler):
    run(NOW)
    run(NOW + QUARTER)
    reconciler.error = RuntimeError("the fake tool is down\nsecond line")
    run(NOW + 2 * QUARTER)

    first = client.get(f"/api/v1/jobs/{fake_jobs.NAME}?page_size=2")
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.json["interval"] == 900 and first.json["last_run"]["status"] == "failed"
    runs = first.json["runs"]
    assert (runs["page"], runs["page_size"], runs["total"]) == (1, 2, 3)
    assert [r["tick"] for r in runs["items"]] == ["2026-11-02T10:30:00+00:00", "2026-11-02T10:15:00+00:00"]
    failed, ok = runs["items"]
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: the fake tool is down\nsecond line"
    assert ok["status"] == "ok" and ok["result"] == {"checked": 3} and ok["owner"] == "proc-a"

    second = client.get(f"/api/v1/jobs/{fake_jobs.NAME}?page=2&page_size=2").json["runs"]
    assert [r["tick"] for r in second["items"]] == ["2026-11-02T10:00:00+00:00"]


def test_a_result_with_a_fraction_is_written_as_a_string_not_a_float(client, run, reconciler):
    reconciler.result = {"matched_share": 0.75, "checked": 4}
    run(NOW)
    [item] = client.get(f"/api/v1/jobs/{fake_jobs.NAME}").json["runs"]["items"]
    assert item["result"] == {"matched_share": "0.75", "checked": 4}


def test_a_job_that_never_ran_has_no_runs(client):
    response = client.get("/api/v1/jobs/retention")
    assert response.status_code == 200
    assert response.json["last_run"] is None
    assert response.json["runs"] == {"items": [], "page": 1, "page_size": 50, "total": 0}


def test_an_unknown_job_is_a_404(client):
    assert_problem(client.get("/api/v1/jobs/no.such.job"), 404, "job_not_found")


@pytest.mark.parametrize("path", ["/api/v1/jobs", f"/api/v1/jobs/{fake_jobs.NAME}"])
def test_a_token_is_required(client, path):
    assert_problem(client.as_token(None).get(path), 401, "unauthorized")
    assert_problem(client.as_token("jal_not-a-real-token").get(path), 401, "invalid_token")


@pytest.mark.parametrize("path", ["/api/v1/jobs", f"/api/v1/jobs/{fake_jobs.NAME}"])
def test_finance_and_admin_read_the_jobs(client, finance, path):
    assert client.get(path).status_code == 200
    assert finance.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/jobs", f"/api/v1/jobs/{fake_jobs.NAME}"])
@pytest.mark.parametrize("query", ["page=0", "page_size=201", "page=x", "bogus=1"])
def test_bad_page_arguments_are_a_422(client, path, query):
    assert_problem(client.get(f"{path}?{query}"), 422, "validation_failed")


def test_the_jobs_are_documented_in_openapi(client):
    spec = client.as_token(None).get("/api/v1/openapi.json").json
    assert "404" in spec["paths"]["/api/v1/jobs/{name}"]["get"]["responses"]
    job = spec["components"]["schemas"]["JobOut"]["properties"]
    assert job["interval"]["type"] == "integer"
    assert set(job) == {"name", "description", "interval", "last_run", "last_success", "next_tick"}
