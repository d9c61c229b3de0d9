"""Bitrix24 deliveries -> core events: a table {event -> handler}.

Bitrix24 deliveries are thin: ``ONTASKUPDATE`` carries the task's id and
nothing else (no status, no project, no user, no time). So:

* ``ONTASKUPDATE`` (``data[FIELDS_AFTER][ID]``, else
  ``data[FIELDS_BEFORE][ID]``): the task is fetched in the worker, never
  during the request (``tasks.task.get`` through :class:`.client.Bitrix24Client`),
  and its **state** is reported (:func:`task_event`):

  * status ``5`` (completed) -> ``TaskCompleted(status="5")`` at the task's
    ``closedDate``, ``event_id`` ``bitrix24:task:<id>:done:<closedDate>``.
    Bitrix24 sends an ``ONTASKUPDATE`` for every edit, so one completion is
    announced many times; each gives this same event (same ``event_id``, same
    ``occurred_at``), which the core applies once (a milestone already done
    is ``unchanged``);
  * status ``4`` (awaiting control: the assignee finished, the creator has
    not accepted yet) -> the same, with ``status="4"``, only when
    ``settings['awaiting_control_is_done']`` is true or a mapping names ``4``
    among its done statuses (``integration.mapped_done_statuses``; the core
    then narrows per mapping); otherwise it is not done;
  * any other status (2 pending, 3 in progress, 6 deferred, ...) ->
    ``TaskReopened(status=<code>)`` at ``statusChangedDate``, ``event_id``
    ``bitrix24:task:<id>:open:<statusChangedDate>``. Bitrix24 does not say
    what the status was before; the core applies a reopen only to a task
    whose milestone it saw completed, and ignores the others;
  * a task the webhook's user cannot see or that no longer exists
    (``tasks.task.get`` answers an empty result) -> ignored, with the reason.

* ``ONTASKDELETE`` (``data[FIELDS_BEFORE][ID]``; ``FIELDS_AFTER`` is the
  string ``"undefined"``) -> ``TaskDeleted`` with an empty ``project_ref``
  (the task is gone: the core finds the milestone it completed), at ``ts``,
  without any call to Bitrix24.
* ``ONTASKADD`` (a new task completes nothing), the comment events, CRM
  events, app events and anything else -> ignored with a reason (2xx).

Bitrix24 sends **no event for elapsed time**: time is polled by
:mod:`.reconcile`, which builds its events with the helpers below.

A body that cannot be read (see :mod:`.form`), without ``event``, or whose
task id is not a number is :class:`Unreadable` (a dead letter, replayable);
so is a task Bitrix24 answers without an id or a status, or with a date
that is not ISO 8601. The REST client's errors (401, 429
``OPERATION_TIME_LIMIT``, 503 ``QUERY_LIMIT_EXCEEDED``, timeouts) are raised
and retried.

**Projects**: a mapping names a Bitrix24 workgroup or project (one kind of
object in Bitrix24, with one id) as ``group:<id>``; the task's ``groupId``
gives ``project_ref``, with no parents (groups do not nest). A task outside
any group (``groupId`` ``0`` or missing) is ``group:0``: map ``group:0`` to
bill the tasks of a portal that uses no groups.

Helpers :mod:`.reconcile` builds events with (from a fetched task, the
camelCase ``result["task"]`` of ``tasks.task.get`` / ``tasks.task.list``,
and its elapsed items; they make no call to Bitrix24):

* ``project_refs(task) -> (project_ref, project_parents)``: ``("group:<id>", ())``,
  ``("group:0", ())`` for a task outside any group.
* ``task_event(integration, task, *, occurred_at, event_id=None, actor=None)
  -> TaskCompleted | TaskReopened | None``: the task's status read as above.
  The event is dated by the task (``closedDate`` for a completion,
  ``statusChangedDate`` for the rest, else ``changedDate``); ``occurred_at``
  is used only when the task carries none of them. ``event_id`` None: the
  ids above. None for a status code jalon does not know (not 1 to 7).
* ``time_events(integration, task, items, *, occurred_at, people=None) -> list[CoreEvent]``:
  ``items`` are **all** the task's elapsed items as
  ``task.elapseditem.getlist`` gives them (``ID``, ``TASK_ID``, ``USER_ID``,
  ``SECONDS``, ``MINUTES``, ``CREATED_DATE``, ``DATE_START``, ``DATE_STOP``,
  ``COMMENT_TEXT``). One ``TimeLogged`` per item: ``worklog_ref`` the item's
  ``ID``, exact ``seconds`` from ``SECONDS`` (``MINUTES`` × 60 when it is
  missing), ``person_ref`` ``USER_ID`` (or what ``people``, a map
  {user id: e-mail} from ``user.get``, says of it: rates may name people by
  e-mail), ``started_at`` ``DATE_START`` (else
  ``CREATED_DATE``), ``description`` ``COMMENT_TEXT``. Then one
  ``TaskTimeLogs(worklog_refs=<every ID>)``: the ledger's other worklogs of
  the task, not changed since, are deleted, which is how a deletion in
  Bitrix24 reaches jalon. All are dated ``occurred_at`` (the poll's time).
  An incomplete list would delete the worklogs it omits: give every item or
  call it not at all.

  Their ``event_id`` is what was found and the day it was found (UTC):
  ``bitrix24:time:<ID>:<YYYYMMDD>:<digest of seconds, start, comment>`` and
  ``bitrix24:task:<id>:timelogs:<YYYYMMDD>:<digest of the IDs>``. So the
  same state found by every run of a day is one delivery (the connector keys
  reconciled deliveries on ``event_id``), a change is a new one at once, and
  a state seen earlier the same day that comes back (an entry edited from 1 h
  to 2 h and back to 1 h, an entry added then deleted) is applied by the
  first run of the next day: polling cannot tell "back to a state already
  reported" from "unchanged" without a key that changes each run, which
  would store one delivery per task per run.
* ``task_fields(integration, task) -> dict``, ``is_done(integration,
  status) -> bool``, ``parse_time(value, what) -> datetime``,
  ``task_url(integration, task_id) -> str | None``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jalon.connector.plugin import (
    DeliveryView,
    IntegrationView,
    RestClient,
    Translation,
    Unreadable,
)
from jalon.core.events import (
    CoreEvent,
    TaskCompleted,
    TaskDeleted,
    TaskReopened,
    TaskTimeLogs,
    TimeLogged,
)

from . import form
from .client import Bitrix24Client
from .verify import mapping_of as _mapping, normal_domain, text_of as _text

COMPLETED = "5"
AWAITING_CONTROL = "4"
# the task statuses of tasks.task.get (fields.md; 1 "new" and 7 "declined" are legacy ones)
STATUSES = {"1": "new", "2": "pending", "3": "in progress", "4": "awaiting control", "5": "completed",
            "6": "deferred", "7": "declined"}
MILESTONE = "milestone"
NO_GROUP = "group:0"
TASK_URL = "https://{domain}/company/personal/user/0/tasks/task/view/{id}/"

IGNORED = {
    "ONTASKADD": "a new task completes nothing (its first status is told by ONTASKUPDATE)",
    "ONTASKCOMMENTADD": "comments bill nothing",
    "ONTASKCOMMENTUPDATE": "comments bill nothing",
    "ONTASKCOMMENTDELETE": "comments bill nothing",
    "ONAPPINSTALL": "the app's installation bills nothing",
    "ONAPPUNINSTALL": "the app's removal bills nothing",
    "ONAPPUPDATE": "the app's update bills nothing",
}
IGNORED_PREFIXES = {"ONCRM": "CRM events bill nothing", "ONUSER": "user events bill nothing",
                    "ONIM": "chat events bill nothing", "ONCALENDAR": "calendar events bill nothing"}


@dataclass
class Context:
    integration: IntegrationView
    delivery: DeliveryView
    http: RestClient | None
    payload: Mapping[str, Any]
    _client: Bitrix24Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Bitrix24Client:
        if self._client is None:
            if self.http is None:
                raise RuntimeError("no REST client to fetch from Bitrix24")
            self._client = Bitrix24Client(self.http, self.integration)
        return self._client


Handler = Callable[[Context, str], Translation]


# --- small readers ---------------------------------------------------------------------------


def _user(value: Any) -> str | None:
    """A user id; ``0`` (nobody) is no user."""
    text = _text(value)
    return None if text in (None, "0") else text


def parse_time(value: Any, what: str) -> datetime:
    """An ISO 8601 date with its offset, as Bitrix24's REST API writes dates."""
    if not isinstance(value, str) or not value.strip():
        raise Unreadable(f"{what} is missing")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Unreadable(f"{what} is not an ISO 8601 date: {value!r}") from None
    if parsed.tzinfo is None:
        raise Unreadable(f"{what} has no offset: {value!r}")
    return parsed


