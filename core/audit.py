"""The audit trail: one record per change of state (who, when, what, why)."""

from __future__ import annotations

from collections.abc import Mapping

from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from .models import AuditRecord
from .types import utcnow


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    subject: Any,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditRecord:
    """Add an audit record for ``subject`` (a model instance, flushed so it has an id)."""
    if getattr(subject, "id", None) is None:
        session.flush()
    entry = AuditRecord(
        at=utcnow(),
        actor=actor,
        action=action,
        subject_type=type(subject).__tablename__,
        subject_id=str(subject.id),
        reason=reason,
        details=jsonable(details or {}),
    )
    session.add(entry)
    session.info["audit_records"] = recorded_in(session) + 1
    return entry


def recorded_in(session: Session) -> int:
    """How many audit records this session has added so far."""
    return session.info.get("audit_records", 0)


def jsonable(value: Any) -> Any:
    """``value`` fit for a JSON column: mappings and sequences walked, money
    as its ``to_json``, decimals, dates and the rest as strings. The audit
    trail never holds floats."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((jsonable(v) for v in value), key=str)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Decimal):
        # the same text on every engine (PostgreSQL hands back NUMERIC's full scale)
        return format(value.normalize(), "f")
    return str(value)
