"""Reconciliation: what ClickUp says changed in the mapped lists, folders and
spaces, as core events with stable ids, asked within the token's budget (100
requests a minute, on a fake clock that sleeping moves), and stored once by
the connector's job however often it runs."""

from __future__ import annotations

import bisect
import json
import re
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from jalon.connector.jobs.reconcile import reconcile_source
from jalon.connector.net import ssrf
from jalon.connector.net.http import (
    RATE_BUDGETS,
    LookupCache,
    RateBudgets,
    RestClient,
    Unauthorized,
    Unavailable,
)
from jalon.connector.plugin.types import IntegrationView, PermanentFailure
from jalon.connector.runtime import build_runtime
from jalon.core.db import unit_of_work
from jalon.core.events import TaskCompleted, TimeLogged
from jalon.plugins import clickup as clickup_plugin
from jalon.plugins.clickup.client import API
from jalon.plugins.clickup.reconcile import TIME_LOOKBACK, changes
from sqlalchemy import func, select

from tests import factories

TEAM = "9012345678"
TOKEN = "pk_81942_RECONCILETESTTOKEN"
KEY = "clickup-lumen"
NOW = datetime(2026, 11, 2, 10, 15, tzinfo=UTC)
SINCE = NOW - timedelta(minutes=25)
CLOSED_AT = 1_793_610_000_000  # 2026-11-02T09:00:00Z, in ClickUp's milliseconds
UPDATED_AT = 1_793_613_600_000  # 2026-11-02T10:00:00Z
MEMBERS = {"teams": [{"id": TEAM, "members": [{"user": {"id": 81942}}, {"user": {"id": 57310}}]}]}


class Clock:
    """A fake clock: sleeping moves it, nothing really sleeps."""

    def __init__(self) -> None:
        self.now = NOW.timestamp()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def view(**settings: Any) -> IntegrationView:
    return IntegrationView(key=KEY, source="clickup", name="ClickUp", base_url=API,
                           settings={"team_id": TEAM, **settings}, credentials={"api_token": TOKEN})


def http(clock: Clock) -> RestClient:
    return RestClient(API, timeout=2.0, max_retries=2, allow_private_network=True, sleep=clock.sleep, clock=clock,
                      budgets=RateBudgets(clock=clock), cache=LookupCache(timer=clock))


def task(task_id: str, *, status: str = "terminé", kind: str = "closed", list_id: str = "901",
         closed: int | None = CLOSED_AT, updated: int = UPDATED_AT, **more: Any) -> dict[str, Any]:
    """A task as ``GET /list/{id}/task`` lists it."""
    return {"id": task_id, "name": f"Tâche {task_id}", "custom_item_id": 0,
            "status": {"status": status, "type": kind, "color": "#6bc950"},
            "date_created": str(CLOSED_AT - 86_400_000), "date_updated": str(updated),
            "date_closed": None if closed is None else str(closed), "date_done": None if closed is None else str(closed),
            "tags": [], "list": {"id": list_id}, "folder": {"id": "90120000002", "hidden": False},
            "space": {"id": "90120000003"}, "url": f"https://app.clickup.com/t/{task_id}", **more}


def entry(entry_id: str, *, duration: str = "2700000", list_id: str = "901", task_id: str | None = "t-open",
          at: str = "1793611800000") -> dict[str, Any]:
    """A time entry as ``GET /team/{team_id}/time_entries`` lists it."""
    return {"id": entry_id, "task": {"id": task_id, "name": "Maquettes"} if task_id else None, "wid": TEAM,
            "user": {"id": 57310, "username": "Lucas Bernard", "email": "lucas@atelier-lumen.fr"},
            "billable": True, "start": "1793602800000", "end": "1793605500000", "duration": duration,
            "description": "Maquettes v2", "tags": [], "source": "clickup", "at": at,
            "task_location": {"list_id": list_id, "folder_id": "90120000002", "space_id": "90120000003"}}


