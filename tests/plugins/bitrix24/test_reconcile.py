"""Reconciliation: the task states changed in the mapped groups, with the
webhook path's own event ids, and the elapsed time Bitrix24 sends no event
for, polled for every task of those groups, each task's list given whole so
that an item deleted in Bitrix24 is deleted in jalon. A failure anywhere
raises: nothing is reported half-read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from jalon.connector.net.http import RateBudgets, RateLimited, RestClient
from jalon.connector.plugin.types import IntegrationView, PermanentFailure
from jalon.core.events import TaskCompleted, TaskReopened, TaskTimeLogs, TimeLogged
from jalon.plugins.bitrix24 import reconcile

WEBHOOK = "https://atelier.bitrix24.eu/rest/1/r3c0nc1leC0de/"
SINCE = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
BITRIX = IntegrationView(key="b24-atelier", source="bitrix24", name="Bitrix24", base_url="https://atelier.bitrix24.eu",
                         settings={"domain": "atelier.bitrix24.eu"}, credentials={"webhook_url": WEBHOOK})


class Clock:
    def __init__(self) -> None:
        self.now = NOW.timestamp()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def http(clock: Clock | None = None, *, max_retries: int = 0) -> RestClient:
    clock = clock or Clock()
    return RestClient(None, timeout=2.0, max_retries=max_retries, allow_private_network=True, sleep=clock.sleep,
                      clock=clock, budgets=RateBudgets(clock=clock))


def task(task_id: str, status: str, group: str = "12", spent: str = "0", **changes: Any) -> dict[str, Any]:
    return {"id": task_id, "title": f"Tâche {task_id}", "status": status, "groupId": group,
            "changedDate": "2026-11-02T10:20:00+01:00", "statusChangedDate": "2026-11-02T10:15:00+01:00",
            "closedDate": "2026-11-02T10:15:00+01:00" if status == "5" else None, "timeSpentInLogs": spent,
            **changes}


def item(item_id: str, task_id: str, seconds: str) -> dict[str, Any]:
    return {"ID": item_id, "TASK_ID": task_id, "USER_ID": "7", "SECONDS": seconds, "COMMENT_TEXT": "recette",
            "CREATED_DATE": "2026-11-02T09:00:00+01:00", "DATE_START": "2026-11-02T08:00:00+01:00",
            "DATE_STOP": "2026-11-02T09:00:00+01:00"}


def serve(changed: dict[str, list[dict[str, Any]]], every: dict[str, list[dict[str, Any]]],
          items: dict[str, list[dict[str, Any]]], *, busy: int = 0) -> None:
    """Bitrix24 answering the task lists (changed ones when the filter has a date) and elapsed-item batches,
    the first ``busy`` of those with its bucket full (``QUERY_LIMIT_EXCEEDED``)."""
    refusals = [busy]
    def tasks(request: Any) -> tuple[int, dict[str, str], str]:
        query = json.loads(request.body)
        group = query["filter"]["GROUP_ID"]
        listed = (changed if ">=CHANGED_DATE" in query["filter"] else every).get(group, [])
        return 200, {}, json.dumps({"result": {"tasks": listed}, "total": len(listed)})

    def batch(request: Any) -> tuple[int, dict[str, str], str]:
        if refusals[0] > 0:
            refusals[0] -= 1
            return 503, {}, json.dumps({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})
        result = {}
        for key, subquery in json.loads(request.body)["cmd"].items():
            method, query = subquery.split("?", 1)
            if method == "user.get":  # the people who logged time: their e-mails
                user_id = parse_qs(query)["ID"][0]
                result[key] = [{"ID": user_id, "EMAIL": f"user{user_id}@atelier.example"}] if user_id == "7" else []
                continue
            task_id = parse_qs(query)["TASKID"][0]
            result[key] = items.get(task_id, [])
        return 200, {}, json.dumps({"result": {"result": result, "result_error": []}})

    responses.add_callback(responses.POST, f"{WEBHOOK}tasks.task.list.json", callback=tasks)
    responses.add_callback(responses.POST, f"{WEBHOOK}batch.json", callback=batch)


@responses.activate
def test_changed_tasks_are_reported_with_the_webhook_paths_event_ids() -> None:
    serve(changed={"12": [task("4711", "5"), task("4712", "3")]}, every={}, items={})

    events = reconcile.changes(BITRIX, ["group:12"], SINCE, NOW, http())

    done = next(e for e in events if isinstance(e, TaskCompleted))
    assert done.task_ref == "4711" and done.project_ref == "group:12"
    assert done.event_id == "bitrix24:task:4711:done:2026-11-02T10:15:00+01:00"
    assert done.occurred_at == datetime(2026, 11, 2, 9, 15, tzinfo=UTC)
    reopened = next(e for e in events if isinstance(e, TaskReopened))
    assert reopened.task_ref == "4712"
    first = json.loads(responses.calls[0].request.body)
    assert first["filter"] == {"GROUP_ID": "12", ">=CHANGED_DATE": "2026-11-02T08:00:00+00:00"}


@responses.activate
def test_every_task_of_the_group_gets_its_time_and_the_list_of_it() -> None:
    serve(changed={}, every={"12": [task("4711", "5", spent="5400"), task("4712", "3", spent="0")]},
          items={"4711": [item("901", "4711", "3600"), item("902", "4711", "1800")]})

    events = reconcile.changes(BITRIX, ["group:12"], SINCE, NOW, http())

    logged = [e for e in events if isinstance(e, TimeLogged)]
    # booked to the person as the contracts name people: the e-mail user.get gives
    assert [(e.worklog_ref, e.seconds, e.person_ref) for e in logged] == [
        ("901", 3600, "user7@atelier.example"), ("902", 1800, "user7@atelier.example")]
    lists = {e.task_ref: e.worklog_refs for e in events if isinstance(e, TaskTimeLogs)}
    assert lists == {"4711": ("901", "902"), "4712": ()}  # a task with none says so: its old items are deleted
    asked = [json.loads(call.request.body)["cmd"] for call in responses.calls if call.request.url.endswith("batch.json")]
    assert [sorted(cmd) for cmd in asked] == [["t4711"], ["u7"]]  # a task with no time logged needs no item read


@responses.activate
def test_an_open_task_edited_but_not_reopened_in_the_window_reports_nothing() -> None:
    edited = task("4713", "3", statusChangedDate="2026-10-20T10:00:00+01:00")  # its status is older than SINCE
    serve(changed={"12": [edited, task("4712", "3")]}, every={}, items={})

    events = reconcile.changes(BITRIX, ["group:12"], SINCE, NOW, http())

    assert [(type(e).__name__, e.task_ref) for e in events] == [("TaskReopened", "4712")]


@responses.activate
def test_many_tasks_have_their_items_read_fifty_a_batch() -> None:
    tasks = [task(str(5000 + n), "3", spent="60") for n in range(120)]
    serve(changed={}, every={"12": tasks}, items={t["id"]: [item(f"9{t['id']}", t["id"], "60")] for t in tasks})

    events = reconcile.changes(BITRIX, ["group:12"], SINCE, NOW, http())

    batches = [json.loads(c.request.body)["cmd"] for c in responses.calls if c.request.url.endswith("batch.json")]
    assert [len(cmd) for cmd in batches] == [50, 50, 20, 1]  # then one user.get: the person of them all
    assert sum(isinstance(e, TaskTimeLogs) for e in events) == 120


@responses.activate
def test_each_mapped_group_is_asked() -> None:
    serve(changed={"12": [task("4711", "5")], "14": [task("4811", "5", group="14")]}, every={}, items={})

    events = reconcile.changes(BITRIX, ["group:12", "group:14", "group:12"], SINCE, NOW, http())

    assert sorted(e.task_ref for e in events if isinstance(e, TaskCompleted)) == ["4711", "4811"]


@responses.activate
def test_a_limit_hit_mid_poll_raises_so_the_cursor_stays() -> None:
    serve(changed={}, every={"12": [task("4711", "5", spent="60")]}, items={}, busy=10)

    with pytest.raises(RateLimited):
        reconcile.changes(BITRIX, ["group:12"], SINCE, NOW, http())


@responses.activate
def test_a_limit_hit_once_is_waited_out_and_the_poll_completes() -> None:
    clock = Clock()
    serve(changed={}, every={"12": [task("4711", "5", spent="60")]}, items={"4711": [item("901", "4711", "60")]},
          busy=1)

    events = reconcile.changes(BITRIX, ["group:12"], SINCE, NOW, http(clock, max_retries=2))

    assert [e.worklog_refs for e in events if isinstance(e, TaskTimeLogs)] == [("901",)]
    assert clock.slept[0] == pytest.approx(1.0)  # the bucket's refusal waited out (then the pace of the bucket)


@responses.activate
def test_a_task_whose_items_cannot_be_read_is_left_out_whole() -> None:
    serve(changed={}, every={"12": [task("4711", "5", spent="60"), task("4712", "3", spent="0")]},
          items={"4711": [item("901", "4711", "1.5")]})

    events = reconcile.changes(BITRIX, ["group:12"], SINCE, NOW, http())

    assert {e.task_ref for e in events if isinstance(e, (TimeLogged, TaskTimeLogs))} == {"4712"}


def test_a_project_that_is_not_a_group_is_refused() -> None:
    with pytest.raises(PermanentFailure, match="group:<id>"):
        reconcile.changes(BITRIX, ["list:12"], SINCE, NOW, http())
