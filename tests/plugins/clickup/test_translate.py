"""Each supported ClickUp event, from the project's own fixtures, becomes the
right core events; everything else is ignored visibly; unreadable bodies are
dead letters. ClickUp's REST API is answered by ``responses`` (the ``api`` fixture)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from jalon.connector.plugin import Unauthorized
from jalon.connector.plugin.types import Translation, Unreadable
from jalon.core.events import (
    TaskCompleted,
    TaskDeleted,
    TaskReopened,
    TimeLogChanged,
    TimeLogDeleted,
    TimeLogged,
)
from jalon.plugins.clickup import translate as clickup

from .support import (
    API,
    INTERVAL,
    KEY,
    MILESTONE_TASK,
    NOW,
    PLAIN_TASK,
    TEAM,
    delivery,
    fixture,
    fixture_bytes,
    integration,
    rest_client,
    rest_fixture,
    serve_task,
    serve_time_entry,
)

LIST = "list:901200000001"


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 2, hour, minute, tzinfo=UTC)


def run(name: str, **view: object) -> Translation:
    return clickup.translate(integration(**view), delivery(fixture_bytes(name)), rest_client())


def run_body(payload: object, **view: object) -> Translation:
    return clickup.translate(integration(**view), delivery(json.dumps(payload).encode()), rest_client())


# --- done -----------------------------------------------------------------------------------------


def test_a_task_moved_into_a_closed_status_completes_with_what_the_core_matches_milestones_on(api):
    serve_task("task__milestone")
    translation = run("taskStatusUpdated__closed")
    (event,) = translation.events
    assert isinstance(event, TaskCompleted)
    assert (event.integration, event.task_ref, event.status) == (KEY, MILESTONE_TASK, "terminé")
    assert event.project_ref == LIST
    assert event.project_parents == ("folder:90120000002", "space:90120000003")
    assert event.task_type == "milestone"  # ClickUp's Milestone task type (custom_item_id 1)
    assert event.labels == ("lot-1",)
    assert event.task_title == "Recette du lot 1"
    assert event.task_url == f"https://app.clickup.com/t/{MILESTONE_TASK}"
    assert event.actor == "camille@atelier-lumen.fr"
    assert event.occurred_at == at(9)
    assert event.event_id == f"clickup:task:{MILESTONE_TASK}:history:4215567000000000101"
    assert translation.event_name == "taskStatusUpdated" and translation.ignored is None
    assert api.calls[0].request.url.startswith(f"{API}/task/{MILESTONE_TASK}")


def test_the_same_change_with_numbers_instead_of_strings_gives_the_same_event(api):
    serve_task("task__milestone")
    assert run("taskStatusUpdated__closed_numbers").events == run("taskStatusUpdated__closed").events


def test_a_status_of_clickups_done_type_completes_the_task(api):
    serve_task("task__milestone")
    (event,) = run("taskStatusUpdated__done_type").events
    assert isinstance(event, TaskCompleted) and event.status == "accepté"


def test_a_custom_status_is_not_done_unless_named(api):
    translation = run("taskStatusUpdated__livre_custom")
    assert translation.events == () and "'livré' is not a done status" in translation.ignored
    assert len(api.calls) == 0  # nothing worth a call to ClickUp


@pytest.mark.parametrize("view", [
    {"settings": {"team_id": TEAM, "done_statuses": ["Livré"]}},
    {"mapped_done_statuses": ("validé client", "LIVRÉ")},
], ids=["named-in-settings", "named-by-a-mapping"])
def test_a_custom_french_status_named_done_completes_the_task_whatever_its_case(api, view):
    serve_task("task__milestone")
    (event,) = run("taskStatusUpdated__livre_custom", **view).events
    assert isinstance(event, TaskCompleted) and event.status == "livré"


def test_a_status_typed_with_a_combining_accent_equals_its_composed_name(api):
    serve_task("task__milestone")
    assert fixture("taskStatusUpdated__livre_decomposed")["history_items"][0]["after"]["status"] == "Livre\u0301"
    (event,) = run("taskStatusUpdated__livre_decomposed", settings={"done_statuses": ["livr\u00e9"]}).events
    assert isinstance(event, TaskCompleted)
    assert event.status == "Livr\u00e9"  # composed, as an admin types it in a mapping


def test_accents_still_count_when_status_names_are_compared(api):
    translation = run("taskStatusUpdated__livre_custom", settings={"done_statuses": ["livre"]})
    assert translation.events == () and translation.ignored


def test_the_settings_and_the_mappings_done_statuses_add_up(api):
    serve_task("task__milestone")
    view = {"settings": {"done_statuses": ["accepté"]}, "mapped_done_statuses": ("livré",)}
    assert [type(e) for e in run("taskStatusUpdated__livre_custom", **view).events] == [TaskCompleted]


# --- reopened ---------------------------------------------------------------------------------------


def test_a_task_moved_out_of_a_closed_status_reopens(api):
    serve_task("task__milestone")
    (event,) = run("taskStatusUpdated__reopened").events
    assert isinstance(event, TaskReopened)
    assert (event.task_ref, event.status, event.occurred_at) == (MILESTONE_TASK, "à faire", at(10, 15))


def test_leaving_a_custom_status_a_mapping_names_done_reopens(api):
    serve_task("task__milestone")
    (event,) = run("taskStatusUpdated__valide_client_to_en_cours", mapped_done_statuses=("Validé client",)).events
    assert isinstance(event, TaskReopened) and event.status == "en cours"


def test_leaving_a_custom_status_nobody_names_done_is_ignored(api):
    translation = run("taskStatusUpdated__valide_client_to_en_cours")
    assert translation.events == () and translation.ignored
    assert len(api.calls) == 0


# --- ignored status changes ---------------------------------------------------------------------------


def test_a_transition_between_two_statuses_that_are_not_done_is_ignored_without_a_call(api):
    translation = run("taskStatusUpdated__in_progress_ignored")
    assert translation.events == ()
    assert "'en cours' is not a done status" in translation.ignored
    assert len(api.calls) == 0


def test_the_status_update_clickup_sends_when_a_task_is_created_in_a_closed_status_completes_nothing(api):
    translation = run("taskStatusUpdated__created_closed_ignored")
    assert translation.events == () and "created" in translation.ignored
    assert len(api.calls) == 0


@pytest.mark.parametrize("before", [None, "absent", {"status": None, "type": "open"}, {"type": "REMOVED"}])
def test_a_status_item_without_a_previous_status_is_a_creation_never_a_completion(api, before):
    payload = fixture("taskStatusUpdated__closed")
    item = payload["history_items"][0]
    if before == "absent":
        del item["before"]
    else:
        item["before"] = before
    translation = run_body(payload)
    assert translation.events == () and "created" in translation.ignored


# ClickUp sends taskUpdated beside the granular event, with the same history items (one key:
# whichever comes first is stored, the other is a duplicate), in no documented order


def test_a_task_updated_arriving_before_its_status_update_completes_the_task_the_same_way(api):
    serve_task("task__milestone")
    generic = run("taskUpdated__status_same_change")
    granular = run("taskStatusUpdated__closed")
    assert generic.event_name == "taskUpdated"
    assert generic.events == granular.events and [type(e) for e in generic.events] == [TaskCompleted]


def test_a_task_updated_arriving_before_its_time_tracked_update_logs_the_same_time(api):
    serve_task("task__plain")
    generic = run("taskUpdated__time_spent_same_change")
    assert generic.events == run("taskTimeTrackedUpdated__created").events
    assert [(type(e), e.seconds) for e in generic.events] == [(TimeLogged, 900)]


@pytest.mark.parametrize("items", [
    [{"id": "1", "field": "name", "before": "Recette", "after": "Recette du lot 1"}],
    [{"id": "2", "field": "assignee_add", "after": {"id": 81942}}],
    [],
])
def test_a_task_updated_changing_neither_status_nor_time_is_ignored_without_a_call(api, items):
    translation = run_body({"event": "taskUpdated", "history_items": items, "task_id": PLAIN_TASK, "webhook_id": "w"})
    assert translation.events == () and "no status or tracked time change" in translation.ignored
    assert len(api.calls) == 0


def test_a_task_updated_changing_a_status_that_is_not_done_is_ignored(api):
    payload = fixture("taskStatusUpdated__in_progress_ignored") | {"event": "taskUpdated"}
    assert "'en cours' is not a done status" in run_body(payload).ignored


def test_a_status_update_without_a_status_item_is_ignored(api):
    payload = fixture("taskStatusUpdated__closed")
    payload["history_items"] = []
    assert "no status history item" in run_body(payload).ignored


# --- the task: project, parents, type, tags ---------------------------------------------------------------


def test_a_folderless_lists_hidden_folder_is_not_a_parent(api):
    serve_task("task__plain", status={"status": "terminé", "type": "closed"})
    payload = fixture("taskStatusUpdated__closed")
    payload["task_id"] = PLAIN_TASK
    (event,) = run_body(payload).events
    assert (event.project_ref, event.project_parents) == (LIST, ("space:90120000003",))
    assert event.task_type == "task" and event.labels == ("jalon",)


def test_a_milestone_typed_task_is_not_a_milestone_when_the_integration_says_so(api):
    serve_task("task__milestone")
    (event,) = run("taskStatusUpdated__closed", settings={"bill_milestone_type": False}).events
    assert event.task_type == "custom_item:1"


def test_a_task_carrying_a_milestone_tag_is_a_milestone(api):
    serve_task("task__plain")
    payload = fixture("taskStatusUpdated__closed")
    payload["task_id"] = PLAIN_TASK
    (event,) = run_body(payload, settings={"milestone_tags": ["JALON"]}).events
    assert event.task_type == "milestone"


def test_a_task_without_url_links_to_clickups_short_url(api):
    serve_task("task__milestone", url=None)
    (event,) = run("taskStatusUpdated__closed").events
    assert event.task_url == f"https://app.clickup.com/t/{MILESTONE_TASK}"


def test_a_completed_task_clickup_no_longer_has_is_unreadable(api):
    api.get(f"{API}/task/{MILESTONE_TASK}", status=404, json={"err": "Task not found", "ECODE": "ITEM_013"})
    with pytest.raises(Unreadable, match=f"task {MILESTONE_TASK} not found"):
        run("taskStatusUpdated__closed")


def test_a_refused_token_is_retried_not_a_dead_letter(api):
    api.get(f"{API}/task/{MILESTONE_TASK}", status=401, json={"err": "Token invalid", "ECODE": "OAUTH_025"})
    with pytest.raises(Unauthorized):
        run("taskStatusUpdated__closed")


def test_a_task_without_a_list_is_unreadable(api):
    serve_task("task__milestone", list=None)
    with pytest.raises(Unreadable, match="names no list"):
        run("taskStatusUpdated__closed")


# --- time -------------------------------------------------------------------------------------------------


def test_a_created_time_entry_is_logged_in_exact_seconds_from_milliseconds(api):
    serve_task("task__plain")
    translation = run("taskTimeTrackedUpdated__created")
    (event,) = translation.events
    assert isinstance(event, TimeLogged)
    assert event.seconds == 900  # "900000" ms: 15 minutes, never 14.99
    assert event.worklog_ref == INTERVAL
    assert event.person_ref == "camille@atelier-lumen.fr"
    assert event.started_at == at(7)
    assert event.occurred_at == at(8)
    assert (event.project_ref, event.project_parents, event.task_ref) == (LIST, ("space:90120000003",), PLAIN_TASK)
    assert event.event_id == f"clickup:time:{INTERVAL}:created:4215567000000000201"
    assert [call.request.url.split("?")[0] for call in api.calls] == [f"{API}/task/{PLAIN_TASK}"]


def test_a_time_entry_sent_with_numbers_gives_the_same_event(api):
    serve_task("task__plain")
    assert run("taskTimeTrackedUpdated__created_numbers").events == run("taskTimeTrackedUpdated__created").events


def test_an_edited_time_entry_carries_its_new_seconds(api):
    serve_task("task__plain")
    (event,) = run("taskTimeTrackedUpdated__edited").events
    assert isinstance(event, TimeLogChanged)
    assert (event.worklog_ref, event.seconds, event.occurred_at) == (INTERVAL, 1800, at(9))


def test_an_edit_arriving_before_its_creation_keeps_the_later_values(api):
    serve_task("task__plain")
    (edit,) = run("taskTimeTrackedUpdated__edited").events
    (create,) = run("taskTimeTrackedUpdated__created").events
    assert isinstance(edit, TimeLogChanged) and isinstance(create, TimeLogged)
    assert edit.worklog_ref == create.worklog_ref
    # the core applies nothing older than what it applied to a worklog: the late creation loses
    assert create.occurred_at < edit.occurred_at
    assert (create.seconds, edit.seconds) == (900, 1800)


def test_a_time_change_lacking_the_user_or_start_fetches_the_entry(api):
    serve_task("task__plain")
    entry = serve_time_entry("time_entry__updated")
    (event,) = run("taskTimeTrackedUpdated__updated_without_user").events
    assert isinstance(event, TimeLogChanged)  # "time tracking updated", read leniently
    assert event.person_ref == "lucas@atelier-lumen.fr"
    assert event.seconds == 2700
    assert event.started_at == at(7)
    assert event.description == entry["description"]
    assert any(f"/team/{TEAM}/time_entries/{INTERVAL}" in call.request.url for call in api.calls)


def test_the_workspace_of_the_delivery_is_used_when_the_settings_name_none(api):
    serve_task("task__plain")
    serve_time_entry("time_entry__updated")
    (event,) = run("taskTimeTrackedUpdated__updated_without_user", settings={}).events
    assert event.person_ref == "lucas@atelier-lumen.fr"


def test_a_time_entry_cannot_be_fetched_without_a_workspace_id(api):
    payload = fixture("taskTimeTrackedUpdated__updated_without_user")
    del payload["team_id"]
    with pytest.raises(Unreadable, match="team_id"):
        run_body(payload, settings={})


def test_a_time_entry_gone_from_clickup_without_its_duration_is_ignored(api):
    api.get(f"{API}/team/{TEAM}/time_entries/{INTERVAL}", status=404, json={"err": "Not found"})
    payload = fixture("taskTimeTrackedUpdated__updated_without_user")
    del payload["history_items"][0]["after"]["time"]
    translation = run_body(payload)
    assert translation.events == () and "no longer in ClickUp" in translation.ignored


def test_a_deleted_time_entry_is_deleted(api):
    serve_task("task__plain")
    (event,) = run("taskTimeTrackedUpdated__deleted").events
    assert isinstance(event, TimeLogDeleted)
    assert (event.worklog_ref, event.project_ref, event.occurred_at) == (INTERVAL, LIST, at(10, 15))


def test_a_deleted_time_entry_of_a_task_clickup_no_longer_has_is_left_to_the_ledger(api):
    api.get(f"{API}/task/{PLAIN_TASK}", status=404, json={"err": "Task not found"})
    (event,) = run("taskTimeTrackedUpdated__deleted").events
    assert isinstance(event, TimeLogDeleted)
    assert (event.worklog_ref, event.project_ref, event.task_ref) == (INTERVAL, "", PLAIN_TASK)


def test_a_running_timer_is_ignored_without_a_call(api):
    translation = run("taskTimeTrackedUpdated__running_ignored")
    assert translation.events == () and "running" in translation.ignored
    assert len(api.calls) == 0


@pytest.mark.parametrize("description, before, after, kind", [
    ("Time Tracking Updated", {"id": INTERVAL}, {"id": INTERVAL}, TimeLogChanged),
    ("TIME TRACKING EDITED", {"id": INTERVAL}, {"id": INTERVAL}, TimeLogChanged),
    (None, {"id": INTERVAL}, None, TimeLogDeleted),
    (None, None, {"id": INTERVAL}, TimeLogged),
    (None, {"id": INTERVAL}, {"id": INTERVAL}, TimeLogChanged),
])
def test_the_kind_of_time_change_is_read_leniently(api, description, before, after, kind):
    serve_task("task__plain")
    payload = fixture("taskTimeTrackedUpdated__created")
    item = payload["history_items"][0]
    full = dict(item["after"])
    item["before"] = before and full
    item["after"] = after and full
    if description is None:
        del payload["data"]["description"]
    else:
        payload["data"]["description"] = description
    assert [type(e) for e in run_body(payload).events] == [kind]


def test_a_time_change_that_says_nothing_of_its_kind_is_unreadable(api):
    payload = fixture("taskTimeTrackedUpdated__created")
    payload["data"]["description"] = "Time Tracking Frobnicated"
    payload["history_items"][0]["after"] = None
    with pytest.raises(Unreadable, match="created, edited or deleted"):
        run_body(payload)


def test_a_time_change_without_its_entry_id_is_unreadable(api):
    payload = fixture("taskTimeTrackedUpdated__created")
    del payload["data"]["interval_id"]
    del payload["history_items"][0]["after"]["id"]
    with pytest.raises(Unreadable, match="interval_id"):
        run_body(payload)


@pytest.mark.parametrize("duration, seconds", [("1500", 2), (1499, 1), ("900000.0", 900), (500, 1), (499, 0)])
def test_a_duration_that_is_not_whole_seconds_is_rounded_half_up(api, duration, seconds):
    serve_task("task__plain")
    payload = fixture("taskTimeTrackedUpdated__created")
    payload["history_items"][0]["after"]["time"] = duration
    (event,) = run_body(payload).events
    assert event.seconds == seconds


@pytest.mark.parametrize("duration", ["1h 30m", "", None, True, [900000], "NaN"])
def test_a_duration_that_is_not_milliseconds_is_unreadable(api, duration):
    serve_task("task__plain")
    serve_time_entry("time_entry__updated")
    payload = fixture("taskTimeTrackedUpdated__created")
    payload["history_items"][0]["after"]["time"] = duration
    if duration in ("", None):  # missing: the entry is fetched and its own duration read
        assert run_body(payload).events[0].seconds == 2700
        return
    with pytest.raises(Unreadable, match="duration"):
        run_body(payload)


# --- deleted tasks --------------------------------------------------------------------------------------------


def test_a_deleted_task_still_known_to_clickup_is_deleted_in_its_list(api):
    serve_task("task__milestone")
    (event,) = run("taskDeleted__task").events
    assert isinstance(event, TaskDeleted)
    assert (event.task_ref, event.project_ref, event.occurred_at) == (MILESTONE_TASK, LIST, NOW)
    assert event.event_id == f"clickup:task:{MILESTONE_TASK}:deleted"


def test_a_deleted_task_gone_from_clickup_is_deleted_without_a_project(api):
    api.get(f"{API}/task/{MILESTONE_TASK}", status=404, json={"err": "Task not found, deleted"})
    (event,) = run("taskDeleted__task").events
    assert isinstance(event, TaskDeleted)
    assert (event.task_ref, event.project_ref) == (MILESTONE_TASK, "")


# --- everything else ------------------------------------------------------------------------------------------------

IGNORED_KINDS = sorted(clickup.IGNORED) + ["listCreated", "listUpdated", "folderDeleted", "spaceUpdated",
                                            "goalCreated", "keyResultUpdated", "taskSomethingNew"]


@pytest.mark.parametrize("event", IGNORED_KINDS)
def test_every_event_jalon_does_not_act_on_is_ignored_with_a_reason_and_no_call(api, event):
    translation = run_body({"event": event, "history_items": [{"id": "1", "field": "status"}],
                            "task_id": PLAIN_TASK, "webhook_id": "w"})
    assert translation.events == ()
    assert translation.event_name == event and event in translation.ignored
    assert len(api.calls) == 0


@pytest.mark.parametrize("name", ["taskCreated__ignored", "taskCommentPosted__ignored", "taskMoved__ignored"])
def test_the_ignored_fixtures_are_ignored(api, name):
    translation = run(name)
    assert translation.events == () and translation.ignored
    assert len(api.calls) == 0


@pytest.mark.parametrize("body, reason", [
    (b"<html>not json</html>", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"{}", "event is missing"),
    (b'{"event": 7}', "event is missing"),
    (b'{"event": "taskStatusUpdated", "history_items": []}', "task_id"),
    (b'{"event": "taskDeleted"}', "task_id"),
    (b'{"event": "taskStatusUpdated", "task_id": "x", "history_items": [{"field": "status", "before": {}}]}',
     "no new status"),
])
def test_an_authentic_body_that_cannot_be_read_is_unreadable(api, body, reason):
    with pytest.raises(Unreadable, match=reason):
        clickup.translate(integration(), delivery(body), rest_client())


def test_a_status_change_with_a_garbled_date_is_unreadable(api):
    serve_task("task__milestone")
    payload = fixture("taskStatusUpdated__closed")
    payload["history_items"][0]["date"] = "yesterday"
    with pytest.raises(Unreadable, match="date"):
        run_body(payload)


# --- the helpers reconcile.py builds its events with --------------------------------------------------------------


def test_project_refs_give_the_list_then_the_folder_then_the_space():
    assert clickup.project_refs(rest_fixture("task__milestone")) == \
        (LIST, ("folder:90120000002", "space:90120000003"))
    assert clickup.project_refs(rest_fixture("task__plain")) == (LIST, ("space:90120000003",))


def test_task_event_reads_a_fetched_tasks_state():
    task = rest_fixture("task__milestone")
    event = clickup.task_event(integration(), task, occurred_at=at(9), previous_status=None, event_id="e-1")
    assert isinstance(event, TaskCompleted)
    assert (event.status, event.task_type, event.project_ref, event.event_id) == ("terminé", "milestone", LIST, "e-1")


def test_task_event_reports_a_task_not_done_as_reopened_when_its_previous_status_is_unknown_or_done():
    task = rest_fixture("task__plain")
    view = integration()
    assert isinstance(clickup.task_event(view, task, occurred_at=at(9), previous_status=None, event_id="e"),
                      TaskReopened)
    assert isinstance(clickup.task_event(view, task, occurred_at=at(9), event_id="e",
                                         previous_status={"status": "terminé", "type": "closed"}), TaskReopened)
    assert clickup.task_event(view, task, occurred_at=at(9), event_id="e",
                              previous_status={"status": "à faire", "type": "open"}) is None


def test_time_event_reads_a_fetched_entry_and_its_location():
    entry = rest_fixture("time_entry__updated")["data"]
    event = clickup.time_event(integration(), entry, "created", occurred_at=at(9, 30), event_id="t-1")
    assert isinstance(event, TimeLogged)
    assert (event.worklog_ref, event.seconds, event.person_ref) == (INTERVAL, 2700, "lucas@atelier-lumen.fr")
    assert (event.project_ref, event.project_parents, event.task_ref) == \
        (LIST, ("folder:90120000004", "space:90120000003"), PLAIN_TASK)


def test_time_event_of_a_deleted_entry_without_location_is_left_to_the_ledger():
    event = clickup.time_event(integration(), {"id": INTERVAL}, "deleted", occurred_at=at(9), event_id="t-2")
    assert isinstance(event, TimeLogDeleted) and event.project_ref == ""


def test_time_event_of_a_running_timer_is_none():
    entry = rest_fixture("time_entry__updated")["data"] | {"duration": "-1793610000000"}
    assert clickup.time_event(integration(), entry, "created", occurred_at=at(9), event_id="t-3") is None


def test_time_event_needs_a_list_for_a_creation():
    with pytest.raises(Unreadable, match="names no list"):
        clickup.time_event(integration(), {"id": INTERVAL, "duration": "60000"}, "created", occurred_at=at(9),
                           event_id="t-4")


@pytest.mark.parametrize("millis, seconds", [("900000", 900), (900000, 900), (900000.0, 900), (Decimal(1500), 2),
                                             ("1499", 1), ("0", 0), ("3600000", 3600), ("-5", None)])
def test_milliseconds_become_exact_seconds(millis, seconds):
    assert clickup.seconds_from_millis(millis) == seconds


def test_millisecond_timestamps_are_exact_utc_times():
    assert clickup.from_millis("1793610000123") == datetime(2026, 11, 2, 9, 0, 0, 123000, tzinfo=UTC)
    assert clickup.from_millis(1793610000000) == at(9)
