"""Domain errors. Each carries a stable machine-readable ``code``.

The connector turns them into JSON problems: :class:`NotFound` -> 404,
:class:`Conflict` -> 409, :class:`Invalid` -> 422.
"""

from __future__ import annotations

from typing import Any


class JalonError(Exception):
    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}


class NotFound(JalonError):
    code = "not_found"


class Conflict(JalonError):
    """The request is well formed but the current state forbids it."""

    code = "conflict"


class Invalid(JalonError):
    """A value breaks a domain rule (not a mere type error)."""

    code = "invalid"


class ImmutableRecord(Conflict):
    """An issued invoice, its lines, or a recorded payment was about to change."""

    code = "immutable_record"
