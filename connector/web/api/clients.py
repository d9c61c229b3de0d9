"""Clients, keyed by their code, and their open balance."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from jalon.core import catalog, payments
from jalon.core.models import Client
from jalon.core.terms import KINDS as TERMS_KINDS

from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import AddressIn, AddressOut, MoneyAmount, ElectronicAddress, PageArgs, Schema, currency_field, page_of, paginate

blp = Blueprint("clients", __name__, url_prefix="/clients", description="Clients and their balances")
protect(blp, write_scopes=("admin",))


class PaymentTermsSchema(Schema):
    kind = fields.String(validate=validate.OneOf(TERMS_KINDS), load_default="net")
    days = fields.Integer(strict=True, load_default=30, validate=validate.Range(min=0))


class ClientIn(AddressIn, ElectronicAddress):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    siren = fields.String(allow_none=True)
    siret = fields.String(allow_none=True)
    vat_number = fields.String(allow_none=True)
    currency = currency_field()
    language = fields.String(validate=validate.OneOf(catalog.LANGUAGES))
    payment_terms = fields.Nested(PaymentTermsSchema)
    billing_emails = fields.List(fields.Email())
    delivery_address = fields.Nested(AddressIn, allow_none=True, metadata={
        "description": "Where the service is delivered, when it is not the billing address (printed on invoices)"})


class ClientOut(AddressOut, ElectronicAddress):
    code = fields.String()
    name = fields.String()
    siren = fields.String(allow_none=True)
    siret = fields.String(allow_none=True)
    vat_number = fields.String(allow_none=True)
    currency = fields.String()
    language = fields.String()
    payment_terms = fields.Nested(PaymentTermsSchema)
    billing_emails = fields.List(fields.String())
    delivery_address = fields.Method("_delivery", allow_none=True)
    created_at = fields.DateTime()

    def _delivery(self, client: Client):  # type: ignore[no-untyped-def]
        return client.delivery_address()


ClientPage = page_of(ClientOut, "ClientPage")


class BalanceOut(Schema):
    currency = fields.String()
    invoiced_open = MoneyAmount(metadata={"description": "Still due on issued invoices"})
    unallocated_payments = MoneyAmount(metadata={"description": "Payments not put on any invoice (client credit)"})
    balance = MoneyAmount(metadata={"description": "Positive: the client owes; negative: the client is in credit"})


class ClientBalanceOut(Schema):
    client = fields.String()
    balances = fields.List(fields.Nested(BalanceOut), metadata={"description": "One per currency"})


@blp.route("")
class Clients(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ClientPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List clients"""
        return paginate(db(), select(Client).order_by(Client.code), args)


@blp.route("/<code>")
class ClientByCode(MethodView):
    @blp.response(200, ClientOut)
    def get(self, code):  # type: ignore[no-untyped-def]
        """Get a client"""
        return catalog.get_client(db(), code)

    @blp.arguments(ClientIn)
    @blp.response(200, ClientOut, description="Updated (or unchanged)")
    @blp.alt_response(201, schema=ClientOut, description="Created")
    def put(self, data, code):  # type: ignore[no-untyped-def]
        """Create or replace a client (idempotent)"""
        client, created = catalog.upsert_client(db(), {**data, "code": code}, actor=actor())
        return client, 201 if created else 200


@blp.route("/<code>/balance")
@blp.response(200, ClientBalanceOut)
def client_balance(code):  # type: ignore[no-untyped-def]
    """The client's open balance, per currency"""
    session = db()
    client = catalog.get_client(session, code)
    return {"client": client.code, "balances": payments.client_balances(session, client)}
