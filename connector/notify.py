"""What the project and finance hear when billing acts: outbox messages
derived from the core's outcomes, in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from jalon.core.events import Outcome
from jalon.core.models import Integration

from .settings import Settings


def on_outcomes(
    session: Session,
    outcomes: Sequence[Outcome],
    *,
    integration: Integration,
    settings: Settings,
    delivery_id: int | None = None,
) -> int:
    """Queue the notifications and write-backs these outcomes call for; return
    how many messages were queued. (Filled in by the outbox work.)"""
    return 0
