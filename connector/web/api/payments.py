"""Payments received, allocated to invoices named by their numbers.

Finance tokens may record payments as well as admin tokens. A payment is
never edited: a mistake is corrected by a reversal (not in this API yet).
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from jalon.core import catalog, payments
from jalon.core.errors import NotFound
from jalon.core.models import Client, Payment
from jalon.core.money import Money

from jalon.connector.outbox import notify
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import DecimalString, MoneyAmount, PageArgs, Schema, currency_field, page_of, paginate

blp = Blueprint("payments", __name__, url_prefix="/payments", description="Payments received")
protect(blp, write_scopes=("admin", "finance"))


class AllocationIn(Schema):
    invoice_number = fields.String(required=True)
    amount = DecimalString(allow_none=True, metadata={
        "description": "Omitted: as much as the payment and the invoice's balance allow"})


class PaymentIn(Schema):
    amount = DecimalString(required=True)
    currency = currency_field(required=True)
    received_on = fields.Date(required=True)
    method = fields.String(load_default="transfer", validate=validate.Length(min=1, max=30))
    reference = fields.String(allow_none=True, validate=validate.Length(max=200))
    client = fields.String(allow_none=True, metadata={"description": "Client code; defaults to the invoices' client"})
    entity = fields.String(allow_none=True, metadata={
        "description": "Entity code, when invoice numbers are ambiguous across entities"})
    allocations = fields.List(fields.Nested(AllocationIn), load_default=list,
                              metadata={"description": "Invoices to pay, in order"})


class AllocationOut(Schema):
    invoice_id = fields.Integer()
    invoice_number = fields.String()
    amount = MoneyAmount()


class PaymentOut(Schema):
    id = fields.Integer()
    client = fields.String()
    amount = MoneyAmount()
    currency = fields.String()
    received_on = fields.Date()
    method = fields.String()
    reference = fields.String(allow_none=True)
    allocations = fields.List(fields.Nested(AllocationOut))
    unallocated = MoneyAmount(metadata={"description": "Left on the payment as the client's credit"})
    created_at = fields.DateTime()
    created_by = fields.String()


PaymentPage = page_of(PaymentOut, "PaymentPage")


class PaymentListArgs(PageArgs):
    client = fields.String(metadata={"description": "Client code"})


def present_payment(payment: Payment) -> dict[str, Any]:
    return {
        **{c: getattr(payment, c) for c in ("id", "amount", "currency", "received_on", "method", "reference",
                                          "unallocated", "created_at", "created_by")},
        "client": payment.client.code,
        "allocations": [{"invoice_id": a.invoice_id, "invoice_number": a.invoice.number,
                         "amount": Money(a.amount, payment.currency)} for a in payment.allocations],
    }


@blp.route("")
class Payments(MethodView):
    @blp.arguments(PaymentListArgs, location="query")
    @blp.response(200, PaymentPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List payments (newest first)"""
        query = select(Payment).order_by(Payment.id.desc())
        if "client" in args:
            query = query.where(Payment.client_id.in_(select(Client.id).where(Client.code == args["client"])))
        return paginate(db(), query, args, present_payment)

    @blp.arguments(PaymentIn)
    @blp.response(201, PaymentOut)
    def post(self, data):  # type: ignore[no-untyped-def]
        """Record a payment and allocate it to invoices"""
        session = db()
        currency = data["currency"]
        payment = payments.record_payment(
            session,
            amount=Money(data["amount"], currency),
            received_on=data["received_on"],
            allocations=[
                payments.Allocation(a["invoice_number"], None if a.get("amount") is None else Money(a["amount"], currency))
                for a in data["allocations"]
            ],
            client=catalog.get_client(session, data["client"]) if data.get("client") else None,
            entity_id=catalog.get_entity(session, data["entity"]).id if data.get("entity") else None,
            method=data["method"],
            reference=data.get("reference"),
            actor=actor(),
        )
        for allocation in payment.allocations:
            notify.on_invoice_paid(session, allocation.invoice)
        return present_payment(payment), 201, {"Location": url_for("payments.PaymentById", payment_id=payment.id)}


@blp.route("/<id(payments):payment_id>")
class PaymentById(MethodView):
    @blp.response(200, PaymentOut)
    def get(self, payment_id):  # type: ignore[no-untyped-def]
        """Get a payment with its allocations"""
        payment = db().get(Payment, payment_id)
        if payment is None:
            raise NotFound(f"no payment {payment_id}", code="payment_not_found")
        return present_payment(payment)
