"""The outbox: notifications and write-backs, written in the same transaction
as the billing change that causes them, delivered later by the dispatcher.

Nothing is sent for a transaction that rolled back, since the message row
rolled back with it; nothing is sent twice for one cause, since each message
has an idempotency key (unique).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from jalon.core.models import OutboxMessage
from jalon.core.types import utcnow


_BY_KEY = select(OutboxMessage).where(OutboxMessage.idempotency_key == bindparam("idempotency_key"))


def enqueue(
    session: Session,
    *,
    channel: str,
    kind: str,
    idempotency_key: str,
    destination: dict[str, Any],
    payload: dict[str, Any] | Callable[[], dict[str, Any]],
    channel_id: int | None = None,
    integration_id: int | None = None,
    delivery_id: int | None = None,
    invoice_id: int | None = None,
) -> OutboxMessage:
    """Add a message to the caller's transaction, or return the one already
    queued under the same key (a replayed cause queues nothing new).

    ``payload`` may be a function that makes it: it is called only when the
    message is new (one that creates an approval link creates it once)."""
    # The lookup needs no flush of the other pending changes (they cannot hold
    # this message), except a message queued under this key and not yet flushed.
    if any(isinstance(obj, OutboxMessage) and obj.idempotency_key == idempotency_key for obj in session.new):
        session.flush()
    with session.no_autoflush:
        existing = session.execute(_BY_KEY, {"idempotency_key": idempotency_key}).scalar_one_or_none()
    if existing is not None:
        return existing
    message = OutboxMessage(
        idempotency_key=idempotency_key,
        channel=channel,
        kind=kind,
        destination=destination,
        payload=payload() if callable(payload) else payload,
        channel_id=channel_id,
        integration_id=integration_id,
        delivery_id=delivery_id,
        invoice_id=invoice_id,
        status="pending",
        attempts=0,
        next_attempt_at=utcnow(),
        created_at=utcnow(),
    )
    session.add(message)
    return message
