"""Jira deliveries -> core events: a table {webhookEvent -> handler}.

* ``jira:issue_updated`` with a ``status`` change: into the done category
  (``issue.fields.status.statusCategory.key == "done"``) or into a status the
  integration's ``settings['done_statuses']`` names (a workflow whose billable
  state, e.g. "Accepted by client", is not in Jira's done category) ->
  ``TaskCompleted``; out of done (DC ``issue_reopened``, a cleared resolution,
  or leaving such a named status) -> ``TaskReopened``. Any other transition is
  ignored. A mapping's ``done_statuses`` (in the core) then narrows, per
  project, which of these completions bill.
  Changes without a status item (worklog noise ``timespent``, ``WorklogId``...)
  are ignored: time is billed from ``worklog_*`` only, never twice.
* ``worklog_created|updated|deleted`` -> ``TimeLogged|TimeLogChanged|TimeLogDeleted``
  in exact seconds (``timeSpentSeconds``). The payload names only the issue
  id: the issue is fetched (and cached) through :mod:`.client`.
* ``jira:version_released`` -> ``TaskCompleted`` of ``version:<id>``
  (``task_type`` ``version``), the project key fetched from its ``projectId``.
* ``jira:issue_deleted`` -> TaskDeleted: billing data is never deleted; when the
  issue had completed a milestone, finance is told.
* anything else -> ignored, visibly in the delivery log.

A body that is not JSON or lacks what a handler needs -> :class:`Unreadable`.
REST errors: 404 -> ``Unreadable`` (a deleted issue does not come back);
401/403, 429, 5xx, timeouts and bad JSON are raised and retried by the worker.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from jalon.connector.plugin import BadResponse, DeliveryView, IntegrationView, NotFound, RestClient, Translation, Unreadable
from jalon.core.events import (
    TaskCompleted,
    TaskDeleted,
    TaskReopened,
    TimeLogChanged,
    TimeLogDeleted,
    TimeLogged,
)

from .client import Issue, JiraClient, issue_from_json

DONE = "done"
# changelog fields that logging work adds to an issue_updated: billed from worklog_* only
WORKLOG_NOISE = frozenset({"timespent", "timeestimate", "timeoriginalestimate", "worklogid",
                           "aggregatetimespent", "aggregatetimeestimate"})


@dataclass
class Context:
    integration: IntegrationView
    delivery: DeliveryView
    http: RestClient | None
    _client: JiraClient | None = field(default=None, repr=False)

    @property
    def client(self) -> JiraClient:
        if self._client is None:
            if self.http is None:
                raise RuntimeError("no REST client to fetch from Jira")
            self._client = JiraClient(self.http, self.integration)
        return self._client


Handler = Callable[[Context, Mapping[str, Any]], Translation]


# --- small readers -------------------------------------------------------------------------


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise Unreadable(f"{what} is missing or not an object")
    return value


def _from_millis(value: Any, what: str = "timestamp") -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unreadable(f"{what} is missing or not a number of milliseconds")
    return datetime.fromtimestamp(value / 1000, tz=timezone.utc)


def _from_iso(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise Unreadable(f"{what} is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Unreadable(f"{what} is not an ISO-8601 date: {value!r}") from None
    if moment.tzinfo is None:
        raise Unreadable(f"{what} has no time zone: {value!r}")
    return moment


def _person(user: Any) -> str | None:
    """Cloud's ``accountId``, else Data Center's ``name`` (or ``key``)."""
    if not isinstance(user, Mapping):
        return None
    for name in ("accountId", "name", "key"):
        if user.get(name):
            return str(user[name])
    return None


def site_url(integration: IntegrationView, self_url: str | None) -> str | None:
    if integration.base_url:
        return integration.base_url.rstrip("/")
    if self_url:
        parts = urlsplit(self_url)
        prefix = parts.path.split("/rest/", 1)[0]
        return f"{parts.scheme}://{parts.netloc}{prefix}"
    return None


def _browse_url(ctx: Context, issue: Issue) -> str | None:
    site = site_url(ctx.integration, issue.self_url)
    return f"{site}/browse/{issue.key}" if site else None


def _issue(payload: Mapping[str, Any]) -> Issue:
    try:
        return issue_from_json(_object(payload.get("issue"), "issue"))
    except BadResponse as error:
        raise Unreadable(str(error)) from None


def _fetch_issue(ctx: Context, issue_id: str) -> Issue:
    try:
        return ctx.client.get_issue(issue_id)
    except NotFound:
        raise Unreadable(f"issue {issue_id} not found in Jira") from None


def _task_fields(ctx: Context, issue: Issue) -> dict[str, Any]:
    return {
        "integration": ctx.integration.key,
        "project_ref": issue.project_key,
        "task_ref": issue.key,
        "task_title": issue.summary,
        "task_url": _browse_url(ctx, issue),
        "task_type": issue.issue_type,
        "labels": issue.labels,
    }


# --- handlers ------------------------------------------------------------------------------


def issue_updated(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    event = str(payload["webhookEvent"])
    issue = _issue(payload)
    changelog = payload.get("changelog") if isinstance(payload.get("changelog"), Mapping) else {}
    items = [item for item in changelog.get("items") or [] if isinstance(item, Mapping)]
    fields_changed = {str(item.get("field") or "").lower() for item in items}
    status_item = next((item for item in items if str(item.get("field") or "").lower() == "status"), None)
    if status_item is None:
        if fields_changed & WORKLOG_NOISE:
            return Translation(event, (), ignored="worklog noise: time is billed from worklog_* events only")
        return Translation(event, (), ignored=f"issue {issue.key}: no status change")
    new_status = status_item.get("toString") or issue.status
    common = _task_fields(ctx, issue) | {
        "occurred_at": _from_millis(payload.get("timestamp")),
        "actor": _person(payload.get("user")),
        "event_id": f"jira:issue:{issue.id}:changelog:{changelog.get('id')}",
        "status": new_status,
    }
    named_done = ctx.integration.settings.get("done_statuses") or ()
    if issue.status_category == DONE or new_status in named_done:
        return Translation(event, [TaskCompleted(**common)])
    if _leaves_done(ctx, payload, items, status_item):
        return Translation(event, [TaskReopened(**common)])
    return Translation(event, (), ignored=f"issue {issue.key}: status {new_status!r} is not in the done category")


def _leaves_done(ctx: Context, payload: Mapping[str, Any], items: list[Mapping[str, Any]],
                 status_item: Mapping[str, Any]) -> bool:
    if payload.get("issue_event_type_name") == "issue_reopened":
        return True
    if any(str(i.get("field") or "").lower() == "resolution" and i.get("fromString") and not i.get("toString")
           for i in items):
        return True
    done_statuses = ctx.integration.settings.get("done_statuses") or ()
    return bool(status_item.get("fromString")) and status_item.get("fromString") in done_statuses


def _worklog(ctx: Context, payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], dict[str, Any]]:
    worklog = _object(payload.get("worklog"), "worklog")
    for name in ("id", "issueId"):
        if not worklog.get(name):
            raise Unreadable(f"worklog.{name} is missing")
    issue = _fetch_issue(ctx, str(worklog["issueId"]))
    if worklog.get("updated"):
        occurred_at = _from_iso(worklog["updated"], "worklog.updated")
    else:
        occurred_at = _from_millis(payload.get("timestamp"))
    event = str(payload["webhookEvent"])
    common = _task_fields(ctx, issue) | {
        "occurred_at": occurred_at,
        "actor": _person(worklog.get("updateAuthor")) or _person(worklog.get("author")),
        "event_id": f"jira:worklog:{worklog['id']}:{event}:{worklog.get('updated') or payload.get('timestamp')}",
        "worklog_ref": str(worklog["id"]),
        "person_ref": _person(worklog.get("author")),
    }
    return worklog, common


def _worklog_values(worklog: Mapping[str, Any]) -> dict[str, Any]:
    seconds = worklog.get("timeSpentSeconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise Unreadable(f"worklog.timeSpentSeconds is not a whole number of seconds: {seconds!r}")
    comment = worklog.get("comment")
    return {
        "seconds": seconds,
        "started_at": _from_iso(worklog["started"], "worklog.started") if worklog.get("started") else None,
        "description": comment if isinstance(comment, str) and comment else None,
    }


def worklog_created(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    worklog, common = _worklog(ctx, payload)
    return Translation(str(payload["webhookEvent"]), [TimeLogged(**common, **_worklog_values(worklog))])


def worklog_updated(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    worklog, common = _worklog(ctx, payload)
    return Translation(str(payload["webhookEvent"]), [TimeLogChanged(**common, **_worklog_values(worklog))])


def worklog_deleted(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    _, common = _worklog(ctx, payload)
    return Translation(str(payload["webhookEvent"]), [TimeLogDeleted(**common)])


def version_released(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    version = _object(payload.get("version"), "version")
    if not version.get("id") or not version.get("projectId"):
        raise Unreadable("version.id or version.projectId is missing")
    project_id = str(version["projectId"])
    try:
        project_key = ctx.client.get_project_key(project_id)
    except NotFound:
        raise Unreadable(f"project {project_id} not found in Jira") from None
    site = site_url(ctx.integration, version.get("self"))
    event = TaskCompleted(
        integration=ctx.integration.key,
        project_ref=project_key,
        task_ref=f"version:{version['id']}",
        task_title=version.get("name"),
        task_type="version",
        task_url=f"{site}/projects/{project_key}/versions/{version['id']}" if site else None,
        occurred_at=_from_millis(payload.get("timestamp")),
        event_id=f"jira:version:{version['id']}:released",
        status="Released",
    )
    return Translation(str(payload["webhookEvent"]), [event])


def issue_deleted(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    issue = _issue(payload)
    return Translation(str(payload["webhookEvent"]), [TaskDeleted(**_task_fields(ctx, issue) | {
        "occurred_at": _from_millis(payload.get("timestamp")),
        "actor": _person(payload.get("user")),
        "event_id": f"jira:issue:{issue.id}:deleted",
    })])


HANDLERS: dict[str, Handler] = {
    "jira:issue_updated": issue_updated,
    "worklog_created": worklog_created,
    "worklog_updated": worklog_updated,
    "worklog_deleted": worklog_deleted,
    "jira:version_released": version_released,
    "jira:issue_deleted": issue_deleted,
}


def translate(integration: IntegrationView, delivery: DeliveryView, http: RestClient | None) -> Translation:
    try:
        payload = json.loads(delivery.body)
    except (ValueError, UnicodeDecodeError) as error:
        raise Unreadable(f"not JSON: {error}") from None
    if not isinstance(payload, Mapping):
        raise Unreadable("the body is not a JSON object")
    event = payload.get("webhookEvent")
    if not isinstance(event, str) or not event:
        raise Unreadable("webhookEvent is missing")
    handler = HANDLERS.get(event)
    if handler is None:
        return Translation(event, (), ignored=f"Jira event {event!r} is not one jalon acts on")
    return handler(Context(integration, delivery, http), payload)
