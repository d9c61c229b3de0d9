"""Each supported Jira event, from the project's own fixtures, becomes the
right core events; everything else is ignored visibly; unreadable bodies are
dead letters."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import responses

from jalon.connector.plugin.types import Translation, Unreadable
from jalon.core.events import TaskCompleted, TaskDeleted, TaskReopened, TimeLogChanged, TimeLogDeleted, TimeLogged
from jalon.plugins.jira import translate as jira

from .support import KEY, SITE, delivery, fixture, fixture_bytes, integration, rest_client, rest_fixture

ISSUE_URL = f"{SITE}/rest/api/3/issue/10070"
PROJECT_URL = f"{SITE}/rest/api/3/project/10000"


def run(name: str, **view: object) -> Translation:
    return jira.translate(integration(**view), delivery(fixture_bytes(name)), rest_client())


def run_body(payload: object, **view: object) -> Translation:
    return jira.translate(integration(**view), delivery(json.dumps(payload).encode()), rest_client())


def serve_issue() -> None:
    responses.get(ISSUE_URL, json=rest_fixture("issue__web_7"))


# --- done and reopened -----------------------------------------------------------------------


def test_a_cloud_transition_into_done_completes_the_task():
    translation = run("jira_issue_updated__cloud_done")
    (event,) = translation.events
    assert isinstance(event, TaskCompleted)
    assert (event.integration, event.project_ref, event.task_ref) == (KEY, "WEB", "WEB-7")
    assert event.status == "Done"
    assert event.task_type == "Story"
    assert event.labels == ("milestone",)
    assert event.task_url == f"{SITE}/browse/WEB-7"
    assert event.actor == "5b10ac8d82e05b22cc7d4ef5"
    assert event.occurred_at == datetime.fromtimestamp(1793610000, tz=timezone.utc)
    assert event.event_id == "jira:issue:10070:changelog:20001"
    assert translation.event_name == "jira:issue_updated" and translation.ignored is None


def test_a_cloud_transition_out_of_done_reopens_the_task():
    (event,) = run("jira_issue_updated__cloud_reopened").events
    assert isinstance(event, TaskReopened)
    assert (event.task_ref, event.status) == ("WEB-7", "To Do")


def test_a_data_center_issue_closed_completes_the_task_with_the_user_name_as_actor():
    (event,) = run("jira_issue_updated__dc_issue_closed", base_url=None).events
    assert isinstance(event, TaskCompleted)
    assert (event.project_ref, event.task_ref, event.status, event.task_type) == ("OPS", "OPS-3", "Closed", "Bug")
    assert event.actor == "amartin"
    assert event.task_url == "https://jira.acme.example/browse/OPS-3"  # the site, from the issue's self URL


def test_a_data_center_issue_reopened_reopens_the_task():
    (event,) = run("jira_issue_updated__dc_issue_reopened").events
    assert isinstance(event, TaskReopened)
    assert event.status == "Reopened"


def test_a_transition_between_two_statuses_that_are_not_done_is_ignored():
    translation = run("jira_issue_updated__cloud_in_progress_ignored")
    assert translation.events == ()
    assert "not in the done category" in translation.ignored


def test_a_status_the_integration_names_as_done_completes_the_task_outside_the_done_category():
    (event,) = run("jira_issue_updated__cloud_in_progress_ignored", settings={"done_statuses": ["In Progress"]}).events
    assert isinstance(event, TaskCompleted) and event.status == "In Progress"


def test_other_statuses_stay_ignored_when_the_integration_names_done_statuses():
    translation = run("jira_issue_updated__cloud_in_progress_ignored", settings={"done_statuses": ["Accepted"]})
    assert translation.events == ()


def test_leaving_a_status_the_settings_name_as_done_reopens_even_without_a_resolution_change():
    payload = fixture("jira_issue_updated__cloud_reopened")
    payload["changelog"]["items"] = [i for i in payload["changelog"]["items"] if i["field"] == "status"]
    payload["changelog"]["items"][0]["fromString"] = "Accepted"
    assert run_body(payload).events == ()
    (event,) = run_body(payload, settings={"done_statuses": ["Accepted"]}).events
    assert isinstance(event, TaskReopened)


def test_worklog_noise_in_an_issue_update_is_ignored_never_billed_twice():
    translation = run("jira_issue_updated__cloud_timespent_noise")
    assert translation.events == ()
    assert "worklog" in translation.ignored


def test_an_issue_update_without_a_status_change_is_ignored():
    payload = fixture("jira_issue_updated__cloud_done")
    payload["changelog"]["items"] = [{"field": "summary", "fromString": "a", "toString": "b"}]
    translation = run_body(payload)
    assert translation.events == () and "no status change" in translation.ignored


# --- time ---------------------------------------------------------------------------------------


@responses.activate
def test_a_created_worklog_is_logged_in_exact_seconds_with_the_issue_fetched():
    serve_issue()
    (event,) = run("worklog_created__cloud").events
    assert isinstance(event, TimeLogged)
    assert event.seconds == 5400  # timeSpentSeconds, never the "1h 30m" string
    assert (event.project_ref, event.task_ref, event.task_type) == ("WEB", "WEB-7", "Story")
    assert event.worklog_ref == "10500"
    assert event.person_ref == "5b10ac8d82e05b22cc7d4ef5"
    assert event.started_at == datetime(2026, 11, 2, 8, 0, tzinfo=timezone(timedelta(hours=1)))
    assert event.occurred_at == datetime(2026, 11, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    assert event.description == "Checkout tests"
    request = responses.calls[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    assert "fields=" in request.url


@responses.activate
def test_an_updated_worklog_carries_its_new_seconds():
    serve_issue()
    (event,) = run("worklog_updated__cloud").events
    assert isinstance(event, TimeLogChanged)
    assert (event.worklog_ref, event.seconds) == ("10500", 7200)


@responses.activate
def test_a_deleted_worklog_is_deleted():
    serve_issue()
    (event,) = run("worklog_deleted__cloud").events
    assert isinstance(event, TimeLogDeleted)
    assert event.worklog_ref == "10500"


@responses.activate
def test_worklogs_of_one_issue_fetch_it_once():
    serve_issue()
    for name in ("worklog_created__cloud", "worklog_updated__cloud", "worklog_deleted__cloud"):
        run(name)
    assert len(responses.calls) == 1


@responses.activate
def test_a_worklog_whose_issue_is_gone_is_unreadable_not_retried_forever():
    responses.get(ISSUE_URL, status=404, json={"errorMessages": ["Issue does not exist"]})
    with pytest.raises(Unreadable, match="issue 10070 not found"):
        run("worklog_created__cloud")


@responses.activate
def test_a_worklog_is_retried_when_jira_refuses_the_credentials():
    from jalon.connector.net.http import Unauthorized

    responses.get(ISSUE_URL, status=401)
    with pytest.raises(Unauthorized):
        run("worklog_created__cloud")


@responses.activate
def test_data_center_worklogs_fetch_the_issue_through_api_v2_with_the_personal_access_token():
    responses.get(f"{SITE}/rest/api/2/issue/10070", json=rest_fixture("issue__web_7"))
    run("worklog_created__cloud", settings={"flavour": "datacenter"}, credentials={"pat": "pat-123"})
    assert responses.calls[0].request.headers["Authorization"] == "Bearer pat-123"


@responses.activate
@pytest.mark.parametrize("seconds", ["1h 30m", 5400.5, -1, None, True])
def test_a_worklog_without_whole_seconds_is_unreadable(seconds):
    serve_issue()
    payload = fixture("worklog_created__cloud")
    payload["worklog"]["timeSpentSeconds"] = seconds
    with pytest.raises(Unreadable, match="timeSpentSeconds"):
        run_body(payload)


@pytest.mark.parametrize("missing", ["id", "issueId"])
def test_a_worklog_without_its_ids_is_unreadable(missing):
    payload = fixture("worklog_created__cloud")
    del payload["worklog"][missing]
    with pytest.raises(Unreadable, match=missing):
        run_body(payload)


# --- versions and deletions -----------------------------------------------------------------------


@responses.activate
def test_a_released_version_completes_a_version_task_of_its_project():
    responses.get(PROJECT_URL, json=rest_fixture("project__web"))
    (event,) = run("jira_version_released__cloud").events
    assert isinstance(event, TaskCompleted)
    assert (event.project_ref, event.task_ref, event.task_type) == ("WEB", "version:10010", "version")
    assert event.task_title == "1.0"
    assert event.task_url == f"{SITE}/projects/WEB/versions/10010"


def test_a_deleted_issue_becomes_a_task_deleted_event():
    (event,) = run("jira_issue_deleted__cloud").events
    assert isinstance(event, TaskDeleted)
    assert (event.project_ref, event.task_ref) == ("WEB", "WEB-7")


# --- everything else -----------------------------------------------------------------------------


@pytest.mark.parametrize("event", ["comment_created", "jira:issue_created", "sprint_closed", "jira:worklog_updated",
                                   "issuelink_created"])
def test_events_jalon_does_not_act_on_are_ignored_visibly(event):
    translation = run_body({"timestamp": 1793606400000, "webhookEvent": event})
    assert translation.events == ()
    assert translation.event_name == event and event in translation.ignored


def test_the_comment_fixture_is_ignored():
    assert run("comment_created__cloud_ignored").ignored


@pytest.mark.parametrize("body, reason", [
    (b"<html>not json</html>", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b"{}", "webhookEvent"),
    (b'{"webhookEvent": "jira:issue_updated"}', "issue"),
    (b'{"webhookEvent": "jira:issue_updated", "issue": {"id": "1", "fields": {}}}', "key"),
    (b'{"webhookEvent": "worklog_created"}', "worklog"),
    (b'{"webhookEvent": "jira:version_released", "version": {"id": "1"}}', "projectId"),
])
def test_an_authentic_body_that_cannot_be_read_is_unreadable(body, reason):
    with pytest.raises(Unreadable, match=reason):
        jira.translate(integration(), delivery(body), rest_client())


def test_a_status_change_without_a_timestamp_is_unreadable():
    payload = fixture("jira_issue_updated__cloud_done")
    del payload["timestamp"]
    with pytest.raises(Unreadable, match="timestamp"):
        run_body(payload)
