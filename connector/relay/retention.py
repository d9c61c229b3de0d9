"""Retention of the inbox: raw bodies go, idempotency keys stay.

* The raw body of a processed (done or ignored) delivery is pruned after
  ``settings.body_retention_days``: the row, its key, its hash and its outcomes
  stay, so a redelivery is still a duplicate.
* The row itself goes after ``settings.key_retention_days`` (7 at least,
  enforced by :class:`~jalon.connector.settings.Settings`): a redelivery six
  days later is always recognised.
* Dead letters are never touched (they wait for a fix and a replay), nor is
  the audit trail.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from jalon.core.db import unit_of_work
from jalon.core.models import Delivery, OutboxMessage

from jalon.connector.plugin.types import JobSpec
from jalon.connector.settings import Settings

PROCESSED = ("done", "ignored")


def prune(session: Session, now: datetime, settings: Settings) -> dict[str, int]:
    """Prune in the caller's transaction; returns what was done."""
    body_cutoff = now - timedelta(days=settings.body_retention_days)
    key_cutoff = now - timedelta(days=max(settings.key_retention_days, 7))

    expired = select(Delivery.id).where(Delivery.status.in_(PROCESSED), Delivery.received_at < key_cutoff)
    # outbox messages keep their history; they only lose the link to the pruned delivery
    session.execute(
        update(OutboxMessage).where(OutboxMessage.delivery_id.in_(expired)).values(delivery_id=None)
        .execution_options(synchronize_session=False)
    )
    deleted = session.execute(
        delete(Delivery).where(Delivery.status.in_(PROCESSED), Delivery.received_at < key_cutoff)
        .execution_options(synchronize_session=False)
    ).rowcount
    pruned = session.execute(
        update(Delivery)
        .where(Delivery.status.in_(PROCESSED), Delivery.received_at < body_cutoff, Delivery.body.is_not(None))
        .values(body=None, body_pruned_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return {"bodies_pruned": pruned, "deliveries_deleted": deleted}


def run_retention(context: Any) -> dict[str, int]:
    """The scheduled job: ``context`` has ``.runtime`` and ``.now``."""
    runtime = context.runtime
    with unit_of_work(runtime.sessionmaker) as session:
        return prune(session, context.now, runtime.settings)


class _CallableJob(JobSpec):
    """A JobSpec that can also be called as its ``run(context)``."""

    __slots__ = ()

    def __call__(self, context: Any) -> Any:
        return self.run(context)


# the scheduler collects this one; ``retention_job(context)`` runs it directly
retention_job = _CallableJob(
    name="retention",
    interval=timedelta(hours=1),
    run=run_retention,
    description="Prune processed raw bodies after body_retention_days, and keys after key_retention_days",
)
