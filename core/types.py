"""Column types: exact decimals on every engine, UTC datetimes, 64-bit ids."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, Numeric, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.types import DateTime


# The id of a table that grows without bound (deliveries, outbox messages, audit
# records, time entries, invoices...), and of every column referring to one:
# BIGINT on PostgreSQL, where INTEGER stops at 2^31 - 1; on SQLite, INTEGER,
# which is 64-bit there already and, as the primary key, the rowid itself.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC on PostgreSQL; on SQLite, which has no decimal type and would go
    through floats, the canonical decimal string."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 24, scale: int = 6):
        super().__init__()
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect):  # type: ignore[no-untyped-def]
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("floats are refused for money and quantities")
        value = Decimal(value)
        if dialect.name == "sqlite":
            return format(value, "f")
        return value

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        return Decimal(value) if not isinstance(value, Decimal) else value


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes, stored in UTC everywhere."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: give a timezone")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
