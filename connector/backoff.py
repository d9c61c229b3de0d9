"""When to try again: the one backoff rule of the worker and the dispatcher."""

from __future__ import annotations

import random
from collections.abc import Callable

from jalon.connector.settings import Settings


def backoff_seconds(attempts: int, settings: Settings) -> float:
    """Delay after ``attempts`` failed attempts: ``base * 2**(attempts-1)``,
    capped at ``backoff_max_seconds`` (2 s, 4 s, 8 s... with the defaults)."""
    return float(min(settings.backoff_max_seconds, settings.backoff_base_seconds * 2 ** max(attempts - 1, 0)))


def jittered(delay: float, rand: Callable[[], float] = random.random) -> float:
    """"Equal jitter": between half and all of ``delay``, so that a burst of
    failures does not come back all at once."""
    return delay / 2 + rand() * delay / 2
