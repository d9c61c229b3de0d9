"""Reconciliation: what a tool did not deliver, asked for on a schedule.

Jira Cloud retries a failed delivery for minutes only, Data Center and
Bitrix24 not at all, and ClickUp gives up on a webhook that failed too often:
an outage of the receiver loses events. So every source plugin that
implements ``jalon_source_reconcile`` gets a job, ``reconcile.<source>``, that
asks each of its enabled integrations with mapped projects what changed.

The connector owns everything but the question:

* the schedule (every ``JALON_RECONCILE_INTERVAL_SECONDS``, ten minutes by
  default) and the cursor: each integration looks
  back from its own last success (:class:`~jalon.core.models.SourceCursor`)
  minus ``OVERLAP`` (clocks differ, tools index changes late), or
  ``FIRST_LOOKBACK`` the first time;
* isolation: one integration failing, whatever the exception, never stops the
  others; its cursor stays where it was, so the next run looks back further,
  and the run is recorded failed with each failure's reason;
* the path: each event found becomes a **synthetic delivery** in the inbox
  (``origin = 'reconcile'``, the event itself as the body, keyed by the event's
  ``event_id``), processed by the worker like any webhook delivery: visible in
  the delivery log, replayable, and deduplicated (the same change found by two
  runs is stored once; a change the webhook brought too bills nothing twice,
  since the core is idempotent on task states and worklogs).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from jalon.core.db import insert_ignoring_conflicts
from jalon.core.events import CoreEvent, event_to_json
from jalon.core.models import Delivery, Integration, Mapping, SourceCursor

from jalon.connector.plugin.manager import sources
from jalon.connector.plugin.types import IntegrationView, JobSpec
from jalon.connector.relay.intake import integration_view, mapped_done_statuses
from jalon.connector.relay.worker import RECONCILE
from jalon.connector.runtime import Runtime

log = logging.getLogger("jalon.connector.jobs.reconcile")

JOB_PREFIX = "reconcile."
ORIGIN = RECONCILE
# looked back beyond the last success: clocks differ, and tools index changes late
OVERLAP = timedelta(minutes=15)
# the first run of an integration (no success yet) looks back this far
FIRST_LOOKBACK = timedelta(hours=24)
MAX_KEY_LENGTH = 200


class ReconcileFailed(RuntimeError):
    """Some integrations could not be reconciled; the others were."""


def reconcile_jobs(runtime: Runtime) -> list[JobSpec]:
    """One job per source whose plugin says what changed (``jalon_source_reconcile``)."""
    jobs = []
    for name, spec in sorted(sources(runtime.pm).items()):
        hooks = runtime.pm.source(name)
        if hooks is not None and hooks.jalon_source_reconcile.get_hookimpls():
            interval = timedelta(seconds=runtime.settings.reconcile_interval_seconds)
            jobs.append(JobSpec(name=JOB_PREFIX + name, interval=interval, run=_runner(name),
                                description=f"Ask {spec.title} what changed that no webhook brought"))
    return jobs


def _runner(source: str) -> Any:
    def run(context: Any) -> dict[str, Any]:
        return reconcile_source(context.runtime, source, now=context.now)

    return run


def reconcile_source(runtime: Runtime, source: str, *, now: datetime) -> dict[str, Any]:
    """Reconcile every enabled integration of ``source`` that has mapped projects."""
    result: dict[str, Any] = {"integrations": {}}
    failures: list[str] = []
    for target in _targets(runtime, source, now):
        try:
            result["integrations"][target.view.key] = reconcile_integration(runtime, target, now=now)
        except Exception as error:  # whatever it is, the other integrations go on
            reason = f"{type(error).__name__}: {error}".splitlines()[0][:500]
            failures.append(f"{target.view.key}: {reason}")
            result["integrations"][target.view.key] = {"error": reason}
            _record(runtime, target.integration_id, now=now, error=reason)
    if failures:
        raise ReconcileFailed(f"{source} reconciliation failed for " + "; ".join(failures))
    return result


@dataclass(frozen=True)
class _Target:
    """An integration to reconcile: what the plugin is asked with."""

    integration_id: int
    view: IntegrationView
    projects: list[str]
    since: datetime


def _targets(runtime: Runtime, source: str, now: datetime) -> list[_Target]:
    with runtime.sessionmaker() as session:
        rows = session.execute(
            select(Integration, SourceCursor.last_success_at)
            .outerjoin(SourceCursor, SourceCursor.integration_id == Integration.id)
            .where(Integration.source == source, Integration.enabled.is_(True))
            .order_by(Integration.key)
        ).all()
        targets = []
        statuses = mapped_done_statuses(session, [integration.id for integration, _last in rows])
        for integration, last_success in rows:
            projects = sorted(set(session.execute(
                select(Mapping.pm_project).where(Mapping.integration_id == integration.id)).scalars()))
            if projects:  # the plugin says, as the run's error, when it cannot reach the tool
                since = (last_success or now - FIRST_LOOKBACK) - OVERLAP
                view = integration_view(integration, runtime.settings, now,
                                        mapped_done_statuses=statuses.get(integration.id, ()))
                targets.append(_Target(integration.id, view, projects, since))
        return targets


def reconcile_integration(runtime: Runtime, target: _Target, *, now: datetime) -> dict[str, Any]:
    """Ask the plugin (no transaction open), then store what it found as
    synthetic deliveries and move the cursor, in one transaction."""
    hooks = runtime.pm.source(target.view.source)
    if hooks is None:
        raise LookupError(f"no installed plugin serves {target.view.source!r}")
    http = runtime.rest_client(target.view)
    try:
        events = hooks.jalon_source_reconcile(source=target.view.source, integration=target.view,
                                              projects=target.projects, since=target.since, now=now, http=http)
    finally:
        http.close()
    events = list(events or ())
    for event in events:
        if getattr(event, "integration", None) != target.view.key:
            raise ValueError(f"jalon_source_reconcile answered an event of another integration: {event!r}")
    stored = store_events(runtime, target.integration_id, target.view.source, events, now=now)
    if stored:
        runtime.wake_worker.set()
    return {"since": target.since.isoformat(), "found": len(events), "stored": stored,
            "already_known": len(events) - stored}


def delivery_key(event: CoreEvent, body: bytes) -> str:
    """The synthetic delivery's key: the event's own id when it has one (the
    same change found twice is one delivery), else its content's hash."""
    if event.event_id:
        key = f"{ORIGIN}:{event.event_id}"
        if len(key) <= MAX_KEY_LENGTH:
            return key
    return f"{ORIGIN}:sha256:{hashlib.sha256(body).hexdigest()}"