def clickup_has(*, lists: dict[str, list[dict[str, Any]]], entries: list[dict[str, Any]] | None = None) -> None:
    """What "ClickUp" answers: the tasks of each list, the Workspace's members, the time entries."""
    for list_id, tasks in lists.items():
        responses.get(f"{API}/list/{list_id}/task", json={"tasks": tasks, "last_page": True})
    responses.get(f"{API}/team", json=MEMBERS)
    responses.get(f"{API}/team/{TEAM}/time_entries", json={"data": entries or []})


def asked(path: str) -> list[dict[str, str]]:
    return [call.request.params for call in responses.calls if call.request.url.split("?")[0] == f"{API}{path}"]


# --- tasks ----------------------------------------------------------------------------------------------


@responses.activate
def test_a_list_mapping_reports_its_completed_tasks_and_nothing_for_the_open_ones(clock) -> None:  # type: ignore[no-untyped-def]
    clickup_has(lists={"901": [
        task("t-closed"),
        task("t-open", status="en cours", kind="custom", closed=None),
        task("t-livre", status="Livré", kind="custom", closed=None),  # named done by the settings
    ]})

    events = changes(view(done_statuses=["livré"]), ["list:901"], SINCE, NOW, http(clock))

    completed = [e for e in events if isinstance(e, TaskCompleted)]
    assert [(e.task_ref, e.occurred_at, e.event_id) for e in completed] == [
        ("t-closed", datetime(2026, 11, 2, 9, 0, tzinfo=UTC), f"reconcile:t-closed:{CLOSED_AT}"),
        ("t-livre", datetime(2026, 11, 2, 10, 0, tzinfo=UTC), f"reconcile:t-livre:{UPDATED_AT}"),
    ]
    closed = completed[0]
    assert (closed.integration, closed.project_ref, closed.project_parents, closed.status) == (
        KEY, "list:901", ("folder:90120000002", "space:90120000003"), "terminé")
    assert asked("/list/901/task") == [{"date_updated_gt": str(int(SINCE.timestamp() * 1000)),
                                        "include_closed": "true", "subtasks": "true", "archived": "false",
                                        "page": "0"}]


@responses.activate
def test_a_folder_mapping_stands_for_its_lists(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/folder/77/list", json={"lists": [{"id": "901"}, {"id": "902"}]})
    clickup_has(lists={"901": [task("t-1")], "902": [task("t-2", list_id="902")]})

    events = changes(view(), ["folder:77"], SINCE, NOW, http(clock))

    assert sorted(e.task_ref for e in events) == ["t-1", "t-2"]
    assert asked("/team/9012345678/time_entries")[0]["folder_id"] == "77"


@responses.activate
def test_a_space_mapping_stands_for_the_lists_of_its_folders_and_its_folderless_ones_each_asked_once(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/space/9/folder", json={"folders": [
        {"id": "77", "lists": [{"id": "901"}, {"id": "902"}]},
        {"id": "78"}]})  # an answer without its lists: asked for them
    responses.get(f"{API}/folder/78/list", json={"lists": [{"id": "903"}]})
    responses.get(f"{API}/space/9/list", json={"lists": [{"id": "904"}]})
    clickup_has(lists={"901": [task("t-1")], "902": [], "903": [task("t-3", list_id="903")],
                       "904": [task("t-4", list_id="904")]})

    events = changes(view(), ["space:9", "list:901"], SINCE, NOW, http(clock))

    assert sorted(e.task_ref for e in events) == ["t-1", "t-3", "t-4"]
    assert len(asked("/list/901/task")) == 1  # in the space and mapped on its own: asked once


