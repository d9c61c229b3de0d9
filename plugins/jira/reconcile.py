"""Reconciliation: what changed in Jira, for the connector's
``reconcile.jira`` job (``jalon_source_reconcile``).

Jira Cloud retries a failed delivery for minutes only and Data Center not at
all. The connector asks, every ten minutes, for what changed since each
integration's last success; this module only asks Jira:

* issues of the mapped projects whose status changed in the window (JQL): a
  done one (Jira's done category, or a status the integration names) is a
  ``TaskCompleted``, another a ``TaskReopened``, which the core applies only
  to a task whose milestone was completed;
* worklogs updated in the window (``/worklog/updated``, then ``/worklog/list``
  for their values, each one's issue fetched for its project) on the mapped
  projects: ``TimeLogged`` (the core treats a known worklog as changed);
* worklogs deleted in the window (``/worklog/deleted``): ``TimeLogDeleted``
  naming no task (the core finds it in its ledger, or ignores it).

Each event carries a stable ``event_id``, so the same change found by two runs
is one delivery; the connector stores, deduplicates and applies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from jalon.connector.plugin import IntegrationView, NotFound, PermanentFailure, RemoteError, RestClient
from jalon.core.events import CoreEvent, TaskCompleted, TaskReopened, TimeLogDeleted, TimeLogged

from . import client


def changes(integration: IntegrationView, projects: Sequence[str], since: datetime, now: datetime,
            http: RestClient) -> list[CoreEvent]:
    """Every change of the mapped ``projects`` since ``since``, as core events."""
    if not integration.base_url:
        raise PermanentFailure(f"integration {integration.key} has no base_url (the Jira site): "
                               "nothing can be reconciled")
    jira = client.JiraClient(http, integration)
    window = now - since
    events: list[CoreEvent] = []
    for data in client.search_issues(jira, status_changed_jql(projects, window)):
        event = _issue_event(integration, data)
        if event is not None:
            events.append(event)
    since_ms = int(since.timestamp() * 1000)
    updated = [int(v["worklogId"]) for v in client.updated_worklogs(jira, since_ms) if "worklogId" in v]
    mapped = set(projects)
    for worklog in client.list_worklogs(jira, updated) if updated else []:
        issue_id = str(worklog.get("issueId") or "")
        try:
            issue = jira.get_issue(issue_id) if issue_id else None
        except NotFound:  # the issue is gone since: its worklogs are not ours to bill
            issue = None
        if issue is not None and issue.project_key in mapped:
            event = _worklog_event(integration, worklog, issue)
            if event is not None:
                events.append(event)
    for change in client.deleted_worklogs(jira, since_ms):
        event = _deleted_event(integration, change)
        if event is not None:
            events.append(event)
    return events


def status_changed_jql(projects: Sequence[str], window: timedelta) -> str:
    """``project in (...) AND status changed AFTER -<N>m``: a relative date, since
    an absolute one would be read in the Jira user's own time zone."""
    minutes = max(1, math.ceil(window.total_seconds() / 60))
    quoted = ", ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in projects)
    return f"project in ({quoted}) AND status changed AFTER -{minutes}m ORDER BY updated ASC"


def parse_time(value: Any) -> datetime | None:
    """Jira's ``2026-09-23T00:18:35.652+0530`` (or epoch milliseconds) as an aware datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():
        text = f"{text[:-2]}:{text[-2:]}"  # +0530 -> +05:30 (Python 3.10 wants the colon)
    text = text.replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _task_url(view: IntegrationView, key: str) -> str | None:
    return f"{view.base_url.rstrip('/')}/browse/{key}" if view.base_url else None


def _issue_event(view: IntegrationView, data: Mapping[str, Any]) -> CoreEvent | None:
    try:
        issue = client.issue_from_json(data)
    except RemoteError:
        return None
    fields = data.get("fields") or {}
    occurred_at = parse_time(fields.get("statuscategorychangedate")) or parse_time(fields.get("updated"))
    if occurred_at is None:
        return None
    common = dict(integration=view.key, project_ref=issue.project_key, task_ref=issue.key, occurred_at=occurred_at,
                  task_title=issue.summary, task_url=_task_url(view, issue.key), task_type=issue.issue_type,
                  labels=issue.labels, event_id=f"issue:{issue.key}:{occurred_at.isoformat()}", status=issue.status)
    named_done = view.settings.get("done_statuses") or ()
    if issue.status_category == "done" or issue.status in named_done:
        return TaskCompleted(**common)
    return TaskReopened(**common)


def _worklog_event(view: IntegrationView, worklog: Mapping[str, Any], issue: client.Issue) -> CoreEvent | None:
    seconds = worklog.get("timeSpentSeconds")
    occurred_at = parse_time(worklog.get("updated")) or parse_time(worklog.get("created"))
    if worklog.get("id") is None or not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0 \
            or occurred_at is None:
        return None
    author = worklog.get("author") if isinstance(worklog.get("author"), Mapping) else {}
    worklog_ref = str(worklog["id"])
    comment = worklog.get("comment")
    return TimeLogged(integration=view.key, project_ref=issue.project_key, task_ref=issue.key,
                      occurred_at=occurred_at, task_url=_task_url(view, issue.key), task_type=issue.issue_type,
                      labels=issue.labels, worklog_ref=worklog_ref,
                      person_ref=author.get("accountId") or author.get("name"), seconds=seconds,
                      started_at=parse_time(worklog.get("started")),
                      description=comment if isinstance(comment, str) and comment else None,
                      event_id=f"worklog:{worklog_ref}:{occurred_at.isoformat()}")


def _deleted_event(view: IntegrationView, change: Mapping[str, Any]) -> CoreEvent | None:
    occurred_at = parse_time(change.get("updatedTime"))
    if change.get("worklogId") is None or occurred_at is None:
        return None
    worklog_ref = str(change["worklogId"])
    # the deletion names no issue: the core's ledger knows which task the worklog was on
    return TimeLogDeleted(integration=view.key, project_ref="", task_ref="", occurred_at=occurred_at,
                          worklog_ref=worklog_ref, event_id=f"worklog-deleted:{worklog_ref}:{occurred_at.isoformat()}")
