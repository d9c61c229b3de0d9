"""Each Bitrix24 delivery, from the project's own fixtures, becomes the right
core events from the task's state as ``tasks.task.get`` gives it (answered by
``responses``); everything else is ignored visibly; unreadable bodies are dead
letters; and the helpers reconcile.py builds its events with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest
from jalon.connector.plugin import RateLimited, RemoteError, Unauthorized
from jalon.connector.plugin.types import Translation, Unreadable
from jalon.core.events import (
    TaskCompleted,
    TaskDeleted,
    TaskReopened,
    TaskTimeLogs,
    TimeLogged,
)
from jalon.plugins.bitrix24 import translate as bitrix24

from .support import (
    DOMAIN,
    GROUP,
    KEY,
    NOW,
    TASK,
    asked_task,
    delivery,
    fixture_bytes,
    integration,
    method_url,
    rest_client,
    rest_fixture,
    serve_task,
)

MSK = timezone(timedelta(hours=3))
TASK_URL = f"https://{DOMAIN}/company/personal/user/0/tasks/task/view/{TASK}/"


def run(name: str, **view: object) -> Translation:
    return bitrix24.translate(integration(**view), delivery(fixture_bytes(name)), rest_client())


def run_body(body: bytes, **view: object) -> Translation:
    return bitrix24.translate(integration(**view), delivery(body), rest_client())


def task(name: str = "task__completed", **changes: object) -> dict:
    return rest_fixture(name)["result"]["task"] | changes


# --- completed (status 5) ------------------------------------------------------------------------------


def test_an_update_of_a_completed_task_completes_it_with_what_the_core_matches_milestones_on(api):
    serve_task("task__completed")
    translation = run("ONTASKUPDATE__outgoing_webhook")
    (event,) = translation.events
    assert isinstance(event, TaskCompleted)
    assert (event.integration, event.task_ref, event.status) == (KEY, TASK, "5")
    assert (event.project_ref, event.project_parents) == (GROUP, ())
    assert event.occurred_at == datetime(2026, 11, 6, 12, 14, 58, tzinfo=MSK)  # closedDate, with its offset
    assert event.event_id == f"bitrix24:task:{TASK}:done:2026-11-06T12:14:58+03:00"
    assert event.labels == ("lot-1", "jalon") and event.task_type == "task"
    assert event.task_title == "Recette du lot 1"
    assert event.task_url == TASK_URL
    assert event.actor == "7"  # closedBy
    assert translation.event_name == "ONTASKUPDATE" and translation.ignored is None
    (call,) = api.calls
    assert call.request.url == method_url("tasks.task.get") and asked_task(call) == TASK


def test_the_many_updates_bitrix24_sends_for_one_completion_give_one_and_the_same_event(api):
    """Bitrix24 sends an ONTASKUPDATE for each edit: every one that finds the
    task completed gives the same event (same id, same date), applied once."""
    serve_task("task__completed")
    first = run("ONTASKUPDATE__outgoing_webhook").events
    second = run("ONTASKUPDATE__app").events  # another delivery, another ts, the same completion
    third = run_body(fixture_bytes("ONTASKUPDATE__outgoing_webhook").replace(b"ts=1793952900", b"ts=1793953999"))
    assert first == second == third.events


def test_the_json_rendition_of_a_delivery_is_translated_the_same(api):
    serve_task("task__completed")
    assert run("ONTASKUPDATE__json").events == run("ONTASKUPDATE__outgoing_webhook").events


def test_a_task_tagged_as_a_milestone_has_the_milestone_type(api):
    serve_task("task__completed")
    (event,) = run("ONTASKUPDATE__outgoing_webhook", settings={"milestone_tags": ["JALON"]}).events
    assert event.task_type == "milestone"


def test_the_task_link_names_the_portal_of_the_settings_else_of_the_integration(api):
    serve_task("task__completed")
    other = "lumen.bitrix24.eu"
    (event,) = run("ONTASKUPDATE__outgoing_webhook", settings={"domain": other}).events
    assert event.task_url == f"https://{other}/company/personal/user/0/tasks/task/view/{TASK}/"
    (event,) = run("ONTASKUPDATE__outgoing_webhook", base_url=None).events  # from the inbound webhook's host
    assert event.task_url == TASK_URL


def test_a_task_outside_any_group_is_group_0(api):
    serve_task("task__completed", groupId="0", group=[])
    (event,) = run("ONTASKUPDATE__outgoing_webhook").events
    assert event.project_ref == "group:0"


# --- awaiting control (status 4) ----------------------------------------------------------------------------


def test_a_task_awaiting_control_is_not_done_by_default(api):
    serve_task("task__awaiting_control")
    (event,) = run("ONTASKUPDATE__outgoing_webhook").events
    assert isinstance(event, TaskReopened) and event.status == "4"


@pytest.mark.parametrize("view", [{"settings": {"awaiting_control_is_done": True}},
                                  {"mapped_done_statuses": ("4", "5")}], ids=["setting", "a-mapping-names-4"])
def test_a_task_awaiting_control_is_done_when_the_settings_or_a_mapping_say_so(api, view):
    serve_task("task__awaiting_control")
    (event,) = run("ONTASKUPDATE__outgoing_webhook", **view).events
    assert isinstance(event, TaskCompleted) and event.status == "4"
    assert event.occurred_at == datetime(2026, 11, 6, 11, 2, 10, tzinfo=MSK)
    assert event.event_id == f"bitrix24:task:{TASK}:done:2026-11-06T11:02:10+03:00"


# --- not done: reported as a reopening --------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["2", "3", "6"])
def test_a_task_not_done_is_reported_as_reopened_at_its_status_change(api, status):
    """Bitrix24 does not say what the status was: the core applies the reopen
    only to a task whose milestone it saw completed."""
    serve_task("task__in_progress", status=status)
    (event,) = run("ONTASKUPDATE__outgoing_webhook").events
    assert isinstance(event, TaskReopened) and event.status == status
    assert event.occurred_at == datetime(2026, 11, 7, 9, 30, tzinfo=MSK)  # statusChangedDate
    assert event.event_id == f"bitrix24:task:{TASK}:open:2026-11-07T09:30:00+03:00"
    assert event.actor == "9" and event.labels == ()


def test_a_reopening_comes_after_the_completion_it_undoes():
    done = bitrix24.task_event(integration(), task("task__completed"), occurred_at=NOW)
    reopened = bitrix24.task_event(integration(), task("task__in_progress"), occurred_at=NOW)
    assert done.occurred_at < reopened.occurred_at


def test_a_status_jalon_does_not_know_is_ignored_with_its_reason(api):
    serve_task("task__in_progress", status="9")
    translation = run("ONTASKUPDATE__outgoing_webhook")
    assert translation.events == () and "'9'" in translation.ignored


# --- not found ---------------------------------------------------------------------------------------------------


def test_a_task_bitrix24_does_not_give_is_ignored_with_the_reason(api):
    serve_task("task__not_found")
    translation = run("ONTASKUPDATE__outgoing_webhook")
    assert translation.events == ()
    assert "task 4711" in translation.ignored and "cannot see it" in translation.ignored


# --- deleted -------------------------------------------------------------------------------------------------------


def test_a_deleted_task_is_told_without_a_call_and_without_a_project(api):
    translation = run("ONTASKDELETE__outgoing_webhook")
    (event,) = translation.events
    assert isinstance(event, TaskDeleted)
    assert (event.task_ref, event.project_ref, event.task_url) == (TASK, "", TASK_URL)
    assert event.occurred_at == datetime.fromtimestamp(1793960000, tz=UTC)  # ts: when the portal queued it
    assert event.event_id == f"bitrix24:task:{TASK}:deleted"
    assert len(api.calls) == 0


# --- ignored -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, event, reason", [
    ("ONTASKADD__ignored", "ONTASKADD", "completes nothing"),
    ("ONTASKCOMMENTADD__new_card_ignored", "ONTASKCOMMENTADD", "comments"),
    ("ONCRMDEALUPDATE__ignored", "ONCRMDEALUPDATE", "CRM"),
])
def test_events_jalon_does_not_act_on_are_ignored_without_a_call(api, name, event, reason):
    translation = run(name)
    assert translation.event_name == event and translation.events == ()
    assert reason in translation.ignored
    assert len(api.calls) == 0


def test_an_unknown_event_is_ignored_with_its_name(api):
    translation = run_body(urlencode({"event": "onSomethingNew", "ts": "1"}).encode())
    assert translation.event_name == "ONSOMETHINGNEW" and "'ONSOMETHINGNEW'" in translation.ignored


def test_an_event_name_in_another_case_is_the_same_event(api):
    serve_task("task__completed")
    body = fixture_bytes("ONTASKUPDATE__outgoing_webhook").replace(b"event=ONTASKUPDATE", b"event=OnTaskUpdate")
    assert [type(e) for e in run_body(body).events] == [TaskCompleted]


# --- unreadable: dead letters ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, reason", [
    (b"", "empty"),
    (b"event=ONTASKUPDATE&data[FIELDS_AFTER][ID]=%FF", "UTF-8"),
    (b"ts=1&data[FIELDS_AFTER][ID]=4711", "event is missing"),
    (b"event[]=ONTASKUPDATE", "event is missing"),
    (b"event=ONTASKUPDATE&data[FIELDS_AFTER]=undefined&data[FIELDS_BEFORE]=undefined", "no task id"),
    (b"event=ONTASKUPDATE&data=undefined", "no task id"),
    (b"event=ONTASKUPDATE&data[FIELDS_AFTER][ID]=12a", "not a Bitrix24 id"),
    (b"event=ONTASKUPDATE&data[FIELDS_AFTER][ID]=0", "not a Bitrix24 id"),
    (b"event=ONTASKDELETE&data[FIELDS_BEFORE][ID]=../4711", "not a Bitrix24 id"),
    (b'{"event": "ONTASKUPDATE", "data": {"FIELDS_AFTER": {"ID": true}}}', "no task id"),
    (b"[1]", "no form field"),
])
def test_an_authentic_delivery_that_cannot_be_read_is_a_dead_letter_with_its_reason(api, body, reason):
    with pytest.raises(Unreadable) as error:
        run_body(body)
    assert reason in str(error.value)
    assert len(api.calls) == 0


@pytest.mark.parametrize("changes, reason", [
    ({"status": None}, "no status"),
    ({"id": None}, None),  # the id asked for is kept
    ({"closedDate": "06.11.2026 12:14:58"}, "not an ISO 8601 date"),
    ({"closedDate": "2026-11-06T12:14:58"}, "no offset"),
])
def test_a_task_bitrix24_describes_unreadably_is_a_dead_letter(api, changes, reason):
    serve_task("task__completed", **changes)
    if reason is None:
        assert run("ONTASKUPDATE__outgoing_webhook").events[0].task_ref == TASK
        return
    with pytest.raises(Unreadable) as error:
        run("ONTASKUPDATE__outgoing_webhook")
    assert reason in str(error.value)


# --- Bitrix24's errors are retried, not dead letters ------------------------------------------------------------------


@pytest.mark.parametrize("status, body, kind", [
    (401, {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}, Unauthorized),
    (503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}, RateLimited),
    (429, {"error": "OPERATION_TIME_LIMIT", "error_description": "Method is blocked"}, RateLimited),
    (500, {"error": "INTERNAL_SERVER_ERROR"}, RemoteError),
])
def test_bitrix24s_refusals_and_limits_are_raised_for_the_worker_to_retry(api, status, body, kind):
    api.post(method_url("tasks.task.get"), status=status, json=body)
    with pytest.raises(kind) as error:
        run("ONTASKUPDATE__outgoing_webhook")
    assert not isinstance(error.value, Unreadable)
    assert "k3y5c0de" not in str(error.value)  # the inbound webhook's code never shows


def test_an_answer_that_is_not_json_is_raised_for_a_retry(api):
    api.post(method_url("tasks.task.get"), body="<html>maintenance</html>", content_type="text/html")
    with pytest.raises(RemoteError):
        run("ONTASKUPDATE__outgoing_webhook")


# --- the helpers reconcile.py uses -------------------------------------------------------------------------------------


def test_project_refs_name_the_group():
    assert bitrix24.project_refs({"groupId": "12"}) == ("group:12", ())
    assert bitrix24.project_refs({"groupId": 14}) == ("group:14", ())
    assert bitrix24.project_refs({"group": {"id": "16"}}) == ("group:16", ())
    for outside in ({"groupId": "0"}, {"groupId": None}, {}):
        assert bitrix24.project_refs(outside) == ("group:0", ())


def test_task_event_dates_a_task_without_dates_with_the_time_given():
    bare = {"id": TASK, "status": "5", "groupId": "12"}
    event = bitrix24.task_event(integration(), bare, occurred_at=NOW)
    assert isinstance(event, TaskCompleted) and event.occurred_at == NOW
    assert event.event_id == f"bitrix24:task:{TASK}:done:{NOW.isoformat()}"
    assert bitrix24.task_event(integration(), bare, occurred_at=NOW, event_id="mine").event_id == "mine"


def test_time_events_log_each_elapsed_item_in_exact_seconds_then_list_them_all():
    items = rest_fixture("elapsed__two_items")
    events = bitrix24.time_events(integration(), task("task__completed"), items, occurred_at=NOW)
    assert [type(e) for e in events] == [TimeLogged, TimeLogged, TaskTimeLogs]
    first, second, listed = events
    assert (first.worklog_ref, first.seconds, first.person_ref) == ("901", 3600, "7")
    assert first.started_at == datetime(2026, 11, 5, 16, 0, tzinfo=MSK)
    assert first.description == "Recette avec le client"
    assert (second.worklog_ref, second.seconds, second.person_ref, second.description) == ("902", 1800, "9", None)
    assert all(e.occurred_at == NOW and e.project_ref == GROUP and e.task_ref == TASK for e in events)
    assert listed.worklog_refs == ("901", "902")


def test_the_same_elapsed_state_found_twice_a_day_is_one_delivery_and_a_change_is_another():
    items = rest_fixture("elapsed__two_items")
    ids = [e.event_id for e in bitrix24.time_events(integration(), task(), items, occurred_at=NOW)]
    later = [e.event_id for e in bitrix24.time_events(integration(), task(), items,
                                                      occurred_at=NOW + timedelta(minutes=10))]
    assert ids == later
    edited = [items[0] | {"SECONDS": "4500"}, items[1]]
    changed = [e.event_id for e in bitrix24.time_events(integration(), task(), edited, occurred_at=NOW)]
    assert changed[0] != ids[0] and changed[1] == ids[1] and changed[2] == ids[2]
    one_gone = [e.event_id for e in bitrix24.time_events(integration(), task(), items[:1], occurred_at=NOW)]
    assert one_gone[-1] != ids[-1]  # the list changed: a new TaskTimeLogs
    next_day = [e.event_id for e in bitrix24.time_events(integration(), task(), items,
                                                         occurred_at=NOW + timedelta(days=1))]
    assert set(next_day).isdisjoint(ids)  # told again once a day: a state that came back is applied


def test_people_can_be_named_by_e_mail_when_the_caller_knows_them():
    items = rest_fixture("elapsed__two_items")
    first, second, _ = bitrix24.time_events(integration(), task(), items, occurred_at=NOW,
                                            people={"7": "bob@atelier.example"})
    assert (first.person_ref, second.person_ref) == ("bob@atelier.example", "9")  # unknown: the user id


def test_a_task_without_elapsed_time_lists_none():
    (listed,) = bitrix24.time_events(integration(), task(), [], occurred_at=NOW)
    assert isinstance(listed, TaskTimeLogs) and listed.worklog_refs == ()


def test_minutes_count_when_seconds_are_missing_and_a_start_falls_back_to_creation():
    item = {"ID": "903", "TASK_ID": TASK, "USER_ID": "7", "MINUTES": "45", "CREATED_DATE": "2026-11-06T10:00:00+03:00"}
    logged, _listed = bitrix24.time_events(integration(), task(), [item], occurred_at=NOW)
    assert logged.seconds == 2700 and logged.started_at == datetime(2026, 11, 6, 10, tzinfo=MSK)


@pytest.mark.parametrize("item, reason", [
    ({"TASK_ID": TASK, "SECONDS": "60"}, "no ID"),
    ({"ID": "904", "TASK_ID": "999", "SECONDS": "60"}, "belongs to task 999"),
    ({"ID": "904", "SECONDS": "1.5"}, "not a whole number"),
    ({"ID": "904", "SECONDS": "-60"}, "not a whole number"),
    ({"ID": "904"}, "no SECONDS"),
    ({"ID": "904", "SECONDS": "60", "DATE_START": "hier"}, "not an ISO 8601 date"),
    ("904", "not an object"),
])
def test_an_elapsed_item_jalon_cannot_read_makes_the_whole_list_unreadable(item, reason):
    """Leaving one item out would delete it from the ledger: the task's time is
    left alone until Bitrix24 answers something readable."""
    with pytest.raises(Unreadable) as error:
        bitrix24.time_events(integration(), task(), [rest_fixture("elapsed__two_items")[0], item], occurred_at=NOW)
    assert reason in str(error.value)


def test_an_item_listed_twice_is_logged_once():
    items = rest_fixture("elapsed__two_items")
    events = bitrix24.time_events(integration(), task(), [items[0], items[0]], occurred_at=NOW)
    assert [type(e) for e in events] == [TimeLogged, TaskTimeLogs] and events[-1].worklog_refs == ("901",)


def test_the_helpers_make_no_call(api):
    bitrix24.task_event(integration(), task(), occurred_at=NOW)
    bitrix24.time_events(integration(), task(), rest_fixture("elapsed__two_items"), occurred_at=NOW)
    assert len(api.calls) == 0


def test_a_payload_that_is_json_of_numbers_reads_its_task_id():
    body = json.dumps({"event": "ONTASKDELETE", "data": {"FIELDS_BEFORE": {"ID": 4711}, "FIELDS_AFTER": "undefined"},
                       "ts": 1793960000}).encode()
    (event,) = run_body(body).events
    assert event.task_ref == TASK and event.occurred_at == datetime.fromtimestamp(1793960000, tz=UTC)