@responses.activate
def test_a_task_ids_dedupe_the_same_state_and_a_new_closing_is_a_new_one(clock) -> None:  # type: ignore[no-untyped-def]
    clickup_has(lists={"901": [task("t-1")]})
    first = changes(view(), ["list:901"], SINCE, NOW, http(clock))
    again = changes(view(), ["list:901"], SINCE, NOW, http(clock))
    responses.replace(responses.GET, f"{API}/list/901/task",
                      json={"tasks": [task("t-1", closed=CLOSED_AT + 60_000)], "last_page": True})
    reclosed = changes(view(), ["list:901"], SINCE, NOW, http(clock))

    assert [e.event_id for e in first] == [e.event_id for e in again] == [f"reconcile:t-1:{CLOSED_AT}"]
    assert [e.event_id for e in reclosed] == [f"reconcile:t-1:{CLOSED_AT + 60_000}"]


@responses.activate
def test_a_task_that_cannot_be_placed_is_left_out(clock) -> None:  # type: ignore[no-untyped-def]
    clickup_has(lists={"901": [task("t-1"), {**task("t-2"), "list": None}, {"id": "t-3"}]})

    assert [e.task_ref for e in changes(view(), ["list:901"], SINCE, NOW, http(clock))] == ["t-1"]


# --- time ------------------------------------------------------------------------------------------------


@responses.activate
def test_everyones_time_entries_of_the_mapped_location_are_reported_keyed_by_entry(clock) -> None:  # type: ignore[no-untyped-def]
    clickup_has(lists={"901": []}, entries=[
        entry("4215567000000009001"),
        entry("4215567000000009002", duration="-1793605500000"),  # a timer still running
        entry("4215567000000009003", task_id=None, list_id=None),  # time on no task
    ])

    events = changes(view(), ["list:901"], SINCE, NOW, http(clock))

    [logged] = events
    assert isinstance(logged, TimeLogged)
    assert (logged.worklog_ref, logged.seconds, logged.task_ref, logged.project_ref, logged.person_ref) == (
        "4215567000000009001", 2700, "t-open", "list:901", "lucas@atelier-lumen.fr")
    assert logged.event_id == "reconcile:time:4215567000000009001:1793611800000:1793602800000:2700000"
    [params] = asked(f"/team/{TEAM}/time_entries")
    assert params == {"start_date": str(int((NOW - TIME_LOOKBACK).timestamp() * 1000)),
                      "end_date": str(int(NOW.timestamp() * 1000)), "include_location_names": "true",
                      "list_id": "901", "assignee": "81942,57310"}


@responses.activate
def test_a_changed_duration_is_a_new_event_for_the_same_entry_and_the_same_one_is_not(clock) -> None:  # type: ignore[no-untyped-def]
    clickup_has(lists={"901": []}, entries=[entry("42")])
    first = changes(view(), ["list:901"], SINCE, NOW, http(clock))
    again = changes(view(), ["list:901"], SINCE, NOW, http(clock))
    responses.replace(responses.GET, f"{API}/team/{TEAM}/time_entries",
                      json={"data": [entry("42", duration="3600000", at="1793612000000")]})
    edited = changes(view(), ["list:901"], SINCE, NOW, http(clock))

    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert [(e.worklog_ref, e.seconds) for e in edited] == [("42", 3600)]
    assert edited[0].event_id != first[0].event_id


@responses.activate
def test_a_token_that_may_not_read_everyones_time_says_what_is_needed(clock) -> None:  # type: ignore[no-untyped-def]
    clickup_has(lists={"901": []})
    responses.replace(responses.GET, f"{API}/team/{TEAM}/time_entries",
                      json={"err": "Team not authorized", "ECODE": "OAUTH_027"}, status=401)

    with pytest.raises(Unauthorized, match="token of a Workspace owner or admin"):
        changes(view(), ["list:901"], SINCE, NOW, http(clock))


# --- the budget, the failures ------------------------------------------------------------------------