def _time_or_none(value: Any, what: str) -> datetime | None:
    return None if value in (None, "", "0") else parse_time(value, what)


def _from_ts(value: Any) -> datetime | None:
    """``ts``: when the portal queued the event, in Unix seconds."""
    text = _text(value)
    if text is None or not text.isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(text), tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _task_id(payload: Mapping[str, Any]) -> str:
    data = _mapping(payload.get("data"))
    task_id = _text(_mapping(data.get("FIELDS_AFTER")).get("ID")) or _text(_mapping(data.get("FIELDS_BEFORE")).get("ID"))
    if task_id is None:
        raise Unreadable("data[FIELDS_AFTER][ID] and data[FIELDS_BEFORE][ID] are missing: no task id")
    if not task_id.isascii() or not task_id.isdigit() or task_id == "0":
        raise Unreadable(f"the task id is not a Bitrix24 id: {task_id!r}")
    return task_id


# --- the task: project, type, tags ------------------------------------------------------------


def project_refs(task: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """``("group:<groupId>", ())``; ``("group:0", ())`` for a task outside any group."""
    group = _text(task.get("groupId"))
    if group is None:
        group = _text(_mapping(task.get("group")).get("id"))
    return (f"group:{group}" if group else NO_GROUP), ()


def _tags(task: Mapping[str, Any]) -> tuple[str, ...]:
    """The task's tags, whether Bitrix24 lists them as names, as ``{id, title}``
    objects, or keyed by id."""
    tags = task.get("tags")
    if isinstance(tags, Mapping):
        tags = list(tags.values())
    if not isinstance(tags, list):
        return ()
    names = []
    for tag in tags:
        name = _text(tag.get("title") or tag.get("name")) if isinstance(tag, Mapping) else _text(tag)
        if name and name not in names:
            names.append(name)
    return tuple(names)


def task_type(integration: IntegrationView, task: Mapping[str, Any]) -> str:
    """``milestone`` for a task carrying one of ``settings['milestone_tags']``
    (compared without case), else ``task``: Bitrix24 tasks have no type."""
    wanted = {str(tag).casefold() for tag in integration.settings.get("milestone_tags") or () if tag}
    if wanted and any(tag.casefold() in wanted for tag in _tags(task)):
        return MILESTONE
    return "task"


def portal_domain(integration: IntegrationView) -> str | None:
    """The portal's host: ``settings['domain']``, else the integration's
    address, else the host of its inbound webhook or app endpoint."""
    credentials = integration.credentials or {}
    for candidate in (integration.settings.get("domain"), integration.base_url, credentials.get("webhook_url"),
                      credentials.get("client_endpoint")):
        text = _text(candidate)
        if text and (domain := normal_domain(text)):
            return domain
    return None


def task_url(integration: IntegrationView, task_id: str, domain: str | None = None) -> str | None:
    domain = portal_domain(integration) or (normal_domain(domain) if domain else None)
    return TASK_URL.format(domain=domain, id=task_id) if domain else None


def task_fields(integration: IntegrationView, task: Mapping[str, Any], *, domain: str | None = None) -> dict[str, Any]:
    """What every event about a fetched task says of it."""
    task_id = _text(task.get("id")) or _text(task.get("ID"))
    if task_id is None:
        raise Unreadable("the task has no id")
    project_ref, parents = project_refs(task)
    return {
        "integration": integration.key,
        "project_ref": project_ref,
        "project_parents": parents,
        "task_ref": task_id,
        "task_title": _text(task.get("title")),
        "task_url": task_url(integration, task_id, domain),
        "task_type": task_type(integration, task),
        "labels": _tags(task),
    }


def is_done(integration: IntegrationView, status: str | None) -> bool:
    """``5``; ``4`` too when the settings or a mapping say awaiting control is done."""
    if status == COMPLETED:
        return True
    if status == AWAITING_CONTROL:
        return integration.settings.get("awaiting_control_is_done") is True or \
            AWAITING_CONTROL in {str(s).strip() for s in integration.mapped_done_statuses}
    return False


# --- events from a task's state and its elapsed items (also used by reconcile.py) -------------


def task_event(integration: IntegrationView, task: Mapping[str, Any], *, occurred_at: datetime,
               event_id: str | None = None, actor: str | None = None,
               domain: str | None = None) -> TaskCompleted | TaskReopened | None:
    """The task's status read as a completion or a reopening (see the module's docstring)."""
    common = task_fields(integration, task, domain=domain)
    task_id = common["task_ref"]
    status = _text(task.get("status"))
    if status is None:
        raise Unreadable(f"task {task_id} has no status")
    if status not in STATUSES:
        return None
    closed = _text(task.get("closedDate"))
    status_changed = _text(task.get("statusChangedDate"))
    changed = _text(task.get("changedDate"))
    if is_done(integration, status):
        stamp = closed or status_changed or changed
        when = parse_time(stamp, f"task {task_id} closedDate") if stamp else occurred_at
        return TaskCompleted(**common, status=status, occurred_at=when,
                             event_id=event_id or f"bitrix24:task:{task_id}:done:{stamp or when.isoformat()}",
                             actor=actor or _user(task.get("closedBy")) or _user(task.get("statusChangedBy")))
    stamp = status_changed or changed
    when = parse_time(stamp, f"task {task_id} statusChangedDate") if stamp else occurred_at
    return TaskReopened(**common, status=status, occurred_at=when,
                        event_id=event_id or f"bitrix24:task:{task_id}:open:{stamp or when.isoformat()}",
                        actor=actor or _user(task.get("statusChangedBy")) or _user(task.get("changedBy")))


def _seconds(item: Mapping[str, Any], item_id: str) -> int:
    """Exact seconds: ``SECONDS`` (a whole number, sent as a string), else ``MINUTES`` × 60."""
    for name, factor in (("SECONDS", 1), ("MINUTES", 60)):
        value = item.get(name)
        if value in (None, ""):
            continue
        text = _text(value)
        if text is None or not text.isascii() or not text.isdigit():
            raise Unreadable(f"elapsed item {item_id}: {name} is not a whole number: {value!r}")
        return int(text) * factor
    raise Unreadable(f"elapsed item {item_id} has no SECONDS")


def time_events(integration: IntegrationView, task: Mapping[str, Any], items: Sequence[Mapping[str, Any]], *,
                occurred_at: datetime, people: Mapping[str, str] | None = None) -> list[CoreEvent]:
    """Every elapsed item of the task as a ``TimeLogged``, then the list of
    them as a ``TaskTimeLogs`` (see the module's docstring)."""
    common = task_fields(integration, task)
    task_id = common["task_ref"]
    day = occurred_at.astimezone(UTC).strftime("%Y%m%d")
    events: list[CoreEvent] = []
    refs: list[str] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise Unreadable(f"task {task_id}: an elapsed item is not an object")
        item_id = _text(item.get("ID"))
        if item_id is None:
            raise Unreadable(f"task {task_id}: an elapsed item has no ID")
        item_task = _text(item.get("TASK_ID"))
        if item_task is not None and item_task != task_id:
            raise Unreadable(f"elapsed item {item_id} belongs to task {item_task}, not {task_id}")
        if item_id in refs:
            continue
        refs.append(item_id)
        seconds = _seconds(item, item_id)
        started_at = _time_or_none(item.get("DATE_START"), f"elapsed item {item_id} DATE_START") or \
            _time_or_none(item.get("CREATED_DATE"), f"elapsed item {item_id} CREATED_DATE")
        description = _text(item.get("COMMENT_TEXT"))
        digest = _digest(str(seconds), started_at.isoformat() if started_at else "", description or "")
        user = _user(item.get("USER_ID"))
        person = (people or {}).get(user, user) if user else None
        events.append(TimeLogged(**common, occurred_at=occurred_at, event_id=f"bitrix24:time:{item_id}:{day}:{digest}",
                                 actor=person, worklog_ref=item_id, person_ref=person, seconds=seconds,
                                 started_at=started_at, description=description))
    events.append(TaskTimeLogs(**common, occurred_at=occurred_at, worklog_refs=tuple(refs),
                               event_id=f"bitrix24:task:{task_id}:timelogs:{day}:{_digest(*sorted(refs))}"))
    return events


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


# --- handlers --------------------------------------------------------------------------------


def _received(ctx: Context) -> datetime:
    """When the portal queued the event (``ts``), else when jalon received it."""
    return _from_ts(ctx.payload.get("ts")) or ctx.delivery.received_at


def task_updated(ctx: Context, event: str) -> Translation:
    task_id = _task_id(ctx.payload)
    task = ctx.client.task(task_id)
    if not task:
        return Translation(event, (), ignored=f"task {task_id} is not in Bitrix24, or the webhook's user "
                                              "cannot see it (tasks.task.get answered no task)")
    if not isinstance(task, Mapping):
        raise Unreadable(f"Bitrix24 answered task {task_id} with something that is not a task")
    task = {**task, "id": _text(task.get("id")) or task_id}
    domain = _text(_mapping(ctx.payload.get("auth")).get("domain"))
    found = task_event(ctx.integration, task, occurred_at=_received(ctx), domain=domain)
    if found is None:
        return Translation(event, (), ignored=f"task {task_id}: status {task.get('status')!r} is not one "
                                              "jalon knows")
    return Translation(event, [found])


def task_deleted(ctx: Context, event: str) -> Translation:
    task_id = _task_id(ctx.payload)
    domain = _text(_mapping(ctx.payload.get("auth")).get("domain"))
    return Translation(event, [TaskDeleted(
        integration=ctx.integration.key, project_ref="", task_ref=task_id,
        task_url=task_url(ctx.integration, task_id, domain), occurred_at=_received(ctx),
        event_id=f"bitrix24:task:{task_id}:deleted")])


HANDLERS: dict[str, Handler] = {
    "ONTASKUPDATE": task_updated,
    "ONTASKDELETE": task_deleted,
}


def ignored_reason(event: str) -> str:
    if event in IGNORED:
        return f"Bitrix24 {event}: {IGNORED[event]}"
    for prefix, reason in IGNORED_PREFIXES.items():
        if event.startswith(prefix):
            return f"Bitrix24 {event}: {reason}"
    return f"Bitrix24 event {event!r} is not one jalon acts on"


def translate(integration: IntegrationView, delivery: DeliveryView, http: RestClient | None) -> Translation:
    payload = form.parse(delivery.body)
    event = _text(payload.get("event"))
    if event is None:
        raise Unreadable("event is missing")
    event = event.upper()
    handler = HANDLERS.get(event)
    if handler is None:
        return Translation(event, (), ignored=ignored_reason(event))
    return handler(Context(integration, delivery, http, payload), event)
