"""Fields and schemas shared by every area of the API.

Amounts travel as JSON strings ("1200.00"), never as numbers: a JSON number in
a decimal field is refused (422), so no float ever reaches the core.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate
from marshmallow.utils import get_value
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from jalon.core.money import Money, minor_unit, quantize


class Schema(ma.Schema):
    """Unknown fields are refused: a typo must not be silently ignored."""

    class Meta:
        unknown = ma.RAISE
        ordered = True


class DecimalString(fields.Decimal):
    """An exact decimal written as a JSON string."""

    default_error_messages = {
        "not_string": 'Must be a decimal string such as "1200.00", not a JSON number.',
    }

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("as_string", True)
        kwargs.setdefault("allow_nan", False)
        metadata = {"example": "1200.00", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if not isinstance(value, str):
            raise self.make_error("not_string")
        return super()._deserialize(value.strip(), attr, data, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        # PostgreSQL hands back NUMERIC(24, 6): "20.000000" is written "20" on every engine
        return format(Decimal(value).normalize(), "f")


class MoneyAmount(DecimalString):
    """An amount rounded to its currency's minor unit for output.

    ``currency_from`` names where the currency is, on the object being dumped
    (a dotted path); a :class:`Money` value carries its own.
    """

    def __init__(self, currency_from: str = "currency", *, exact: bool = False, **kwargs: Any):
        kwargs.setdefault("dump_only", True)
        super().__init__(**kwargs)
        self.currency_from = currency_from
        self.exact = exact

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Money):
            value = Money(value, get_value(obj, self.currency_from))
        if not self.exact:
            return format(value.quantize().amount, "f")
        # a unit price keeps its own precision, but never shows fewer places than the currency
        places = max(minor_unit(value.currency), -int(value.amount.normalize().as_tuple().exponent))
        return format(quantize(value.amount, places), "f")


def currency_field(**kwargs: Any) -> fields.String:
    metadata = {"example": "EUR", **kwargs.pop("metadata", {})}
    return fields.String(validate=validate.Regexp(r"^[A-Z]{3}$", error="Must be an ISO 4217 code such as EUR."),
                         metadata=metadata, **kwargs)


class VatIn(Schema):
    category = fields.String(validate=validate.OneOf(("S", "Z", "E", "AE", "K", "G", "O")), load_default="S")
    rate = DecimalString(metadata={"example": "20"})
    exemption_reason = fields.String(allow_none=True, validate=validate.Length(max=300))


class VatOut(Schema):
    category = fields.String()
    rate = DecimalString()
    exemption_reason = fields.String(allow_none=True)


class AddressIn(Schema):
    address_line1 = fields.String(validate=validate.Length(max=200))
    address_line2 = fields.String(allow_none=True, validate=validate.Length(max=200))
    postcode = fields.String(validate=validate.Length(max=20))
    city = fields.String(validate=validate.Length(max=100))
    country_code = fields.String(validate=validate.Regexp(r"^[A-Za-z]{2}$", error="Must be an ISO 3166 alpha-2 code."))


class AddressOut(Schema):
    address_line1 = fields.String()
    address_line2 = fields.String(allow_none=True)
    postcode = fields.String()
    city = fields.String()
    country_code = fields.String()


class PageArgs(Schema):
    class Meta:
        unknown = ma.RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))


class PageOut(Schema):
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()


def page_of(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A page envelope {items, page, page_size, total} around ``item_schema``."""
    return type(name, (PageOut,), {"items": fields.List(fields.Nested(item_schema))})


def paginate(session: Session, query: Select, args: dict[str, Any], present=lambda item: item) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    page, size = args["page"], args["page_size"]
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = session.execute(query.limit(size).offset((page - 1) * size)).scalars().all()
    return {"items": [present(item) for item in items], "page": page, "page_size": size, "total": total}


__all__ = [
    "AddressIn", "AddressOut", "DecimalString", "MoneyAmount", "PageArgs", "Schema", "VatIn", "VatOut",
    "currency_field", "page_of", "paginate",
]
