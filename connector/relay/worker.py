"""The worker: turns stored deliveries into billing changes.

One delivery goes through three steps:

1. **claim** (a short transaction): pending deliveries that are due, and
   ``processing`` ones whose lease expired (their worker died), become
   ``processing`` under a fresh lease token; on PostgreSQL with
   ``FOR UPDATE SKIP LOCKED``, so several workers never claim the same row;
2. **translate** (no transaction open): the source plugin turns the raw
   delivery into core events, and may call the tool's REST API to do it;
3. **apply** (ONE transaction): the fence comes first (``UPDATE ... WHERE
   lease_token = :token``; no row means a newer owner holds the delivery and
   everything is rolled back), then the core applies the events and the
   outbox messages they cause are written, all committed together.

A delivery that raises is retried with exponential backoff and jitter;
:class:`~jalon.connector.plugin.types.Unreadable` (also a body nested too deeply
to be read), or too many attempts, makes it a dead letter, visible and
replayable (:func:`replay`).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, event, select, update
from sqlalchemy.orm import Session

from jalon.core import audit
from jalon.core.db import read_only_session
from jalon.core.errors import Conflict
from jalon.core.events import Outcome, event_from_json
from jalon.core.models import Delivery, Integration
from jalon.core.rules import apply_event
from jalon.core.types import utcnow

from jalon.connector.outbox import notify

from jalon.connector import backoff as retry
from jalon.connector.redaction import scrub
from jalon.connector.relay.intake import integration_view, mapped_done_statuses
from jalon.connector.plugin.types import DeliveryView, IntegrationView, Translation, Unreadable
from jalon.connector.runtime import Runtime
from jalon.connector.settings import Settings

RECONCILE = "reconcile"

log = logging.getLogger("jalon.connector.relay.worker")

MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class Claimed:
    """What the claim transaction read: enough to translate with no session open."""

    id: int
    token: str
    attempts: int
    delivery: DeliveryView
    integration: IntegrationView
    integration_id: int
    # "webhook", or "reconcile": the body holds the core event the reconciliation found
    origin: str = "webhook"


class LeaseLost(Exception):
    """A newer owner holds the delivery: this worker's work is dropped."""


# ------------------------------------------------------------------ backoff


def backoff_seconds(attempts: int, settings: Settings, *, rand: Callable[[], float] = random.random) -> float:
    """The delay before a failed delivery's next attempt: the shared backoff
    (:mod:`jalon.connector.backoff`), jittered."""
    return retry.jittered(retry.backoff_seconds(attempts, settings), rand)


# ------------------------------------------------------------------ claim


