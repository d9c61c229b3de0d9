"""Reconciliation: what Jira did not deliver, asked for on a schedule.

Jira Cloud retries a failed delivery for minutes only and Data Center not at
all, so an outage of the receiver loses events. Every ``INTERVAL`` the
``jira.reconcile`` job asks each enabled Jira integration with mappings for

* issues of the mapped projects whose status changed since the job's last
  successful run (JQL), and
* worklogs updated or deleted since then (``/worklog/updated``,
  ``/worklog/deleted``, then ``/worklog/list`` for the values),

and applies the same core events a webhook would have produced, in one
transaction per integration, followed by the same notifications and
write-backs. The core is idempotent on task states and worklog ids, so an
event that did arrive by webhook and is found again here bills nothing twice.

Network calls are made first, outside the transaction; a failure of one
integration does not stop the others, but fails the run so that the next one
looks back from the last success again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from jalon.connector.outbox import notify
from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.net.http import NotFound, RemoteError, RestClient
from jalon.connector.relay.intake import integration_view
from jalon.connector.plugin.types import IntegrationView, JobSpec
from jalon.core.events import CoreEvent, TaskCompleted, TaskReopened, TimeLogChanged, TimeLogDeleted, TimeLogged
from jalon.core.models import Integration, Mapping as ProjectMapping, TaskState, TimeEntry
from jalon.core.rules import apply_event

from . import client

JOB = "jira.reconcile"
INTERVAL = timedelta(minutes=10)
# looked back beyond the last success: clocks differ, and Jira indexes changes late
OVERLAP = timedelta(minutes=15)
# the first run (no success yet) looks back this far
FIRST_LOOKBACK = timedelta(hours=24)
SOURCE = "jira"


@hookimpl
def jalon_scheduler_jobs() -> Sequence[JobSpec]:
    return [JobSpec(name=JOB, interval=INTERVAL, run=run,
                    description="Ask Jira for status changes and worklogs missed since the last run")]


def run(context: Any) -> dict[str, Any]:
    """The job: reconcile every enabled Jira integration that has mappings."""
    since = (context.last_success or context.now - FIRST_LOOKBACK) - OVERLAP
    with context.session() as session:
        rows = session.execute(
            select(Integration).where(Integration.source == SOURCE, Integration.enabled.is_(True))
            .order_by(Integration.key)
        ).scalars().all()
        targets = []
        for row in rows:
            projects = sorted(session.execute(
                select(ProjectMapping.pm_project).where(ProjectMapping.integration_id == row.id)).scalars())
            if projects and row.base_url:
                targets.append((integration_view(row, context.runtime.settings, context.now), projects))
    result: dict[str, Any] = {"since": since.isoformat(), "integrations": {}}
    failed: list[str] = []
    for view, projects in targets:
        try:
            result["integrations"][view.key] = reconcile(context, view, projects, since)
        except RemoteError as error:
            failed.append(f"{view.key}: {error}")
            result["integrations"][view.key] = {"error": str(error)}
    if failed:
        raise RuntimeError("Jira reconciliation failed for " + "; ".join(failed))
    return result


def reconcile(context: Any, view: IntegrationView, projects: Sequence[str], since: datetime) -> dict[str, Any]:
    """One integration: fetch what changed since ``since``, then apply it in one transaction."""
    http = RestClient(view.base_url, timeout=context.runtime.settings.http_timeout_seconds)
    try:
        jira = client.JiraClient(http, view)
        issues = client.search_issues(jira, status_changed_jql(projects, context.now - since))
        since_ms = int(since.timestamp() * 1000)
        updated_ids = [int(v["worklogId"]) for v in client.updated_worklogs(jira, since_ms) if "worklogId" in v]
        worklogs = client.list_worklogs(jira, updated_ids) if updated_ids else []
        worklog_issues: dict[str, client.Issue | None] = {}
        for worklog in worklogs:
            issue_id = str(worklog.get("issueId") or "")
            if issue_id and issue_id not in worklog_issues:
                try:
                    worklog_issues[issue_id] = jira.get_issue(issue_id)
                except NotFound:  # the issue is gone since: its worklogs are not ours to bill
                    worklog_issues[issue_id] = None
        deleted = client.deleted_worklogs(jira, since_ms)
    finally:
        http.session.close()
    mapped = set(projects)
    counts: dict[str, int] = {}
    with context.session() as session:
        integration = session.execute(select(Integration).where(Integration.key == view.key)).scalar_one()
        events: list[CoreEvent] = []
        for issue in issues:
            event = _issue_event(session, integration, view, issue)
            if event is not None:
                events.append(event)
        for worklog in worklogs:
            issue = worklog_issues.get(str(worklog.get("issueId") or ""))
            if issue is not None and issue.project_key in mapped:
                event = _worklog_event(session, integration, view, worklog, issue)
                if event is not None:
                    events.append(event)
        for change in deleted:
            event = _deleted_event(session, integration, view, change)
            if event is not None:
                events.append(event)
        outcomes = [apply_event(session, event) for event in events]
        if outcomes:
            notify.on_outcomes(session, outcomes, integration=integration, settings=context.runtime.settings)
        for outcome in outcomes:
            counts[outcome.effect] = counts.get(outcome.effect, 0) + 1
    return {"issues": len(issues), "worklogs_updated": len(worklogs), "worklogs_deleted": len(deleted),
            "effects": counts}


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


def _issue_event(session: Any, integration: Integration, view: IntegrationView,
                 data: Mapping[str, Any]) -> CoreEvent | None:
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
                  labels=issue.labels, event_id=f"reconcile:issue:{issue.key}:{occurred_at.isoformat()}")
    if issue.status_category == "done":
        return TaskCompleted(**common, status=issue.status)
    known = session.execute(select(TaskState.done).where(
        TaskState.integration_id == integration.id, TaskState.task_ref == issue.key)).scalar_one_or_none()
    if known:  # only a task known to be done can be reopened
        return TaskReopened(**common, status=issue.status)
    return None


def _worklog_event(session: Any, integration: Integration, view: IntegrationView, worklog: Mapping[str, Any],
                   issue: client.Issue) -> CoreEvent | None:
    seconds = worklog.get("timeSpentSeconds")
    occurred_at = parse_time(worklog.get("updated")) or parse_time(worklog.get("created"))
    if worklog.get("id") is None or not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0 \
            or occurred_at is None:
        return None
    author = worklog.get("author") if isinstance(worklog.get("author"), Mapping) else {}
    worklog_ref = str(worklog["id"])
    exists = session.execute(select(TimeEntry.id).where(
        TimeEntry.integration_id == integration.id, TimeEntry.worklog_ref == worklog_ref)).first() is not None
    kind = TimeLogChanged if exists else TimeLogged
    return kind(integration=view.key, project_ref=issue.project_key, task_ref=issue.key, occurred_at=occurred_at,
                task_url=_task_url(view, issue.key), task_type=issue.issue_type, labels=issue.labels,
                worklog_ref=worklog_ref, person_ref=author.get("accountId") or author.get("name"),
                seconds=seconds, started_at=parse_time(worklog.get("started")),
                event_id=f"reconcile:worklog:{worklog_ref}:{occurred_at.isoformat()}")


def _deleted_event(session: Any, integration: Integration, view: IntegrationView,
                   change: Mapping[str, Any]) -> CoreEvent | None:
    occurred_at = parse_time(change.get("updatedTime"))
    if change.get("worklogId") is None or occurred_at is None:
        return None
    worklog_ref = str(change["worklogId"])
    # the deletion names no issue: the ledger knows which task the worklog was on
    entry = session.execute(select(TimeEntry).where(
        TimeEntry.integration_id == integration.id, TimeEntry.worklog_ref == worklog_ref)).scalar_one_or_none()
    if entry is None or entry.deleted:
        return None
    return TimeLogDeleted(integration=view.key, project_ref=entry.project_ref, task_ref=entry.task_ref,
                          occurred_at=occurred_at, worklog_ref=worklog_ref,
                          event_id=f"reconcile:worklog-deleted:{worklog_ref}:{occurred_at.isoformat()}")
