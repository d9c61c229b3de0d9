"""Issuing entities, keyed by their code."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from jalon.core import catalog
from jalon.core.models import Entity

from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import (
    AddressIn, AddressOut, DecimalString, ElectronicAddress, PageArgs, StrictBoolean, currency_field, page_of, paginate,
)

blp = Blueprint("entities", __name__, url_prefix="/entities", description="Legal entities that issue invoices")
protect(blp, write_scopes=("admin",))


class EntityIn(AddressIn, ElectronicAddress):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    legal_form = fields.String(allow_none=True, validate=validate.Length(max=50))
    share_capital = DecimalString(allow_none=True, metadata={"example": "10000"})
    siren = fields.String(allow_none=True)
    siret = fields.String(allow_none=True)
    rcs = fields.String(allow_none=True, validate=validate.Length(max=100))
    vat_number = fields.String(allow_none=True)
    iban = fields.String(allow_none=True)
    bic = fields.String(allow_none=True)
    email = fields.Email(allow_none=True)
    vat_franchise = StrictBoolean(metadata={
        "description": "Under the small-business franchise (art. 293 B du CGI): no VAT charged, every line exempt "
                       "with the mention 'TVA non applicable, art. 293 B du CGI'"})
    currency = currency_field()
    invoice_prefix = fields.String(validate=validate.Length(min=1, max=20))
    vat_on_debits = StrictBoolean()
    operation_nature = fields.String(validate=validate.OneOf(catalog.OPERATION_NATURES),
                                     metadata={"description": "What the invoices sell: services (default), goods, mixed"})
    late_penalty_rate = DecimalString(allow_none=True, metadata={
        "example": "12", "description": "Contractual late-payment penalty rate, % a year; "
                                        "absent: the legal rate (ECB refinancing rate + 10 points)"})
    early_payment_discount = fields.String(allow_none=True, validate=validate.Length(max=300), metadata={
        "description": "Early-payment discount terms as printed; absent: no discount"})
    auto_issue_below = DecimalString(allow_none=True, metadata={
        "example": "1000", "description": "Milestone drafts below this total incl. VAT are issued without approval"})


class EntityOut(AddressOut, ElectronicAddress):
    code = fields.String()
    name = fields.String()
    legal_form = fields.String(allow_none=True)
    share_capital = DecimalString(allow_none=True)
    siren = fields.String(allow_none=True)
    siret = fields.String(allow_none=True)
    rcs = fields.String(allow_none=True)
    vat_number = fields.String(allow_none=True)
    iban = fields.String(allow_none=True)
    bic = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    vat_franchise = fields.Boolean()
    currency = fields.String()
    invoice_prefix = fields.String()
    vat_on_debits = fields.Boolean()
    operation_nature = fields.String()
    late_penalty_rate = DecimalString(allow_none=True)
    early_payment_discount = fields.String(allow_none=True)
    auto_issue_below = DecimalString(allow_none=True)
    created_at = fields.DateTime()


EntityPage = page_of(EntityOut, "EntityPage")


@blp.route("")
class Entities(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, EntityPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List entities"""
        return paginate(db(), select(Entity).order_by(Entity.code), args)


@blp.route("/<code>")
class EntityByCode(MethodView):
    @blp.response(200, EntityOut)
    def get(self, code):  # type: ignore[no-untyped-def]
        """Get an entity"""
        return catalog.get_entity(db(), code)

    @blp.arguments(EntityIn)
    @blp.response(200, EntityOut, description="Updated (or unchanged)")
    @blp.alt_response(201, schema=EntityOut, description="Created")
    def put(self, data, code):  # type: ignore[no-untyped-def]
        """Create or replace an entity (idempotent)"""
        entity, created = catalog.upsert_entity(db(), {**data, "code": code}, actor=actor())
        return entity, 201 if created else 200