@responses.activate
def test_a_reconciliation_over_many_lists_never_asks_more_than_100_a_minute(clock) -> None:  # type: ignore[no-untyped-def]
    sent: list[float] = []

    def answer(body: dict[str, Any]):  # type: ignore[no-untyped-def]
        def callback(request):  # type: ignore[no-untyped-def]
            sent.append(clock.now)
            return 200, {"X-RateLimit-Limit": "100"}, json.dumps(body)
        return callback

    responses.add_callback(responses.GET, re.compile(rf"{re.escape(API)}/list/\d+/task"),
                           callback=answer({"tasks": [task("t")], "last_page": True}))
    responses.add_callback(responses.GET, f"{API}/team", callback=answer(MEMBERS))
    responses.add_callback(responses.GET, f"{API}/team/{TEAM}/time_entries", callback=answer({"data": []}))
    projects = [f"list:{1000 + n}" for n in range(120)]

    events = changes(view(), projects, SINCE, NOW, http(clock))

    assert len(sent) == 120 + 1 + 120  # each list's tasks, the members, each list's time
    assert max(bisect.bisect_left(sent, t + 60.0) - i for i, t in enumerate(sent)) <= 100
    assert clock.now - NOW.timestamp() < 3 * 60  # spread, not stalled
    assert len(events) == 1  # one task in every list: one state, one event


@responses.activate
def test_clickup_failing_fails_the_run(clock) -> None:  # type: ignore[no-untyped-def]
    responses.get(f"{API}/list/901/task", status=500)

    with pytest.raises(Unavailable):
        changes(view(), ["list:901"], SINCE, NOW, http(clock))


@pytest.mark.parametrize("projects, settings, says", [
    (["WEB"], {}, "'WEB' is not a ClickUp location"),
    (["list:901"], {"team_id": None}, "settings.team_id"),
])
def test_a_mapping_or_settings_clickup_cannot_be_asked_with_fail_before_any_call(clock, projects, settings,  # type: ignore[no-untyped-def]
                                                                                   says) -> None:
    with responses.RequestsMock() as mock, pytest.raises(PermanentFailure, match=says):
        changes(view(**settings), projects, SINCE, NOW, http(clock))
    assert len(mock.calls) == 0


# --- through the connector's job: found twice, stored once ------------------------------------------


@pytest.fixture
def runtime(db_url, monkeypatch):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host == "api.clickup.com":
            return ["93.184.215.14"]
        raise socket.gaierror(socket.EAI_NONAME, "not a test name")

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    RATE_BUDGETS.clear()
    runtime = build_runtime(db_url, plugins=[clickup_plugin], load_entrypoints=False)
    with unit_of_work(runtime.sessionmaker) as session:
        factories.seed(session, integrations=[
            {"key": KEY, "source": "clickup", "name": "ClickUp", "secret": "s3cret", "base_url": API,
             "settings": {"team_id": TEAM}, "credentials": {"api_token": TOKEN}}],
            mappings=[{"integration": KEY, "project": "list:901", "contract": "LUM-2026-01"}])
    yield runtime
    runtime.dispose()
    RATE_BUDGETS.clear()


@responses.activate
def test_the_job_stores_what_it_finds_once_however_often_it_runs(runtime) -> None:  # type: ignore[no-untyped-def]
    from jalon.core.models import Delivery

    clickup_has(lists={"901": [task("t-1"), task("t-2", status="en cours", kind="custom", closed=None)]},
                entries=[entry("42")])

    first = reconcile_source(runtime, "clickup", now=NOW)
    again = reconcile_source(runtime, "clickup", now=NOW + timedelta(minutes=10))

    assert first["integrations"][KEY] | {"since": None} == {"since": None, "found": 2, "stored": 2,
                                                            "already_known": 0}
    assert (again["integrations"][KEY]["found"], again["integrations"][KEY]["stored"]) == (2, 0)
    with unit_of_work(runtime.sessionmaker) as session:
        keys = sorted(session.execute(select(Delivery.idempotency_key)).scalars())
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2
    assert keys == ["reconcile:reconcile:t-1:1793610000000",
                    "reconcile:reconcile:time:42:1793611800000:1793602800000:2700000"]
