"""ClickUp deliveries -> core events: a table {event -> handler}.

* ``taskStatusUpdated``: its status history item (``field == "status"``) moves
  the task into a done status -> ``TaskCompleted(status=<new status>)``; out
  of one -> ``TaskReopened``. A status is done when ClickUp gives it the type
  ``done`` or ``closed``, or when its name is in the integration's
  ``settings['done_statuses']`` or in the statuses its mappings name
  (``integration.mapped_done_statuses``: custom statuses such as "livré" or
  "validé client" have the type ``custom``). Names are compared after Unicode
  NFC normalisation and ``casefold()``: "Livré" typed with a combining accent
  equals "livré", accents still count ("livre" is another status).
  The status item ClickUp sends when a task is created (``before`` missing,
  ``null``, without a status, or of type ``removed``) is not a transition: a
  task created directly in a closed status completes nothing. Other
  transitions are ignored without any call to ClickUp.
* ``taskTimeTrackedUpdated`` with ``data.description`` "Time Tracking
  Created" / "Edited" (or "Updated") / "Deleted" (read leniently, and from
  ``before``/``after`` when it is missing) -> ``TimeLogged`` /
  ``TimeLogChanged`` / ``TimeLogDeleted`` keyed ``worklog_ref =
  data.interval_id``. Durations are milliseconds, sent as strings or
  numbers, converted exactly: 900000 -> 900 s; a duration that is not a whole
  number of seconds is rounded half-up to the second (1500 ms -> 2 s, 1499 ms
  -> 1 s). A negative duration (a timer still running) is ignored. The entry
  is fetched (``GET /team/{team_id}/time_entries/{id}``) only when the history
  item lacks its user, start or duration.
* ``taskDeleted`` -> ``TaskDeleted``: billing data is never deleted; when the
  task had completed a milestone, finance is told. The task is looked up for
  its list; when ClickUp no longer has it, the event names no project.
* ``taskUpdated``: ClickUp sends it beside the granular event for the same
  change, with the same history items, hence the same delivery key (see
  :mod:`.verify`): whichever of the two arrives first is stored, the other is
  a duplicate. So it is read as its granular twin: with a status item as
  ``taskStatusUpdated``, with a ``time_spent`` item as
  ``taskTimeTrackedUpdated``, giving the same events (same ``event_id``);
  any other change is ignored. Were both ever stored, the core applies the
  second as a repeat.
* ``taskCreated``, comments, priority, assignees, due dates, tags, moves,
  estimates and the list, folder, space, goal and key result events are
  ignored with a reason; so is any event jalon does not know.

Payloads name no list, folder or space (a history item's ``parent_id`` is a
hint only): the task is fetched (``GET /task/{id}``) in the worker, never
during the request, for its list, folder and space, type, tags, name and URL.
Its ``project_ref`` is ``list:<id>`` and its ``project_parents``
``("folder:<id>", "space:<id>")`` (a folderless list's hidden folder left
out): the core applies the event under the first an admin mapped.

A body that is not a JSON object, or lacks what a handler needs, is
:class:`Unreadable` (a dead letter, replayable). A task ClickUp no longer has
(404) too. 401/403, 429, 5xx, timeouts and bad JSON are raised and retried.

Helpers :mod:`.reconcile` builds events with (from a fetched task or time
entry; they make no call to ClickUp):

* ``project_refs(task) -> (project_ref, project_parents)``: ``("list:<id>",
  ("folder:<id>", "space:<id>"))``; :class:`Unreadable` when the task names
  no list.
* ``task_event(integration, task, *, occurred_at, previous_status, event_id,
  actor=None) -> TaskCompleted | TaskReopened | None``: the task's status
  (``task["status"]``, ``{status, type}``) read as above. Done ->
  ``TaskCompleted``. Not done -> ``TaskReopened`` when ``previous_status``
  (the ``{status, type}`` it left) was done, or when ``previous_status`` is
  ``None`` (unknown: the tool's state is reported, and the core applies a
  reopen only to a task whose milestone was completed); ``None`` when the
  previous status is known and was not done either.
* ``time_event(integration, entry, kind, *, occurred_at, event_id,
  task=None, actor=None) -> TimeLogged | TimeLogChanged | TimeLogDeleted |
  None``: ``entry`` as ``GET /team/{team_id}/time_entries/{id}`` gives it
  (``id``, ``task.id``, ``user``, ``start``, ``end``, ``duration`` in ms;
  ``time`` is read as ``duration`` too), ``kind`` ``"created"``, ``"edited"``
  or ``"deleted"``. The project comes from ``task`` (the fetched task), else
  from the entry's ``task_location`` (``list_id``, ``folder_id``,
  ``space_id``); a deletion without either names no project (the core finds
  the worklog in its ledger); a creation or change without either is
  :class:`Unreadable`. **None for a running timer** (negative duration):
  leave it out.
* ``seconds_from_millis(value) -> int | None``, ``from_millis(value) ->
  datetime``, ``is_done_status(integration, status) -> bool``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

from jalon.connector.plugin import (
    DeliveryView,
    IntegrationView,
    NotFound,
    RemoteError,
    RestClient,
    Translation,
    Unreadable,
)
from jalon.core.events import (
    TaskCompleted,
    TaskDeleted,
    TaskReopened,
    TimeLogChanged,
    TimeLogDeleted,
    TimeLogged,
)

from .client import ClickUpClient
from .verify import text_of as _text

DONE_TYPES = frozenset({"done", "closed"})
# ClickUp's built-in "Milestone" task type (custom task types: 0 is a plain task)
MILESTONE_ITEM_ID = "1"
MILESTONE = "milestone"
TASK_URL = "https://app.clickup.com/t/{id}"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TimeKind = Literal["created", "edited", "deleted"]

IGNORED: dict[str, str] = {
    "taskCreated": "a new task completes nothing; its later status changes are read",
    "taskPriorityUpdated": "a priority does not bill",
    "taskAssigneeUpdated": "assignees do not bill; time entries name their person",
    "taskDueDateUpdated": "a due date does not bill",
    "taskTagUpdated": "tags are read from the task when it completes",
    "taskMoved": "the task's list is read from ClickUp when it completes or time is tracked",
    "taskCommentPosted": "comments do not bill",
    "taskCommentUpdated": "comments do not bill",
    "taskTimeEstimateUpdated": "estimates do not bill; tracked time does",
}
# list*, folder*, space*, goal*, keyResult*: the hierarchy and goals bill nothing
IGNORED_PREFIXES = ("list", "folder", "space", "goal", "keyResult")


@dataclass
class Context:
    integration: IntegrationView
    delivery: DeliveryView
    http: RestClient | None
    _client: ClickUpClient | None = field(default=None, repr=False)

    @property
    def client(self) -> ClickUpClient:
        if self._client is None:
            if self.http is None:
                raise RuntimeError("no REST client to fetch from ClickUp")
            self._client = ClickUpClient(self.http, self.integration)
        return self._client


Handler = Callable[[Context, Mapping[str, Any]], Translation]


# --- small readers ---------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _decimal(value: Any, what: str) -> Decimal:
    """A number ClickUp sends as a string ("900000") or a number (900000)."""
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Unreadable(f"{what} is missing or not a number of milliseconds: {value!r}")
    else:
        try:
            number = Decimal(value.strip() if isinstance(value, str) else str(value))
        except InvalidOperation:
            raise Unreadable(f"{what} is not a number of milliseconds: {value!r}") from None
    if not number.is_finite():
        raise Unreadable(f"{what} is not a number of milliseconds: {value!r}")
    return number


def from_millis(value: Any, what: str = "timestamp") -> datetime:
    """Unix milliseconds (a string or a number) as an aware UTC datetime, exactly."""
    millis = _decimal(value, what)
    return EPOCH + timedelta(microseconds=int((millis * 1000).to_integral_value(ROUND_HALF_UP)))


def seconds_from_millis(value: Any, what: str = "duration") -> int | None:
    """Milliseconds as whole seconds, exactly (900000 -> 900), a fraction of a
    second rounded half-up (1500 -> 2); None for a negative duration (ClickUp's
    running timer)."""
    millis = _decimal(value, what)
    if millis < 0:
        return None
    return int((millis / 1000).to_integral_value(ROUND_HALF_UP))


def _norm(name: str) -> str:
    """Status and tag names compared as a person reads them: one Unicode
    composition (NFC), no case; accents still count."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", name).casefold())


