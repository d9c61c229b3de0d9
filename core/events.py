"""The core's language: the small immutable events that source plugins emit.

Each event names the integration it came through, the PM project and task, the
actor, and when it happened at the source. Durations are exact seconds.
``event_id`` is the source's own identity for the change when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskEvent:
    integration: str  # the integration's key
    project_ref: str
    task_ref: str
    occurred_at: datetime
    actor: str | None = None
    task_title: str | None = None
    task_url: str | None = None
    task_type: str | None = None
    labels: tuple[str, ...] = ()
    event_id: str | None = None
    # the broader projects the task belongs to, most specific first, tried in turn when no
    # mapping names ``project_ref`` (ClickUp: a task's list, then its folder, then its space)
    project_parents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must carry a timezone")
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "project_parents", tuple(self.project_parents))


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskCompleted(TaskEvent):
    """A task moved into a done status. ``status`` is the status it moved to."""

    status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskReopened(TaskEvent):
    """A task moved out of a done status."""

    status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskDeleted(TaskEvent):
    """A task was deleted in the PM tool. Billing data is never deleted with it:
    when the task completed a milestone, finance is told and decides."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeEvent(TaskEvent):
    worklog_ref: str
    person_ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _WorklogValues(TimeEvent):
    seconds: int
    started_at: datetime | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        TaskEvent.__post_init__(self)
        _check_seconds(self.seconds)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeLogged(_WorklogValues):
    """A new worklog."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeLogChanged(_WorklogValues):
    """A worklog's new values (sources send the new state, not the difference)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeLogDeleted(TimeEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskTimeLogs(TaskEvent):
    """Every worklog of a task, as the tool lists them now (``worklog_refs``): for a tool
    that sends no event when time is deleted (Bitrix24), a polled list. Any other
    worklog of the task in the ledger, older than the list, was deleted."""

    worklog_refs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        TaskEvent.__post_init__(self)
        object.__setattr__(self, "worklog_refs", tuple(str(ref) for ref in self.worklog_refs))


def _check_seconds(seconds: int) -> None:
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise ValueError(f"seconds must be a non-negative integer, not {seconds!r}")


CoreEvent = TaskCompleted | TaskReopened | TaskDeleted | TimeLogged | TimeLogChanged | TimeLogDeleted | TaskTimeLogs


@dataclass(frozen=True, slots=True)
class Outcome:
    """What applying one event did, for the caller (notifications, logs)."""

    event: object
    effect: str  # e.g. "milestone_done", "ignored", "draft_cancelled"
    detail: str = ""
    milestone_id: int | None = None
    invoice_id: int | None = None
    time_entry_id: int | None = None
    extra: dict = field(default_factory=dict)


EVENT_TYPES: dict[str, type] = {kind.__name__: kind for kind in
                                (TaskCompleted, TaskReopened, TaskDeleted, TimeLogged, TimeLogChanged, TimeLogDeleted,
                                 TaskTimeLogs)}
_TIMES = ("occurred_at", "started_at")


def event_to_json(event: CoreEvent) -> dict[str, object]:
    """An event as JSON-safe data (times in ISO 8601 with their offset), e.g.
    to be stored and applied later; :func:`event_from_json` reads it back."""
    data: dict[str, object] = {"type": type(event).__name__}
    for item in fields(event):
        value = getattr(event, item.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, tuple):
            value = list(value)
        data[item.name] = value
    return data


def event_from_json(data: object) -> CoreEvent:
    """The event :func:`event_to_json` wrote; ValueError for anything else."""
    if not isinstance(data, dict) or data.get("type") not in EVENT_TYPES:
        raise ValueError("not a core event")
    kind = EVENT_TYPES[data["type"]]
    names = {item.name for item in fields(kind)}
    values = {key: value for key, value in data.items() if key != "type"}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{data['type']}: unknown fields {', '.join(unknown)}")
    for name in _TIMES:
        if isinstance(values.get(name), str):
            values[name] = datetime.fromisoformat(values[name])
    try:
        return kind(**values)
    except TypeError as error:
        raise ValueError(f"{data['type']}: {error}") from None