def claim(runtime: Runtime, *, owner: str, limit: int, now: datetime | None = None) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries to ``owner``.

    The lease is taken in one short write transaction (select, update); a
    delivery whose workers kept dying becomes a dead letter there too. The
    leased rows are then read in a transaction that only reads: on SQLite a
    write transaction holds the database's one writer's lock, and intake's
    commits wait for it."""
    settings = runtime.settings
    now = now or utcnow()
    token = str(uuid.uuid4())
    with runtime.sessionmaker() as session, session.begin():
        query = select(Delivery.id).where(Delivery.due(now)).order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        ids = list(session.execute(query).scalars())
        if not ids:
            return []
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.due(now))  # re-checked: SQLite has no row locks to skip
            .values(status="processing", lease_owner=owner[:100], lease_token=token,
                    lease_expires_at=now + timedelta(seconds=settings.lease_seconds),
                    attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        # its workers kept dying (lease expired each time): a poison delivery
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.lease_token == token, Delivery.attempts > settings.max_attempts)
            .values(status="dead", lease_owner=None, lease_token=None, lease_expires_at=None,
                    last_error=f"given up after {settings.max_attempts} attempts (leases expired)")
            .execution_options(synchronize_session=False)
        )
    with read_only_session(runtime.sessionmaker) as session:
        rows = session.execute(
            select(Delivery, Integration)
            .join(Integration, Integration.id == Delivery.integration_id)
            .where(Delivery.id.in_(ids), Delivery.lease_token == token)
            .order_by(Delivery.next_attempt_at, Delivery.id)
        ).all()
        statuses = mapped_done_statuses(session, [integration.id for _delivery, integration in rows])
        return [Claimed(
            id=delivery.id,
            token=token,
            attempts=delivery.attempts,
            delivery=_view(delivery, integration),
            integration=integration_view(integration, settings, now,
                                         mapped_done_statuses=statuses.get(integration.id, ())),
            integration_id=integration.id,
            origin=delivery.origin,
        ) for delivery, integration in rows]


def _view(delivery: Delivery, integration: Integration) -> DeliveryView:
    return DeliveryView(
        id=delivery.id,
        integration=integration.key,
        source=delivery.source,
        idempotency_key=delivery.idempotency_key,
        received_at=delivery.received_at,
        headers=dict(delivery.headers or {}),
        body=delivery.body or b"",
    )


# ------------------------------------------------------------------ translate


TOO_DEEP = "the body nests too deeply to be read"


def translate(runtime: Runtime, item: Claimed) -> Translation:
    """The delivery's core events, by its source plugin (or as reconciliation
    stored them). A body nested so deeply that reading it exhausts the stack
    (``[[[...]]]`` 100,000 deep: the plugin's ``json.loads`` raises
    :class:`RecursionError`) will never read better: a dead letter at once,
    whichever plugin read it, rather than a failure retried."""
    try:
        return _translate(runtime, item)
    except RecursionError:
        raise Unreadable(TOO_DEEP) from None


def _translate(runtime: Runtime, item: Claimed) -> Translation:
    if item.origin == RECONCILE:
        return found_by_reconciliation(item)
    source = item.delivery.source
    hooks = runtime.pm.source(source)
    if hooks is None:
        raise LookupError(f"no installed plugin translates {source!r} deliveries")
    http = runtime.rest_client(item.integration)
    try:
        translation = hooks.jalon_source_translate(
            source=source, integration=item.integration, delivery=item.delivery, http=http)
    finally:
        http.close()
    if translation is None:
        raise LookupError(f"no installed plugin translates {source!r} deliveries")
    if not isinstance(translation, Translation):
        raise TypeError(f"jalon_source_translate answered a {type(translation).__name__}, not a Translation")
    return translation


def found_by_reconciliation(item: Claimed) -> Translation:
    """A synthetic delivery: the event the reconciliation found, stored as
    itself (:mod:`jalon.connector.jobs.reconcile`); no plugin is asked again."""
    try:
        event = event_from_json(json.loads(item.delivery.body))
    except ValueError as error:
        raise Unreadable(f"not a stored core event: {error}") from None
    if event.integration != item.integration.key:
        raise Unreadable("the stored event names another integration")
    return Translation(f"{RECONCILE}:{type(event).__name__}", [event])


# ------------------------------------------------------------------ apply


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """An outcome as stored on the delivery: JSON-safe, amounts as strings."""
    event = outcome.event
    data: dict[str, Any] = {"effect": outcome.effect, "detail": outcome.detail,
                            "event": type(event).__name__}
    for name in ("task_ref", "worklog_ref", "project_ref"):
        value = getattr(event, name, None)
        if value is not None:
            data[name] = value
    for name in ("milestone_id", "invoice_id", "time_entry_id"):
        value = getattr(outcome, name)
        if value is not None:
            data[name] = value
    if outcome.extra:
        data["extra"] = audit.jsonable(outcome.extra)
    return data


# prebuilt once (no statement construction per delivery); Core statements on the table
_deliveries = Delivery.__table__
_FENCE = (
    update(_deliveries)
    .where(_deliveries.c.id == bindparam("f_id"), _deliveries.c.lease_token == bindparam("f_token"),
           _deliveries.c.status == "processing")
    .values(status=bindparam("f_status"), processed_at=bindparam("f_now"), event_name=bindparam("f_event_name"),
            lease_owner=None, lease_token=None, lease_expires_at=None)
)
_STORE_OUTCOMES = (
    update(_deliveries).where(_deliveries.c.id == bindparam("o_id")).values(outcomes=bindparam("o_outcomes"))
)


def _apply_in(session: Session, runtime: Runtime, item: Claimed, translation: Translation) -> tuple[list[dict[str, Any]], int]:
    """The body of :func:`apply`, in the caller's transaction (or savepoint):
    the fence first, then the events, the outbox messages and the outcomes."""
    now = utcnow()
    events = list(translation.events)
    status = "done" if events and not translation.ignored else "ignored"
    fenced = session.connection().execute(_FENCE, {
        "f_id": item.id, "f_token": item.token, "f_status": status, "f_now": now,
        "f_event_name": (translation.event_name or "")[:100] or None,
    })
    if fenced.rowcount != 1:
        raise LeaseLost(f"delivery {item.id}: lease lost to a newer owner")
    outcomes = [apply_event(session, event) for event in events]
    queued = 0
    if outcomes:
        integration = session.get(Integration, item.integration_id)
        queued = notify.on_outcomes(session, outcomes, integration=integration, settings=runtime.settings,
                                    delivery_id=item.id) or 0
    stored = [outcome_json(o) for o in outcomes]
    if translation.ignored:
        stored.append({"effect": "ignored", "detail": translation.ignored})
    # the pending outbox messages are flushed with the rest when the transaction (or savepoint) ends
    session.connection().execute(_STORE_OUTCOMES, {"o_id": item.id, "o_outcomes": stored})
    return stored, queued


def apply(runtime: Runtime, item: Claimed, translation: Translation) -> tuple[list[dict[str, Any]], int]:
    """Apply the events in ONE transaction, fenced by the lease token.
    Returns the stored outcomes and the number of outbox messages queued."""
    with runtime.sessionmaker() as session, session.begin():
        return _apply_in(session, runtime, item, translation)


@dataclass
class Applied:
    """What happened to one delivery of a batch in the shared transaction."""

    item: Claimed
    translation: Translation
    status: str  # "done", "ignored", "lease_lost" or "failed"
    outcomes: list[dict[str, Any]] | None = None
    queued: int = 0
    error: Exception | None = None


def _hold_loaded(session: Session) -> None:
    """Keep what the session loads for as long as the session lives: the
    identity map only holds weak references, so without this the integration,
    mapping, contract, entity, client and channels a delivery loaded would be
    garbage before the next delivery of the batch, and loaded again."""
    held: list[object] = []
    session.info["jalon.held"] = held

    @event.listens_for(session, "loaded_as_persistent")
    def _hold(_session: Session, instance: object) -> None:
        held.append(instance)


def apply_batch(runtime: Runtime, work: Sequence[tuple[Claimed, Translation]]) -> list[Applied]:
    """Apply several translated deliveries in ONE transaction, each inside its
    own SAVEPOINT: the fence first (a lost lease skips that delivery alone),
    then its events, its outbox messages and its outcomes. One that raises is
    rolled back alone (``failed``, to be recorded by the caller in a short
    transaction of its own); the others commit together. The shared session
    loads the integration, mappings, contracts, clients... once per batch.

    If the commit itself fails, nothing of the batch was written: each
    delivery is then applied again on its own (:func:`apply`). A batch of one
    is applied that way at once (no savepoint needed)."""
    if len(work) == 1:
        return _apply_each(runtime, work)
    results: list[Applied] = []
    try:
        with runtime.sessionmaker() as session, session.begin():
            _hold_loaded(session)
            for item, translation in work:
                try:
                    with session.begin_nested():
                        outcomes, queued = _apply_in(session, runtime, item, translation)
                except LeaseLost:
                    results.append(Applied(item, translation, "lease_lost"))
                    continue
                except Exception as error:  # noqa: BLE001 - rolled back alone, recorded after the commit
                    results.append(Applied(item, translation, "failed", error=error))
                    continue
                status = "done" if translation.events and not translation.ignored else "ignored"
                results.append(Applied(item, translation, status, outcomes=outcomes, queued=queued))
    except Exception:  # noqa: BLE001 - the shared commit failed: one transaction per delivery, as before
        log.warning("a batch of %s deliveries could not be committed; applying them one by one", len(work),
                    exc_info=True)
        results = _apply_each(runtime, work)
    return results


def _apply_each(runtime: Runtime, work: Sequence[tuple[Claimed, Translation]]) -> list[Applied]:
    """Each delivery in a transaction of its own (:func:`apply`)."""
    results: list[Applied] = []
    for item, translation in work:
        try:
            outcomes, queued = apply(runtime, item, translation)
        except LeaseLost:
            results.append(Applied(item, translation, "lease_lost"))
            continue
        except Exception as error:  # noqa: BLE001
            results.append(Applied(item, translation, "failed", error=error))
            continue
        status = "done" if translation.events and not translation.ignored else "ignored"
        results.append(Applied(item, translation, status, outcomes=outcomes, queued=queued))
    return results


# ------------------------------------------------------------------ failures


def _secrets_of(view: IntegrationView) -> list[str]:
    values = list(view.secrets)
    values += [str(v) for v in view.credentials.values() if isinstance(v, (str, int)) and str(v)]
    # a credential of one or two characters (an id, a flag) is no secret, and masking it would garble the text
    return [value for value in values if len(value) >= 3]


def record_failure(runtime: Runtime, item: Claimed, error: BaseException, *,
                   rand: Callable[[], float] = random.random) -> str:
    """Put the delivery back with a backoff, or make it a dead letter; fenced
    by the lease like the success path. Returns the new status."""
    settings = runtime.settings
    now = utcnow()
    reason = scrub(f"{type(error).__name__}: {error}", _secrets_of(item.integration))[:MAX_ERROR_LENGTH]
    dead = isinstance(error, Unreadable) or item.attempts >= settings.max_attempts
    values: dict[str, Any] = {
        "status": "dead" if dead else "pending",
        "last_error": reason,
        "lease_owner": None, "lease_token": None, "lease_expires_at": None,
    }
    if not dead:
        values["next_attempt_at"] = now + timedelta(seconds=backoff_seconds(item.attempts, settings, rand=rand))
    with runtime.sessionmaker() as session, session.begin():
        result = session.execute(
            update(Delivery).where(Delivery.id == item.id, Delivery.lease_token == item.token)
            .values(**values).execution_options(synchronize_session=False)
        )
    if result.rowcount != 1:
        return "lease_lost"
    log.warning("delivery %s attempt %s failed (%s)%s", item.id, item.attempts, type(error).__name__,
                ": dead letter" if dead else "")
    return values["status"]


# ------------------------------------------------------------------ the loop's step


def _notify_processed(runtime: Runtime, delivery: DeliveryView, outcomes: list[dict[str, Any]]) -> None:
    """Every observer is called on its own: one that raises is logged and the
    others still hear; the processing is never undone."""
    hook = runtime.pm.hook.jalon_delivery_processed
    for impl in hook.get_hookimpls():
        kwargs = {"delivery": delivery, "outcomes": outcomes}
        try:
            impl.function(**{name: kwargs[name] for name in impl.argnames})
        except Exception:
            log.exception("jalon_delivery_processed of plugin %s raised (ignored)", impl.plugin_name)


def process_one(runtime: Runtime, item: Claimed) -> str:
    """Translate and apply one claimed delivery; returns its new status."""
    try:
        translation = translate(runtime, item)
        outcomes, queued = apply(runtime, item, translation)
    except LeaseLost:
        log.warning("delivery %s: lease lost, this worker's work is dropped", item.id)
        return "lease_lost"
    except Exception as error:  # noqa: BLE001 - every failure is recorded, none is lost
        return record_failure(runtime, item, error)
    if queued:
        runtime.wake_dispatcher.set()
    _notify_processed(runtime, item.delivery, outcomes)
    return "done" if translation.events and not translation.ignored else "ignored"


# translated work waits at most this long before it is applied (a plugin that
# calls a slow API delays neither the first deliveries of a batch nor their leases)
APPLY_AFTER_SECONDS = 1.0
# at most this many deliveries per apply transaction: on SQLite the transaction
# holds the write lock, and intake must not wait behind a whole batch to answer
APPLY_GROUP = 5


def process_batch(runtime: Runtime, batch: Sequence[Claimed], *, group: int = APPLY_GROUP,
                  pause: Callable[[], None] | None = None) -> list[str]:
    """Translate the claimed deliveries (no transaction open), then apply them
    ``group`` at a time (:func:`apply_batch`); returns their new statuses, in
    order. ``pause``, when given, is called before each apply transaction:
    the in-process runner lets the door go first there (see
    :mod:`jalon.connector.jobs.runners`)."""
    statuses: dict[int, str] = {}
    work: list[tuple[Claimed, Translation]] = []
    started = time.monotonic()
    for item in batch:
        try:
            work.append((item, translate(runtime, item)))
        except Exception as error:  # noqa: BLE001 - every failure is recorded, none is lost
            statuses[item.id] = record_failure(runtime, item, error)
        if work and (len(work) >= group or time.monotonic() - started >= APPLY_AFTER_SECONDS):
            if pause is not None:
                pause()
            statuses.update(_apply_and_report(runtime, work))
            work, started = [], time.monotonic()
    if work:
        if pause is not None:
            pause()
        statuses.update(_apply_and_report(runtime, work))
    return [statuses[item.id] for item in batch]


def _apply_and_report(runtime: Runtime, work: Sequence[tuple[Claimed, Translation]]) -> dict[int, str]:
    results = apply_batch(runtime, work)
    if any(result.queued for result in results):
        runtime.wake_dispatcher.set()
    statuses: dict[int, str] = {}
    for result in results:
        if result.status == "lease_lost":
            log.warning("delivery %s: lease lost, this worker's work is dropped", result.item.id)
            statuses[result.item.id] = "lease_lost"
        elif result.status == "failed":
            assert result.error is not None
            statuses[result.item.id] = record_failure(runtime, result.item, result.error)
        else:
            _notify_processed(runtime, result.item.delivery, result.outcomes or [])
            statuses[result.item.id] = result.status
    return statuses


def process_once(runtime: Runtime, *, owner: str, limit: int | None = None, group: int = APPLY_GROUP,
                 pause: Callable[[], None] | None = None) -> int:
    """Claim and process one batch of due deliveries; the number handled.
    ``group`` and ``pause``: see :func:`process_batch`."""
    batch = claim(runtime, owner=owner, limit=limit or runtime.settings.worker_batch)
    if batch:
        process_batch(runtime, batch, group=group, pause=pause)
    return len(batch)


def run(runtime: Runtime, *, owner: str, stop: threading.Event, max_batches: int | None = None) -> None:
    """Process until ``stop`` is set, sleeping on ``runtime.wake_worker`` when idle."""
    batches = 0
    while not stop.is_set():
        try:
            handled = process_once(runtime, owner=owner)
        except Exception:  # the database went away: wait and try again, never die
            log.exception("worker %s: claim failed", owner)
            handled = 0
            stop.wait(runtime.settings.worker_idle_seconds * 5)
        batches += 1
        if max_batches is not None and batches >= max_batches:
            return
        if handled == 0:
            runtime.wake_worker.wait(runtime.settings.worker_idle_seconds)
            runtime.wake_worker.clear()


# ------------------------------------------------------------------ replay


def replay(session: Session, delivery: Delivery, *, actor: str, now: datetime | None = None,
           reason: str | None = None) -> Delivery:
    """Run a delivery again (a dead letter after a fix, or any other): pending,
    attempts 0, due now. A replay of a done delivery changes nothing twice,
    since the core is idempotent. Leaves an audit record."""
    now = now or utcnow()
    if delivery.body is None or delivery.body_pruned_at is not None:
        raise Conflict(f"delivery {delivery.id}: its body was pruned by retention, it cannot be replayed",
                       code="delivery_body_pruned")
    if delivery.status == "processing" and delivery.lease_expires_at is not None and delivery.lease_expires_at > now:
        raise Conflict(f"delivery {delivery.id} is being processed right now", code="delivery_in_progress")
    previous = {"status": delivery.status, "attempts": delivery.attempts, "last_error": delivery.last_error}
    delivery.status = "pending"
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.lease_owner = delivery.lease_token = None
    delivery.lease_expires_at = None
    audit.record(session, actor=actor, action="delivery.replayed", subject=delivery,
                 reason=reason or f"replay of a {previous['status']} delivery", details=previous)
    return delivery