def _done_names(integration: IntegrationView) -> frozenset[str]:
    named = list(integration.settings.get("done_statuses") or ()) + list(integration.mapped_done_statuses or ())
    return frozenset(_norm(str(name)) for name in named if name)


def is_done_status(integration: IntegrationView, status: Any) -> bool:
    """A ``{status, type}`` of type done/closed, or whose name the settings or mappings call done."""
    status = _mapping(status)
    if status is None:
        return False
    if str(status.get("type") or "").lower() in DONE_TYPES:
        return True
    name = _text(status.get("status"))
    return name is not None and _norm(name) in _done_names(integration)


def _status_name(status: Mapping[str, Any] | None) -> str | None:
    name = _text(status.get("status")) if status is not None else None
    return unicodedata.normalize("NFC", name) if name else None


def _person(user: Any) -> str | None:
    """A ClickUp user's e-mail, else their id."""
    user = _mapping(user)
    if user is None:
        return None
    return _text(user.get("email")) or _text(user.get("id"))


def _task_id(payload: Mapping[str, Any]) -> str:
    task_id = _text(payload.get("task_id"))
    if task_id is None:
        raise Unreadable("task_id is missing")
    return task_id


def _history(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = payload.get("history_items")
    return [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []


def _item(payload: Mapping[str, Any], field_name: str) -> Mapping[str, Any] | None:
    return next((item for item in _history(payload) if item.get("field") == field_name), None)


def _occurred_at(ctx: Context, item: Mapping[str, Any] | None) -> datetime:
    """The history item's ``date``, else when jalon received the delivery."""
    if item is not None and item.get("date") not in (None, ""):
        return from_millis(item["date"], "history item date")
    return ctx.delivery.received_at


# --- the task: project, type, tags ------------------------------------------------------------


def project_refs(task: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """``("list:<id>", ("folder:<id>", "space:<id>"))`` of a fetched task,
    most specific first; a folderless list's hidden folder is left out."""
    lst, folder, space = (_mapping(task.get(name)) or {} for name in ("list", "folder", "space"))
    list_id = _text(lst.get("id"))
    if list_id is None:
        raise Unreadable(f"task {_text(task.get('id'))} names no list")
    parents = []
    folder_id = _text(folder.get("id"))
    if folder_id and folder.get("hidden") not in (True, "true"):
        parents.append(f"folder:{folder_id}")
    space_id = _text(space.get("id"))
    if space_id:
        parents.append(f"space:{space_id}")
    return f"list:{list_id}", tuple(parents)


def _tags(task: Mapping[str, Any]) -> tuple[str, ...]:
    tags = task.get("tags") if isinstance(task.get("tags"), list) else []
    return tuple(name for tag in tags if (name := _text(tag.get("name") if isinstance(tag, Mapping) else tag)))


def task_type(integration: IntegrationView, task: Mapping[str, Any]) -> str:
    """``milestone`` for ClickUp's Milestone task type (unless
    ``settings['bill_milestone_type']`` is false) or a task tagged with one of
    ``settings['milestone_tags']``; ``task`` for a plain task;
    ``custom_item:<id>`` for another custom task type."""
    settings = integration.settings
    custom = _text(task.get("custom_item_id"))
    if custom == MILESTONE_ITEM_ID and settings.get("bill_milestone_type", True) is not False:
        return MILESTONE
    wanted = {_norm(str(tag)) for tag in settings.get("milestone_tags") or () if tag}
    if wanted and any(_norm(tag) in wanted for tag in _tags(task)):
        return MILESTONE
    if custom in (None, "0"):
        return "task"
    return f"custom_item:{custom}"


def task_fields(integration: IntegrationView, task: Mapping[str, Any]) -> dict[str, Any]:
    """What every event about a fetched task says of it."""
    task_id = _text(task.get("id"))
    if task_id is None:
        raise Unreadable("the task has no id")
    project_ref, parents = project_refs(task)
    return {
        "integration": integration.key,
        "project_ref": project_ref,
        "project_parents": parents,
        "task_ref": task_id,
        "task_title": _text(task.get("name")),
        "task_url": _text(task.get("url")) or TASK_URL.format(id=task_id),
        "task_type": task_type(integration, task),
        "labels": _tags(task),
    }


def _fetch_task(ctx: Context, task_id: str) -> Mapping[str, Any]:
    try:
        task = ctx.client.task(task_id)
    except NotFound:
        raise Unreadable(f"task {task_id} not found in ClickUp") from None
    if not isinstance(task, Mapping):
        raise Unreadable(f"ClickUp answered task {task_id} with something that is not a task")
    return {**task, "id": _text(task.get("id")) or task_id}


def _fetch_task_if_any(ctx: Context, task_id: str) -> Mapping[str, Any] | None:
    """The task, or None when ClickUp no longer has it (deleted)."""
    try:
        return _fetch_task(ctx, task_id)
    except Unreadable:
        return None
    except RemoteError as error:
        # a deleted task may be answered with another 4xx than 404; throttling,
        # refused credentials and outages are still retried
        if type(error) is RemoteError and error.status is not None and 400 <= error.status < 500:
            return None
        raise


# --- events from a task's state and from a time entry (also used by reconcile.py) -------------


def _status_event(integration: IntegrationView, task: Mapping[str, Any], status: Mapping[str, Any] | None,
                  previous: Mapping[str, Any] | None, *, occurred_at: datetime, event_id: str | None,
                  actor: str | None, previous_known: bool) -> TaskCompleted | TaskReopened | None:
    common = task_fields(integration, task) | {
        "occurred_at": occurred_at, "event_id": event_id, "actor": actor, "status": _status_name(status),
    }
    if is_done_status(integration, status):
        return TaskCompleted(**common)
    if not previous_known or is_done_status(integration, previous):
        return TaskReopened(**common)
    return None


def task_event(integration: IntegrationView, task: Mapping[str, Any], *, occurred_at: datetime,
               previous_status: Mapping[str, Any] | None, event_id: str | None,
               actor: str | None = None) -> TaskCompleted | TaskReopened | None:
    """The task's current status read as a completion or a reopening (see the module's docstring)."""
    status = _mapping(task.get("status"))
    if status is None:
        raise Unreadable(f"task {_text(task.get('id'))} has no status")
    return _status_event(integration, task, status, _mapping(previous_status), occurred_at=occurred_at,
                         event_id=event_id, actor=actor, previous_known=previous_status is not None)


def _entry_location(entry: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    location = _mapping(entry.get("task_location")) or {}
    list_id = _text(location.get("list_id"))
    if list_id is None:
        return None
    parents = tuple(f"{kind}:{value}" for kind in ("folder", "space")
                    if (value := _text(location.get(f"{kind}_id"))))
    return f"list:{list_id}", parents


def time_event(integration: IntegrationView, entry: Mapping[str, Any], kind: TimeKind, *, occurred_at: datetime,
               event_id: str | None, task: Mapping[str, Any] | None = None,
               actor: str | None = None) -> TimeLogged | TimeLogChanged | TimeLogDeleted | None:
    """A time entry as a core event (see the module's docstring); None for a running timer."""
    if kind not in ("created", "edited", "deleted"):
        raise ValueError(f"kind must be created, edited or deleted, not {kind!r}")
    worklog_ref = _text(entry.get("id"))
    if worklog_ref is None:
        raise Unreadable("the time entry has no id")
    entry_task = entry.get("task")
    task_id = _text(entry_task.get("id")) if isinstance(entry_task, Mapping) else _text(entry_task)
    if task is not None:
        common = task_fields(integration, task)
    else:
        location = _entry_location(entry)
        if location is None and kind != "deleted":
            raise Unreadable(f"time entry {worklog_ref} names no list: give its task")
        project_ref, parents = location or ("", ())
        common = {"integration": integration.key, "project_ref": project_ref, "project_parents": parents,
                  "task_ref": task_id or "", "task_url": TASK_URL.format(id=task_id) if task_id else None}
    user = _person(entry.get("user"))
    common |= {"occurred_at": occurred_at, "event_id": event_id, "worklog_ref": worklog_ref,
               "person_ref": user, "actor": actor or user}
    if kind == "deleted":
        return TimeLogDeleted(**common)
    duration = entry.get("duration", entry.get("time"))
    if duration in (None, "") and entry.get("start") not in (None, "") and entry.get("end") not in (None, ""):
        duration = _decimal(entry["end"], "time entry end") - _decimal(entry["start"], "time entry start")
    seconds = seconds_from_millis(duration, f"time entry {worklog_ref} duration")
    if seconds is None:
        return None
    values = {
        "seconds": seconds,
        "started_at": from_millis(entry["start"], "time entry start") if entry.get("start") not in (None, "") else None,
        "description": _text(entry.get("description")),
    }
    kind_type = TimeLogged if kind == "created" else TimeLogChanged
    return kind_type(**common, **values)


# --- handlers --------------------------------------------------------------------------------


def _is_creation(before: Any) -> bool:
    """The status item ClickUp sends with a new task: no status before it."""
    before = _mapping(before)
    return before is None or str(before.get("type") or "").lower() == "removed" or _text(before.get("status")) is None


def status_updated(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    event = str(payload["event"])
    task_id = _task_id(payload)
    item = _item(payload, "status")
    if item is None:
        return Translation(event, (), ignored=f"task {task_id}: no status history item")
    before, after = item.get("before"), _mapping(item.get("after"))
    if after is None or (_text(after.get("status")) is None and _text(after.get("type")) is None):
        raise Unreadable(f"task {task_id}: the status history item has no new status")
    if _is_creation(before):
        return Translation(event, (), ignored=f"task {task_id}: the status a task is created with is not a "
                                              "transition (a task created in a closed status completes nothing)")
    if not is_done_status(ctx.integration, after) and not is_done_status(ctx.integration, before):
        return Translation(event, (), ignored=f"task {task_id}: status {_status_name(after)!r} is not a done "
                                              f"status, nor was {_status_name(_mapping(before))!r}")
    task = _fetch_task(ctx, task_id)
    change = _text(item.get("id")) or _text(item.get("date")) or "?"
    result = _status_event(ctx.integration, task, after, _mapping(before), occurred_at=_occurred_at(ctx, item),
                           event_id=f"clickup:task:{task_id}:history:{change}", actor=_person(item.get("user")),
                           previous_known=True)
    return Translation(event, [result] if result is not None else ())


def _time_kind(description: Any, before: Any, after: Any) -> TimeKind | None:
    """"Time Tracking Created|Edited|Deleted", leniently; from before/after when unsaid."""
    text = description.lower() if isinstance(description, str) else ""
    if "delet" in text or "remov" in text:
        return "deleted"
    if "creat" in text or "add" in text:
        return "created"
    if "edit" in text or "updat" in text or "chang" in text:
        return "edited"
    before, after = _mapping(before), _mapping(after)
    if after is None and before is not None:
        return "deleted"
    if after is not None:
        return "created" if before is None else "edited"
    return None


def _team_id(ctx: Context, payload: Mapping[str, Any]) -> str:
    team_id = _text(ctx.integration.settings.get("team_id")) or _text(payload.get("team_id"))
    if team_id is None:
        raise Unreadable("settings.team_id (the ClickUp Workspace id) is not set: the time entry cannot be fetched")
    return team_id


def time_tracked_updated(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    event = str(payload["event"])
    task_id = _task_id(payload)
    data = _mapping(payload.get("data")) or {}
    item = _item(payload, "time_spent") or next(iter(_history(payload)), None)
    before = _mapping(item.get("before")) if item is not None else None
    after = _mapping(item.get("after")) if item is not None else None
    interval_id = (_text(data.get("interval_id")) or _text((after or {}).get("id"))
                   or _text((before or {}).get("id")))
    if interval_id is None:
        raise Unreadable(f"task {task_id}: data.interval_id (the time entry id) is missing")
    kind = _time_kind(data.get("description"), before, after)
    if kind is None:
        raise Unreadable(f"task {task_id}: cannot tell whether time entry {interval_id} was created, edited "
                         f"or deleted (data.description {data.get('description')!r})")
    occurred_at = _occurred_at(ctx, item)
    change = (_text(item.get("id")) if item is not None else None) or str(int(occurred_at.timestamp() * 1000))
    event_id = f"clickup:time:{interval_id}:{kind}:{change}"
    actor = _person(item.get("user")) if item is not None else None
    if kind == "deleted":
        entry: Mapping[str, Any] = {"id": interval_id, "task": {"id": task_id}, "user": (before or {}).get("user")}
        found = time_event(ctx.integration, entry, kind, occurred_at=occurred_at, event_id=event_id,
                           task=_fetch_task_if_any(ctx, task_id), actor=actor)
        return Translation(event, [found] if found is not None else ())
    state = after or {}
    entry = {"id": interval_id, "task": {"id": task_id}, "user": state.get("user") or (item or {}).get("user"),
             "start": state.get("start"), "end": state.get("end"),
             "duration": state.get("duration", state.get("time")), "description": state.get("description")}
    if any(entry[name] in (None, "") for name in ("user", "start", "duration")):
        fetched = ctx.client.time_entry(_team_id(ctx, payload), interval_id)
        if fetched is None and entry["duration"] in (None, ""):
            return Translation(event, (), ignored=f"time entry {interval_id} is no longer in ClickUp: "
                                                  "its deletion is another delivery")
        if fetched is not None:
            entry |= {name: value for name, value in fetched.items()
                      if name in ("user", "start", "end", "duration", "description") and value not in (None, "")}
    if entry["duration"] not in (None, "") and seconds_from_millis(entry["duration"]) is None:
        return Translation(event, (), ignored=f"time entry {interval_id}: its timer is still running "
                                              "(negative duration)")
    found = time_event(ctx.integration, entry, kind, occurred_at=occurred_at, event_id=event_id,
                       task=_fetch_task(ctx, task_id), actor=actor)
    if found is None:
        return Translation(event, (), ignored=f"time entry {interval_id}: its timer is still running")
    return Translation(event, [found])


def task_updated(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    """The generic event, read as the granular one it duplicates (whichever
    of the two ClickUp delivers first is the one stored)."""
    if _item(payload, "status") is not None:
        return status_updated(ctx, payload)
    if _item(payload, "time_spent") is not None:
        return time_tracked_updated(ctx, payload)
    fields_changed = sorted({str(item.get("field")) for item in _history(payload) if item.get("field")})
    return Translation(str(payload["event"]), (), ignored=f"ClickUp taskUpdated: no status or tracked time change "
                                                          f"({', '.join(fields_changed) or 'no history item'})")


def task_deleted(ctx: Context, payload: Mapping[str, Any]) -> Translation:
    event = str(payload["event"])
    task_id = _task_id(payload)
    task = _fetch_task_if_any(ctx, task_id)
    if task is not None:
        common = task_fields(ctx.integration, task)
    else:  # gone from ClickUp: its list is unknown
        common = {"integration": ctx.integration.key, "project_ref": "", "task_ref": task_id,
                  "task_url": TASK_URL.format(id=task_id)}
    return Translation(event, [TaskDeleted(**common, occurred_at=ctx.delivery.received_at,
                                           event_id=f"clickup:task:{task_id}:deleted")])


HANDLERS: dict[str, Handler] = {
    "taskStatusUpdated": status_updated,
    "taskTimeTrackedUpdated": time_tracked_updated,
    "taskUpdated": task_updated,
    "taskDeleted": task_deleted,
}


def ignored_reason(event: str) -> str:
    if event in IGNORED:
        return f"ClickUp {event}: {IGNORED[event]}"
    if event.startswith(IGNORED_PREFIXES):
        return f"ClickUp {event}: lists, folders, spaces and goals bill nothing"
    return f"ClickUp event {event!r} is not one jalon acts on"


def translate(integration: IntegrationView, delivery: DeliveryView, http: RestClient | None) -> Translation:
    try:
        payload = json.loads(delivery.body)
    except (ValueError, UnicodeDecodeError) as error:
        raise Unreadable(f"not JSON: {error}") from None
    if not isinstance(payload, Mapping):
        raise Unreadable("the body is not a JSON object")
    event = payload.get("event")
    if not isinstance(event, str) or not event:
        raise Unreadable("event is missing")
    handler = HANDLERS.get(event)
    if handler is None:
        return Translation(event, (), ignored=ignored_reason(event))
    return handler(Context(integration, delivery, http), payload)
