"""Reconciliation: with intake down, a completed issue and a logged worklog
are found by the connector's ``reconcile.jira`` job (the plugin only says what
changed) and billed exactly once, however often it runs and even when the
webhook arrives as well."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import responses
from sqlalchemy import func, select

from jalon.connector.net import ssrf

from jalon.connector.relay import worker
from jalon.connector.app import create_app
from jalon.connector.jobs.reconcile import reconcile_source
from jalon.connector.jobs.scheduler import collect_jobs
from jalon.core.db import unit_of_work
from jalon.core.models import Delivery, Integration, Invoice, OutboxMessage, SourceCursor, TimeEntry
from jalon.plugins.jira.reconcile import parse_time, status_changed_jql
from tests import factories

SITE = "https://jira.atelier.test"
SECRET = "s3cret"
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
DONE_AT = "2026-11-02T10:00:00.000+0100"
LOGGED_AT = "2026-11-02T09:00:00.000+0100"

ISSUE_DONE = {
    "id": "10001", "key": "WEB-1", "self": f"{SITE}/rest/api/3/issue/10001",
    "fields": {"summary": "Maquettes", "project": {"id": "10000", "key": "WEB"},
               "issuetype": {"name": "Story"}, "labels": [], "fixVersions": [],
               "status": {"name": "Done", "statusCategory": {"key": "done"}},
               "statuscategorychangedate": DONE_AT, "updated": DONE_AT},
}
ISSUE_WORKED = {
    "id": "10002", "key": "WEB-2", "self": f"{SITE}/rest/api/3/issue/10002",
    "fields": {"summary": "Checkout", "project": {"id": "10000", "key": "WEB"},
               "issuetype": {"name": "Story"}, "labels": [], "fixVersions": [],
               "status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}}},
}
WORKLOG = {"id": "10500", "issueId": "10002", "author": {"accountId": "5b10ac8d"},
           "created": LOGGED_AT, "updated": LOGGED_AT, "started": "2026-11-02T08:00:00.000+0100",
           "timeSpent": "1h 30m", "timeSpentSeconds": 5400, "comment": "Checkout tests"}


@pytest.fixture(autouse=True)
def public_jira(monkeypatch):  # type: ignore[no-untyped-def]
    """The SSRF guard sees the test site as public; nothing ever leaves (responses answers)."""
    def resolve(host: str, port: int) -> list[str]:
        if host == "jira.atelier.test":
            return ["93.184.215.14"]
        raise socket.gaierror(socket.EAI_NONAME, "not a test name")

    monkeypatch.setattr(ssrf, "resolve_host", resolve)


@pytest.fixture
def app(db_url):  # type: ignore[no-untyped-def]
    app = create_app(db_url, TESTING=True)
    with unit_of_work(app.extensions["jalon"].sessionmaker) as session:
        factories.seed(session, integrations=[{**factories.INTEGRATION, "base_url": SITE, "credentials": {
            "email": "bot@atelier.example", "api_token": "tok"}}])
    yield app
    app.extensions["jalon"].engine.dispose()


@pytest.fixture
def runtime(app):  # type: ignore[no-untyped-def]
    return app.extensions["jalon"]


def jira_has(*, issues: list[dict], worklogs: list[dict], deleted: list[dict] | None = None) -> None:
    """What "Jira" answers the job (and the worker's issue lookups)."""
    responses.get(f"{SITE}/rest/api/3/search/jql", json={"issues": issues, "isLast": True})
    responses.get(f"{SITE}/rest/api/3/worklog/updated", json={
        "values": [{"worklogId": int(w["id"]), "updatedTime": 1793606400000} for w in worklogs],
        "since": 0, "until": 1793606400000, "lastPage": True})
    responses.post(f"{SITE}/rest/api/3/worklog/list", json=worklogs)
    responses.get(f"{SITE}/rest/api/3/worklog/deleted", json={
        "values": deleted or [], "since": 0, "until": 1793606400000, "lastPage": True})
    responses.get(f"{SITE}/rest/api/3/issue/10002", json=ISSUE_WORKED)
    responses.get(f"{SITE}/rest/api/3/issue/10001", json=ISSUE_DONE)


def reconcile(runtime, *, last_success: datetime | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One run of the job as of ``NOW`` after a last success at ``last_success``
    (None: never), then the worker applies what it stored; the result, with the
    effects of the deliveries this run stored."""
    with unit_of_work(runtime.sessionmaker) as session:
        integration = session.execute(select(Integration).where(Integration.key == "jira-atelier")).scalar_one()
        cursor = session.get(SourceCursor, integration.id) or SourceCursor(integration_id=integration.id)
        cursor.last_success_at = last_success
        session.add(cursor)
        before = session.scalar(select(func.max(Delivery.id))) or 0
    runtime.http_cache.clear()
    result = reconcile_source(runtime, "jira", now=NOW)
    while worker.process_once(runtime, owner="test"):
        pass
    effects: dict[str, int] = {}
    with unit_of_work(runtime.sessionmaker) as session:
        for outcomes in session.execute(select(Delivery.outcomes).where(
                Delivery.id > before, Delivery.origin == "reconcile")).scalars():
            for outcome in outcomes:
                if outcome["effect"] != "ignored":
                    effects[outcome["effect"]] = effects.get(outcome["effect"], 0) + 1
    result["integrations"]["jira-atelier"]["effects"] = effects
    return result


def billed(runtime) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with unit_of_work(runtime.sessionmaker) as session:
        invoices = session.execute(select(Invoice.milestone_id, Invoice.status)).all()
        entries = session.execute(select(TimeEntry.worklog_ref, TimeEntry.seconds, TimeEntry.deleted)).all()
        messages = session.scalar(select(func.count()).select_from(OutboxMessage))
    return {"invoices": sorted(map(tuple, invoices)), "time": sorted(map(tuple, entries)), "outbox": messages}


def test_the_job_is_the_connectors_for_a_plugin_that_says_what_changed(runtime) -> None:  # type: ignore[no-untyped-def]
    [job] = [job for job in collect_jobs(runtime) if job.name == "reconcile.jira"]
    assert job.interval == timedelta(minutes=10)


@responses.activate
def test_with_intake_down_a_done_issue_and_a_worklog_are_billed_once(runtime) -> None:  # type: ignore[no-untyped-def]
    jira_has(issues=[ISSUE_DONE], worklogs=[WORKLOG])

    result = reconcile(runtime)

    assert result["integrations"]["jira-atelier"]["effects"] == {"milestone_done": 1, "time_logged": 1}
    after_first = billed(runtime)
    assert len(after_first["invoices"]) == 1 and after_first["invoices"][0][1] == "draft"
    assert after_first["time"] == [("10500", 5400, False)]
    assert after_first["outbox"] >= 1  # the write-back comment on WEB-1

    reconcile(runtime, last_success=NOW - timedelta(minutes=10))

    assert billed(runtime) == after_first


@responses.activate
def test_the_webhooks_that_did_arrive_and_the_job_bill_once(app, runtime) -> None:  # type: ignore[no-untyped-def]
    jira_has(issues=[ISSUE_DONE], worklogs=[WORKLOG])
    done = {"timestamp": 1793610000000, "webhookEvent": "jira:issue_updated", "issue_event_type_name": "issue_generic",
            "user": {"accountId": "5b10ac8d"}, "issue": ISSUE_DONE,
            "changelog": {"id": "20001", "items": [{"field": "status", "fieldtype": "jira", "from": "3",
                                                    "fromString": "In Progress", "to": "10002", "toString": "Done"}]}}
    logged = {"timestamp": 1793606400000, "webhookEvent": "worklog_created", "worklog": WORKLOG}
    web = app.test_client()
    for number, payload in enumerate((done, logged)):
        body = json.dumps(payload).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        answer = web.post("/hooks/jira/jira-atelier", data=body, content_type="application/json",
                          headers={"X-Hub-Signature": signature, "X-Atlassian-Webhook-Identifier": f"wh-{number}"})
        assert answer.status_code < 300, answer.data
    while worker.process_once(runtime, owner="test"):
        pass
    by_webhook = billed(runtime)
    assert len(by_webhook["invoices"]) == 1 and by_webhook["time"] == [("10500", 5400, False)]

    reconcile(runtime)
    reconcile(runtime, last_success=NOW)

    assert billed(runtime) == by_webhook


@responses.activate
def test_a_worklog_deleted_while_intake_was_down_leaves_no_billable_time(runtime) -> None:  # type: ignore[no-untyped-def]
    jira_has(issues=[], worklogs=[WORKLOG])
    reconcile(runtime)
    responses.reset()
    jira_has(issues=[], worklogs=[], deleted=[{"worklogId": 10500, "updatedTime": 1793613600000}])

    reconcile(runtime, last_success=NOW)

    assert billed(runtime)["time"] == [("10500", 5400, True)]


@responses.activate
def test_a_reopened_issue_found_by_the_job_cancels_the_draft(runtime) -> None:  # type: ignore[no-untyped-def]
    jira_has(issues=[ISSUE_DONE], worklogs=[])
    reconcile(runtime)
    responses.reset()
    reopened = {**ISSUE_DONE, "fields": {**ISSUE_DONE["fields"], "status": {
        "name": "To Do", "statusCategory": {"key": "new"}}, "statuscategorychangedate": "2026-11-02T11:00:00.000+0100"}}
    jira_has(issues=[reopened], worklogs=[])

    reconcile(runtime, last_success=NOW)

    assert [status for _, status in billed(runtime)["invoices"]] == ["cancelled"]


@responses.activate
def test_a_status_change_of_an_unknown_task_out_of_done_is_not_a_reopen(runtime) -> None:  # type: ignore[no-untyped-def]
    started = {**ISSUE_WORKED, "fields": {**ISSUE_WORKED["fields"], "statuscategorychangedate": DONE_AT}}
    jira_has(issues=[started], worklogs=[])

    result = reconcile(runtime)

    assert result["integrations"]["jira-atelier"]["effects"] == {}
    assert billed(runtime)["invoices"] == []


@pytest.mark.parametrize("answer", [{"status": 401}, {"status": 500}, {"body": "not json"}])
@responses.activate
def test_jira_failing_fails_the_run_so_the_next_one_looks_back_further(runtime, answer) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{SITE}/rest/api/3/search/jql", **answer)

    with pytest.raises(RuntimeError, match="jira-atelier"):
        reconcile(runtime)
    assert billed(runtime)["invoices"] == []


@responses.activate
def test_the_search_asks_for_the_mapped_projects_since_the_last_success_with_an_overlap(runtime) -> None:  # type: ignore[no-untyped-def]
    jira_has(issues=[], worklogs=[])

    reconcile(runtime, last_success=NOW - timedelta(minutes=10))

    search = responses.calls[0].request
    assert 'project in ("WEB") AND status changed AFTER -25m' in search.params["jql"]
    assert search.headers["Authorization"].startswith("Basic ")
    since = next(c.request for c in responses.calls if "/worklog/updated" in c.request.url).params["since"]
    assert int(since) == int((NOW - timedelta(minutes=25)).timestamp() * 1000)


def test_jql_quotes_project_keys_and_rounds_minutes_up() -> None:
    assert status_changed_jql(['A"B', "WEB"], timedelta(seconds=61)) == (
        'project in ("A\\"B", "WEB") AND status changed AFTER -2m ORDER BY updated ASC')


@pytest.mark.parametrize("value, expected", [
    ("2026-11-02T10:00:00.000+0100", datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc)),
    (1793610000000, datetime.fromtimestamp(1793610000, tz=timezone.utc)),
    ("yesterday", None), (None, None), (True, None),
])
def test_jira_times_are_read_with_their_offset(value, expected) -> None:  # type: ignore[no-untyped-def]
    assert parse_time(value) == expected
