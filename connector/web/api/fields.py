"""Fields and schemas shared by every area of the API.

Amounts travel as JSON strings ("1200.00"), never as numbers: a JSON number in
a decimal field is refused (422), so no float ever reaches the core.

Numbers that reach the database are bounded here, once: an id runs from 1 to what
its table's id column holds on every engine (:func:`id_max`), in a path
(:class:`IdConverter`: beyond it the route matches nothing, a 404) as in a
body (:class:`Id`: a 422 naming the field); a page number stops at
:data:`MAX_PAGE`, so that the offset stays within 64 bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate
from marshmallow.utils import get_value
from sqlalchemy import BigInteger, Select, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from werkzeug.routing import IntegerConverter, Map, UnicodeConverter, ValidationError

from jalon.core.models import Base
from jalon.core.money import Money, minor_unit, quantize


NUL = "\x00"
NUL_MESSAGE = "Must not contain the NUL character (U+0000)."


def nul_paths(data: Any) -> list[str]:
    """The dotted paths of the strings (values or keys) in ``data`` that hold
    a NUL, which PostgreSQL's text and JSON cannot store (walked without recursion)."""
    found: list[str] = []
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if NUL in node:
                found.append(path or "body")
        elif isinstance(node, Mapping):
            for key in node:
                child = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and NUL in key:
                    found.append(child)
                else:
                    stack.append((child, node[key]))
        elif isinstance(node, (list, tuple)):
            stack.extend((f"{path}.{index}" if path else str(index), item) for index, item in enumerate(node))
    return sorted(found)


class Schema(ma.Schema):
    """Unknown fields are refused: a typo must not be silently ignored. A
    string holding a NUL is refused too (422, its path named), wherever it is
    in the input: no engine would get it as far as a query."""

    class Meta:
        unknown = ma.RAISE
        ordered = True

    @ma.pre_load
    def _refuse_nul(self, data: Any, **_: Any) -> Any:
        paths = nul_paths(data)
        if paths:
            raise ma.ValidationError({path: [NUL_MESSAGE] for path in paths})
        return data


class PathText(UnicodeConverter):
    """The default converter of a path segment (``<code>``), without NUL: a
    segment holding one matches no route (404)."""

    def to_python(self, value: str) -> str:
        if NUL in value:
            raise ValidationError()
        return value


class StrictBoolean(fields.Boolean):
    """A JSON ``true`` or ``false``, as the document says: not 1, "yes" or "true"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


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
    exemption_code = fields.String(allow_none=True, validate=validate.Length(max=30), metadata={
        "example": "VATEX-EU-79-C", "description": "The VATEX code of the exemption (BT-121); "
                                                   "derived from the category and reason when absent"})


class VatOut(Schema):
    category = fields.String()
    rate = DecimalString()
    exemption_reason = fields.String(allow_none=True)
    exemption_code = fields.String(allow_none=True)


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


# ------------------------------------------------------------------ ids and pages

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def id_max(table: str) -> int:
    """The largest id ``table``'s id column holds on every engine: 2^63-1 for
    a BIGINT (SQLite's INTEGER is 64-bit too), 2^31-1 for an INTEGER, which is
    32-bit on PostgreSQL."""
    column_type = Base.metadata.tables[table].c.id.type
    strictest = column_type.dialect_impl(postgresql.dialect())
    return INT64_MAX if isinstance(strictest, BigInteger) else INT32_MAX


class IdConverter(IntegerConverter):
    """``<id(invoices):invoice_id>``: a row's id in a path, from 1 to
    :func:`id_max` of its table. Any other number matches no route: 404, as
    for an id that names nothing, never a number the database cannot take."""

    def __init__(self, map: Map, table: str) -> None:
        super().__init__(map, min=1, max=id_max(table))


class Id(fields.Integer):
    """A row's id in a body: a whole JSON number (``strict=False`` for a
    query's text) from 1 to :func:`id_max` of ``table``; any other is refused
    (422, the field named)."""

    def __init__(self, table: str, **kwargs: Any):
        top = id_max(table)
        kwargs.setdefault("strict", True)
        super().__init__(validate=validate.Range(min=1, max=top, error=f"Must be an id from 1 to {top}."),
                         **kwargs)


MAX_PAGE_SIZE = 200
# far beyond any real listing, and (MAX_PAGE - 1) * MAX_PAGE_SIZE stays well within a 64-bit offset
MAX_PAGE = 10**9


class PageArgs(Schema):
    class Meta:
        unknown = ma.RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    page_size = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))


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
    "AddressIn", "AddressOut", "DecimalString", "Id", "IdConverter", "MAX_PAGE", "MAX_PAGE_SIZE", "MoneyAmount",
    "PageArgs", "PathText", "Schema", "StrictBoolean", "VatIn", "VatOut", "currency_field", "id_max", "nul_paths",
    "page_of", "paginate",
]



class ElectronicAddress(Schema):
    """The electronic invoicing address and its scheme (an entity's and a client's, in and out)."""

    electronic_address = fields.String(allow_none=True, validate=validate.Length(max=125), metadata={
        "example": "552100554",
        "description": "The electronic invoicing address (EN 16931 BT-34 for an entity, BT-49 for a client), as "
                       "the French directory knows it: SIREN, SIREN_SIRET, SIREN_SIRET_routing code or "
                       "SIREN_suffix; absent: the SIREN, under scheme 0225 (a client abroad without one: its "
                       "first billing e-mail, under scheme EM)"})
    electronic_address_scheme = fields.String(allow_none=True, validate=validate.Length(max=4), metadata={
        "example": "0225", "description": "EAS code of the address: 0225 the French directory (default), "
                                          "EM an e-mail address, or another ISO 6523 code"})
