"""Reconciliation: what changed in Bitrix24, and the elapsed time it sends no
event for, for the connector's ``reconcile.bitrix24`` job
(``jalon_source_reconcile``).

Bitrix24 never retries a delivery its receiver missed, and has no event for
elapsed time at all. Every ten minutes the connector asks, for each
integration's mapped groups (``group:<id>``):

* **task states**: the tasks of each group changed since the last success
  (``tasks.task.list`` with ``>=CHANGED_DATE``), each read as the webhook
  path reads it (:func:`.translate.task_event`: a completion at its
  ``closedDate``, anything else a reopening the core applies only to a
  milestone it saw completed), with the **same** ``event_id`` as the webhook
  path (``bitrix24:task:<id>:done:<closedDate>``...), so a completion both
  paths found bills once;
* **elapsed time**: every task of each group (``tasks.task.list``), then the
  elapsed items of those that have logged time (``timeSpentInLogs`` above 0;
  ``task.elapseditem.getlist``, 50 subqueries a ``batch``, every page), as
  :func:`.translate.time_events`: a ``TimeLogged`` per item and, for
  **every** polled task (with no item too), the ``TaskTimeLogs`` listing them
  all, so an item deleted in Bitrix24 is deleted from the ledger. The core
  takes an unchanged item as nothing new.

All calls go through the portal's leaky bucket (two a second after a burst;
see :mod:`.client`), so a large group is read at Bitrix24's pace. Any error
of Bitrix24's, even on the last page, propagates: the run fails for this
integration, nothing it read is stored, and the next run looks back from the
last success again. A task Bitrix24 describes in a way jalon cannot read is
left out (and logged) rather than failing the others.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from jalon.connector.plugin import (
    IntegrationView,
    PermanentFailure,
    RemoteError,
    RestClient,
    Unreadable,
)
from jalon.core.events import CoreEvent, TaskReopened

from . import client, translate
from .connect import parse_group

log = logging.getLogger("jalon.plugins.bitrix24.reconcile")


def changes(integration: IntegrationView, projects: Sequence[str], since: datetime, now: datetime,
            http: RestClient) -> list[CoreEvent]:
    """The task states changed since ``since`` and every task's elapsed time, in the mapped groups."""
    groups = [parse_group(ref) for ref in dict.fromkeys(projects)]
    bitrix = client.Bitrix24Client(http, integration)
    if not bitrix.can_call:
        raise PermanentFailure(f"integration {integration.key} has no Bitrix24 credentials: give an inbound "
                               "webhook (credentials.webhook_url) or an app's tokens")
    found: dict[str, CoreEvent] = {}  # by event id: a task found twice counts once
    for group in groups:
        for task in bitrix.tasks_changed(group, since):
            event = state(integration, task, now)
            if isinstance(event, TaskReopened) and not _status_changed_since(task, since):
                continue  # an open task edited, not reopened: nothing for the core, nothing to store
            if event is not None and event.event_id:
                found.setdefault(event.event_id, event)
    for group in groups:
        for event in time_polled(bitrix, integration, list(bitrix.tasks_of_group(group)), now):
            found.setdefault(event.event_id or "", event)
    return list(found.values())


def state(integration: IntegrationView, task: Mapping[str, Any], now: datetime) -> CoreEvent | None:
    """The task's state as the webhook path reads it; None for a task jalon cannot read."""
    try:
        return translate.task_event(integration, task, occurred_at=now)
    except Unreadable as error:
        log.warning("integration %s: task %s left out of the reconciliation: %s", integration.key,
                    task.get("id"), error)
        return None


def _status_changed_since(task: Mapping[str, Any], since: datetime) -> bool:
    """Whether the task's status changed in the window (unknown: yes, the core decides)."""
    try:
        return translate.parse_time(task.get("statusChangedDate"), "statusChangedDate") >= since
    except Unreadable:
        return True


def people(bitrix: client.Bitrix24Client, user_ids: Sequence[str]) -> dict[str, str]:
    """The e-mail of each user who logged time (``user.get``, 50 a batch), so that time is
    booked to a person as the contracts' rates and members name them; a user Bitrix24
    does not describe keeps its id."""
    answers = bitrix.batch({f"u{user_id}": ("user.get", {"ID": user_id}) for user_id in dict.fromkeys(user_ids)})
    emails: dict[str, str] = {}
    for key, answer in answers.items():
        users = answer if isinstance(answer, list) else []
        email = users[0].get("EMAIL") if users and isinstance(users[0], Mapping) else None
        if isinstance(email, str) and "@" in email:
            emails[key[1:]] = email.strip()
    return emails


def spent(task: Mapping[str, Any]) -> int | None:
    """``timeSpentInLogs`` in seconds; None when Bitrix24 did not say."""
    value = task.get("timeSpentInLogs")
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def time_polled(bitrix: client.Bitrix24Client, integration: IntegrationView, tasks: Sequence[Mapping[str, Any]],
                now: datetime) -> list[CoreEvent]:
    """Every elapsed item of ``tasks`` and, per task, the list of them."""
    with_time = [str(task.get("id")) for task in tasks if task.get("id") and spent(task) != 0]
    items = bitrix.elapsed(with_time)
    users = [str(item.get("USER_ID")) for found in items.values() for item in found if item.get("USER_ID")]
    try:
        who = people(bitrix, users) if users else {}
    except RemoteError as error:  # the time still counts, under the users' ids
        log.warning("integration %s: users' e-mails not read: %s", integration.key, error)
        who = {}
    events: list[CoreEvent] = []
    for task in tasks:
        task_id = str(task.get("id") or "")
        if not task_id:
            continue
        try:
            events.extend(translate.time_events(integration, task, items.get(task_id, []), occurred_at=now,
                                                people=who))
        except Unreadable as error:  # its list is left out whole: a partial one would delete what it omits
            log.warning("integration %s: the elapsed time of task %s is left out: %s", integration.key, task_id,
                        error)
    return events
