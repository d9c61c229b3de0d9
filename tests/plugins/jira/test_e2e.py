"""End to end with the real Jira plugin, installed through the entry point.

Done and reopened through a running ``jalon serve`` (issue events are fat:
no REST call). Worklogs both in-process (Flask test client, the worker, and
``responses`` for Jira's REST API) and through a running server whose worker
fetches the issue from a local stand-in of Jira's API."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import responses
from sqlalchemy import func, select

from jalon.connector.net import ssrf

from jalon.connector.relay import worker
from jalon.connector.app import create_app
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Invoice, OutboxMessage, TimeEntry
from tests import factories
from tests.reliability.conftest import RelayServer, add_record_channel, drained, wait_until

SECRET = factories.INTEGRATION["secret"]
KEY = factories.INTEGRATION["key"]
SITE = "https://jira.atelier.test"


def issue(status: str, category: str) -> dict[str, Any]:
    return {"id": "10001", "key": "WEB-1", "self": f"{SITE}/rest/api/2/issue/10001",
            "fields": {"summary": "Maquettes", "project": {"id": "10000", "key": "WEB"},
                       "issuetype": {"name": "Story"}, "labels": [], "fixVersions": [],
                       "status": {"name": status, "id": "1", "statusCategory": {"key": category}}}}


DONE = {"timestamp": 1793610000000, "webhookEvent": "jira:issue_updated", "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10ac8d"}, "issue": issue("Done", "done"),
        "changelog": {"id": "20001", "items": [
            {"field": "resolution", "fieldtype": "jira", "from": None, "fromString": None, "to": "10000",
             "toString": "Done"},
            {"field": "status", "fieldtype": "jira", "from": "3", "fromString": "In Progress", "to": "10002",
             "toString": "Done"}]}}
REOPENED = {**DONE, "timestamp": 1793613600000, "issue": issue("To Do", "new"),
            "changelog": {"id": "20002", "items": [
                {"field": "resolution", "fieldtype": "jira", "from": "10000", "fromString": "Done", "to": None,
                 "toString": None},
                {"field": "status", "fieldtype": "jira", "from": "10002", "fromString": "Done", "to": "10000",
                 "toString": "To Do"}]}}


def signed(payload: dict[str, Any], delivery_id: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json; charset=utf-8",
                  "X-Hub-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
                  "X-Atlassian-Webhook-Identifier": delivery_id}


@contextmanager
def relay_on(db_url: str, tmp_path, **seed: Any) -> Iterator[RelayServer]:  # type: ignore[no-untyped-def]
    """A running ``jalon serve`` on the seeded world (``seed`` overrides its sections)."""
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            factories.seed(session, **seed)
            add_record_channel(session)  # finance's channel: a file the test can read
    finally:
        engine.dispose()
    relay = RelayServer(db_url, tmp_path, threads=4)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture
def server(db_url, tmp_path) -> Iterator[RelayServer]:  # type: ignore[no-untyped-def]
    with relay_on(db_url, tmp_path) as relay:
        yield relay


def post(server: RelayServer, payload: dict[str, Any], delivery_id: str) -> requests.Response:
    body, headers = signed(payload, delivery_id)
    return requests.post(f"{server.url}/hooks/jira/{KEY}", data=body, headers=headers, timeout=10)


def state(engine) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        invoices = [status for (status,) in session.execute(select(Invoice.status).order_by(Invoice.id))]
        kinds = dict(session.execute(select(OutboxMessage.kind, func.count()).group_by(OutboxMessage.kind)).all())
    return {"invoices": invoices, "messages": kinds}


def test_a_done_transition_sent_three_times_drafts_one_invoice_and_tells_finance_once(server, engine) -> None:  # type: ignore[no-untyped-def]
    answers = [post(server, DONE, "wh-done-1").status_code for _ in range(3)]

    assert answers[0] == 202 and answers[1:] == [200, 200]
    wait_until(lambda: state(engine)["invoices"] == ["draft"] and drained(engine)(), timeout=30,
               what="the done transition processed")
    assert state(engine) == {"invoices": ["draft"], "messages": {"milestone.done": 1, "comment": 1}}
    handoffs = server.record_file.read_text().splitlines() if server.record_file.exists() else []
    assert len([line for line in handoffs if "milestone.done" in line]) == 1


def test_a_reopen_before_issue_cancels_the_draft(server, engine) -> None:  # type: ignore[no-untyped-def]
    assert post(server, DONE, "wh-done-1").status_code == 202
    wait_until(lambda: state(engine)["invoices"] == ["draft"], timeout=30, what="the draft")

    assert post(server, REOPENED, "wh-reopen-1").status_code == 202

    wait_until(lambda: state(engine)["invoices"] == ["cancelled"] and drained(engine)(), timeout=30,
               what="the reopen processed")
    assert state(engine)["messages"].get("invoice.draft_cancelled") == 1


# --- worklogs, in-process ----------------------------------------------------------------


def worklog(event: str, worklog_id: str, seconds: int, updated: str) -> dict[str, Any]:
    return {"timestamp": 1793606400000, "webhookEvent": event, "worklog": {
        "id": worklog_id, "issueId": "10002", "author": {"accountId": "5b10ac8d"},
        "created": "2026-11-02T09:00:00.000+0100", "updated": updated, "started": "2026-11-02T08:00:00.000+0100",
        "timeSpent": "ignored", "timeSpentSeconds": seconds}}


@pytest.fixture
def app(db_url, monkeypatch):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host == "jira.atelier.test":
            return ["93.184.215.14"]
        raise socket.gaierror(socket.EAI_NONAME, "not a test name")

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    app = create_app(db_url, TESTING=True)
    with unit_of_work(app.extensions["jalon"].sessionmaker) as session:
        factories.seed(session, integrations=[{**factories.INTEGRATION, "base_url": SITE, "credentials": {
            "email": "bot@atelier.example", "api_token": "tok"}}])
    yield app
    app.extensions["jalon"].engine.dispose()


@responses.activate
def test_worklogs_created_updated_and_deleted_leave_the_right_billable_seconds(app) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{SITE}/rest/api/3/issue/10002", json={
        "id": "10002", "key": "WEB-2", "fields": {"project": {"key": "WEB"}, "issuetype": {"name": "Story"},
                                                  "labels": [], "status": {"name": "In Progress"}}})
    runtime = app.extensions["jalon"]
    web = app.test_client()
    sent = [
        (worklog("worklog_created", "10500", 3600, "2026-11-02T09:00:00.000+0100"), "wh-1"),
        (worklog("worklog_updated", "10500", 5400, "2026-11-02T09:30:00.000+0100"), "wh-2"),
        (worklog("worklog_created", "10501", 1800, "2026-11-02T09:10:00.000+0100"), "wh-3"),
        (worklog("worklog_deleted", "10501", 1800, "2026-11-02T09:40:00.000+0100"), "wh-4"),
    ]
    for payload, delivery_id in sent:
        body, headers = signed(payload, delivery_id)
        assert web.post(f"/hooks/jira/{KEY}", data=body, headers=headers).status_code == 202
    while worker.process_once(runtime, owner="test"):
        pass

    with unit_of_work(runtime.sessionmaker) as session:
        entries = sorted(session.execute(select(TimeEntry.worklog_ref, TimeEntry.seconds, TimeEntry.deleted)).all())
        billable = session.scalar(select(func.sum(TimeEntry.seconds)).where(TimeEntry.deleted.is_(False)))
    assert [tuple(e) for e in entries] == [("10500", 5400, False), ("10501", 1800, True)]
    assert billable == 5400
    assert len(responses.calls) == 1  # the issue was fetched once, then cached


# --- worklogs through a running server, the issue fetched from a local Jira API -----------


@pytest.fixture
def server_and_jira(db_url, tmp_path) -> Iterator[RelayServer]:  # type: ignore[no-untyped-def]
    from jalon.connector.demo import jira_standin as demo_jira

    integration = {**factories.INTEGRATION, "settings": {"allow_private_network": True},  # Jira on loopback
                   "credentials": {"email": "bot@atelier.example", "api_token": "tok"}}
    data = {"integration": KEY, "project": "DATA", "contract": "LUM-2026-01"}
    with demo_jira.jira_api() as site, relay_on(db_url, tmp_path, integrations=[{**integration, "base_url": site}],
                                                mappings=[factories.MAPPING, data]) as relay:
        yield relay


def test_worklogs_through_a_running_server_leave_the_right_billable_seconds(server_and_jira, engine) -> None:  # type: ignore[no-untyped-def]
    from jalon.connector.demo import jira_standin as demo_jira

    on_data_7 = demo_jira.WORKLOG_ISSUE["id"]
    sent = [
        (worklog("worklog_created", "10500", 3600, "2026-11-02T09:00:00.000+0100"), "wl-1"),
        (worklog("worklog_updated", "10500", 5400, "2026-11-02T09:30:00.000+0100"), "wl-2"),
        (worklog("worklog_created", "10501", 1800, "2026-11-02T09:10:00.000+0100"), "wl-3"),
        (worklog("worklog_deleted", "10501", 1800, "2026-11-02T09:40:00.000+0100"), "wl-4"),
    ]
    for payload, delivery_id in sent:
        payload["worklog"]["issueId"] = on_data_7
        assert post(server_and_jira, payload, delivery_id).status_code == 202

    def entries():  # type: ignore[no-untyped-def]
        with make_sessionmaker(engine)() as session:
            return sorted(tuple(row) for row in session.execute(
                select(TimeEntry.worklog_ref, TimeEntry.task_ref, TimeEntry.seconds, TimeEntry.deleted)))

    wait_until(lambda: drained(engine)() and len(entries()) == 2, timeout=60, what="the four worklogs processed")
    assert entries() == [("10500", "DATA-7", 5400, False), ("10501", "DATA-7", 1800, True)]