def store_events(runtime: Runtime, integration_id: int, source: str, events: Sequence[CoreEvent], *,
                 now: datetime) -> int:
    """Store each event as a pending synthetic delivery, skipping those already
    stored, and record the integration's success; returns how many are new."""
    rows = []
    for event in events:
        body = json.dumps(event_to_json(event), sort_keys=True, separators=(",", ":")).encode()
        rows.append({"integration_id": integration_id, "source": source, "idempotency_key": delivery_key(event, body),
                     "event_name": f"{ORIGIN}:{type(event).__name__}", "received_at": now, "headers": {},
                     "body": body, "body_sha256": hashlib.sha256(body).hexdigest(), "outcomes": [],
                     "status": "pending", "attempts": 0, "next_attempt_at": now, "origin": ORIGIN})
    stored = 0
    with runtime.sessionmaker() as session, session.begin():
        dialect = session.get_bind().dialect.name
        for row in rows:  # one by one: a key found twice in one answer is stored once
            inserted = session.execute(insert_ignoring_conflicts(
                dialect, Delivery, index_elements=["integration_id", "idempotency_key"]).values(**row)
                .returning(Delivery.id)).first()
            stored += inserted is not None
        _save_cursor(session, integration_id, now=now, success=True)
    return stored


def _record(runtime: Runtime, integration_id: int, *, now: datetime, error: str) -> None:
    try:
        with runtime.sessionmaker() as session, session.begin():
            _save_cursor(session, integration_id, now=now, success=False, error=error)
    except Exception:  # noqa: BLE001 - the failure itself is already reported by the run
        log.warning("could not record the reconciliation failure of integration %s", integration_id)


def _save_cursor(session: Any, integration_id: int, *, now: datetime, success: bool, error: str | None = None) -> None:
    cursor = session.get(SourceCursor, integration_id, with_for_update=True)
    if cursor is None:
        cursor = SourceCursor(integration_id=integration_id)
        session.add(cursor)
    cursor.last_attempt_at = now
    if success:
        cursor.last_success_at = now
        cursor.last_error = None
    else:
        cursor.last_error = error
