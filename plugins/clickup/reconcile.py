"""Reconciliation: what changed in ClickUp, for the connector's
``reconcile.clickup`` job (``jalon_source_reconcile``).

ClickUp retries a failed delivery a few times, then drops it for good, and
suspends a webhook that failed too often. The connector asks, every ten
minutes, for what changed since each integration's last success; this module
only asks ClickUp, for the mapped locations (``list:<id>``, ``folder:<id>``,
``space:<id>``; a folder or space stands for its lists, found with
``GET /folder/{id}/list``, ``GET /space/{id}/folder`` and ``GET /space/{id}/list``):

* the tasks of those lists updated since then (``GET /list/{id}/task?date_updated_gt=``,
  closed ones and subtasks included): a task in a done status (ClickUp's done
  or closed types, or a status the settings or mappings name) is a
  ``TaskCompleted`` at its ``date_closed`` (else ``date_done``, else
  ``date_updated``). Completions only: an open task says nothing here (a
  reopening comes with its webhook, which names the status it left);
* the time entries of everyone in the Workspace on those locations
  (``GET /team/{team_id}/time_entries`` with every member as ``assignee``:
  ClickUp otherwise answers the token owner's only, and lets only Workspace
  owners and admins ask for others'), started in the last
  :data:`TIME_LOOKBACK` (people log time for earlier days): ``TimeLogged``
  keyed by the entry's id, which the core takes as a change when it knows the
  entry. A running timer is left out. A deleted entry is not listed by
  ClickUp: only its webhook tells.

Each event carries a stable ``event_id`` (the same state found twice is one
delivery, a changed state a new one). Every call goes through the token's
request budget (100 a minute), so a reconciliation over many lists spreads
its calls. ClickUp's errors propagate: the run fails for this integration and
the next one looks back from its last success again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from jalon.connector.plugin import (
    IntegrationView,
    PermanentFailure,
    RestClient,
    Unauthorized,
    Unreadable,
)
from jalon.core.events import CoreEvent, TaskCompleted

from . import client, translate
from .connect import parse_location

# time entries started this long before the window are asked again: an entry logged now for yesterday
TIME_LOOKBACK = timedelta(days=7)
# user ids per time entries call (ClickUp takes them comma-separated in the query)
ASSIGNEES_PER_CALL = 100


def changes(integration: IntegrationView, projects: Sequence[str], since: datetime, now: datetime,
            http: RestClient) -> list[CoreEvent]:
    """Every completion and time entry of the mapped ``projects`` since ``since``, as core events."""
    locations = [parse_location(ref) for ref in dict.fromkeys(projects)]
    team_id = str(integration.settings.get("team_id") or "").strip()
    if not team_id:
        raise PermanentFailure(f"integration {integration.key}: settings.team_id (the ClickUp Workspace id) is not "
                               "set: time entries cannot be reconciled")
    clickup = client.ClickUpClient(http, integration)
    found: dict[str, CoreEvent] = {}  # by event id: a task or entry in two mapped locations counts once
    for list_id in _lists(clickup, locations):
        for task in clickup.tasks_updated(list_id, since):
            event = completion(integration, task)
            if event is not None and event.event_id:
                found.setdefault(event.event_id, event)
    for event in _time_logged(clickup, integration, team_id, locations, start=min(since, now - TIME_LOOKBACK),
                              end=now):
        found.setdefault(event.event_id or "", event)
    return list(found.values())


def completion(integration: IntegrationView, task: Mapping[str, Any]) -> TaskCompleted | None:
    """The task's completion, if its status is a done one."""
    task_id = task.get("id")
    changed = next((task[name] for name in ("date_closed", "date_done", "date_updated")
                    if task.get(name) not in (None, "")), None)
    if not task_id or changed is None:
        return None
    try:
        event = translate.task_event(
            integration, task, occurred_at=translate.from_millis(changed, "task date"), previous_status=None,
            event_id=f"reconcile:{task_id}:{task.get('date_closed') or task.get('date_updated') or changed}")
    except Unreadable:  # a task jalon cannot place (no list, no status): nothing to bill on
        return None
    return event if isinstance(event, TaskCompleted) else None


def time_logged(integration: IntegrationView, entry: Mapping[str, Any]) -> CoreEvent | None:
    """A listed time entry as a ``TimeLogged``; None for a running timer or an entry on no task."""
    entry_id = entry.get("id")
    when = next((entry[name] for name in ("at", "end", "start") if entry.get(name) not in (None, "")), None)
    if not entry_id or when is None:
        return None
    duration = entry.get("duration", entry.get("time"))
    event_id = f"reconcile:time:{entry_id}:{entry.get('at') or ''}:{entry.get('start') or ''}:{duration}"
    try:
        return translate.time_event(integration, entry, "created",
                                    occurred_at=translate.from_millis(when, "time entry date"), event_id=event_id)
    except Unreadable:  # time tracked on no task, or unreadable: nothing to bill on
        return None


def _lists(clickup: client.ClickUpClient, locations: Iterable[tuple[str, str]]) -> list[str]:
    """The ids of the lists the locations stand for, each once, in order."""
    lists: dict[str, None] = {}

    def add(items: Iterable[Mapping[str, Any]]) -> None:
        lists.update((str(item["id"]), None) for item in items if item.get("id") not in (None, ""))

    for kind, ident in locations:
        if kind == "list":
            lists[ident] = None
        elif kind == "folder":
            add(clickup.folder_lists(ident))
        else:
            for folder in clickup.space_folders(ident):
                inside = folder.get("lists")
                add(inside if isinstance(inside, list) else clickup.folder_lists(str(folder.get("id"))))
            add(clickup.space_lists(ident))
    return list(lists)


def _time_logged(clickup: client.ClickUpClient, integration: IntegrationView, team_id: str,
                 locations: Sequence[tuple[str, str]], *, start: datetime, end: datetime) -> Iterator[CoreEvent]:
    members = clickup.team_members(team_id)
    chunks = [",".join(members[i:i + ASSIGNEES_PER_CALL]) for i in range(0, len(members), ASSIGNEES_PER_CALL)]
    for kind, ident in locations:
        for assignee in chunks or [None]:
            try:
                entries = clickup.time_entries(team_id, start, end, assignee=assignee,
                                               **{f"{kind}_id": ident})
            except Unauthorized as error:
                raise Unauthorized(f"{error}: reading everyone's time entries needs the token of a Workspace owner "
                                   "or admin", status=error.status, response=error.response) from None
            for entry in entries:
                event = time_logged(integration, entry)
                if event is not None:
                    yield event
