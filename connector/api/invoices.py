"""Invoices and credit notes, by id: drafts, issuing, credit notes, cancelling.

Finance tokens may write here as well as admin tokens.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.orm import aliased

from jalon.core import catalog, invoicing, payments
from jalon.core.models import INVOICE_KINDS, INVOICE_STATUSES, Client, Contract, Entity, Invoice
from jalon.core.vat import Vat

from .. import notify
from . import Blueprint
from .context import actor, db, protect
from .fields import DecimalString, MoneyAmount, PageArgs, Schema, VatIn, VatOut, currency_field, page_of, paginate

blp = Blueprint("invoices", __name__, url_prefix="/invoices", description="Invoices and credit notes")
protect(blp, write_scopes=("admin", "finance"))


# ---------------------------------------------------------------- input


class LineIn(Schema):
    description = fields.String(required=True, validate=validate.Length(min=1))
    quantity = DecimalString(required=True, metadata={"example": "1"})
    unit_price = DecimalString(required=True)
    unit = fields.String(validate=validate.OneOf(tuple(invoicing.UNITS)), load_default="C62",
                         metadata={"description": "UN/ECE rec. 20: C62 unit, HUR hour, DAY day..."})
    vat = fields.Nested(VatIn)


class DraftIn(Schema):
    entity = fields.String(required=True, metadata={"description": "Entity code"})
    client = fields.String(required=True, metadata={"description": "Client code"})
    contract = fields.String(allow_none=True, metadata={"description": "Contract reference"})
    currency = currency_field(allow_none=True)
    service_date = fields.Date(allow_none=True)
    purchase_order_ref = fields.String(allow_none=True, validate=validate.Length(max=100))
    note = fields.String(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why, for the audit trail"})
    lines = fields.List(fields.Nested(LineIn), required=True, validate=validate.Length(min=1))


class LinesIn(Schema):
    lines = fields.List(fields.Nested(LineIn), required=True, validate=validate.Length(min=1))


class IssueIn(Schema):
    issue_date = fields.Date(allow_none=True, metadata={"description": "Defaults to today (Europe/Paris)"})
    reason = fields.String(allow_none=True)


class CreditIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1))
    lines = fields.List(fields.Nested(LineIn), validate=validate.Length(min=1),
                        metadata={"description": "Omitted: the whole invoice is credited"})
    issue_date = fields.Date(allow_none=True)


class CancelIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1))


class InvoiceListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(INVOICE_STATUSES))
    kind = fields.String(validate=validate.OneOf(INVOICE_KINDS))
    client = fields.String(metadata={"description": "Client code"})
    entity = fields.String(metadata={"description": "Entity code"})
    contract = fields.String(metadata={"description": "Contract reference"})


# ---------------------------------------------------------------- output


class InvoiceSummary(Schema):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    number = fields.String(allow_none=True, metadata={"description": "Given when issued"})
    entity = fields.String()
    client = fields.String()
    contract = fields.String(allow_none=True)
    currency = fields.String()
    issue_date = fields.Date(allow_none=True)
    due_date = fields.Date(allow_none=True)
    total_net = MoneyAmount()
    total_vat = MoneyAmount()
    total_gross = MoneyAmount()
    created_at = fields.DateTime()


class LineOut(Schema):
    position = fields.Integer()
    description = fields.String()
    quantity = DecimalString()
    unit = fields.String()
    unit_price = MoneyAmount(exact=True)
    vat = fields.Nested(VatOut)
    net_amount = MoneyAmount()


class VatGroupOut(Schema):
    category = fields.String()
    rate = DecimalString()
    exemption_reason = fields.String(allow_none=True)
    base = MoneyAmount()
    tax = MoneyAmount()


class InvoiceAllocationOut(Schema):
    payment_id = fields.Integer()
    amount = MoneyAmount()
    received_on = fields.Date()


class InvoiceDetail(InvoiceSummary):
    milestone = fields.String(allow_none=True, metadata={"description": "Milestone reference"})
    corrects_invoice_id = fields.Integer(allow_none=True)
    corrects_number = fields.String(allow_none=True)
    service_date = fields.Date(allow_none=True)
    purchase_order_ref = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    payment_terms = fields.Dict(allow_none=True)
    seller = fields.Dict(allow_none=True, metadata={"description": "The entity as it was on the issue date"})
    buyer = fields.Dict(allow_none=True, metadata={"description": "The client as it was on the issue date"})
    created_by = fields.String()
    issued_at = fields.DateTime(allow_none=True)
    issued_by = fields.String(allow_none=True)
    lines = fields.List(fields.Nested(LineOut))
    vat_breakdown = fields.List(fields.Nested(VatGroupOut))
    paid = MoneyAmount()
    credited = MoneyAmount()
    open_balance = MoneyAmount(metadata={"description": "Still due: total less payments and credit notes"})
    allocations = fields.List(fields.Nested(InvoiceAllocationOut))


InvoicePage = page_of(InvoiceSummary, "InvoicePage")


def present_summary(invoice: Invoice) -> dict[str, Any]:
    return {
        **{c: getattr(invoice, c) for c in ("id", "kind", "status", "number", "currency", "issue_date", "due_date",
                                          "total_net", "total_vat", "total_gross", "created_at")},
        "entity": invoice.entity.code,
        "client": invoice.client.code,
        "contract": invoice.contract.reference if invoice.contract else None,
    }


def present_detail(invoice: Invoice) -> dict[str, Any]:
    session = db()
    totals = invoicing.invoice_totals(invoice)
    return {
        **present_summary(invoice),
        **{c: getattr(invoice, c) for c in ("corrects_invoice_id", "service_date", "purchase_order_ref", "note",
                                          "payment_terms", "seller", "buyer", "created_by", "issued_at", "issued_by")},
        "milestone": invoice.milestone.reference if invoice.milestone else None,
        "corrects_number": invoice.corrects.number if invoice.corrects else None,
        "lines": [{**{c: getattr(line, c) for c in ("position", "description", "quantity", "unit", "unit_price",
                                                   "vat", "net_amount")}, "currency": invoice.currency}
                  for line in invoice.lines],
        "vat_breakdown": [{"category": g.vat.category, "rate": g.vat.rate, "exemption_reason": g.vat.exemption_reason,
                           "base": g.base, "tax": g.tax} for g in totals.groups],
        "paid": payments.paid_total(invoice),
        "credited": invoicing.credited_total(session, invoice),
        "open_balance": payments.open_balance(session, invoice),
        "allocations": [{"payment_id": a.payment_id, "amount": invoice.money(a.amount),
                         "received_on": a.payment.received_on} for a in invoice.allocations],
    }


def line_specs(lines: list[dict[str, Any]]) -> list[invoicing.LineSpec]:
    specs = []
    for line in lines:
        specs.append(invoicing.LineSpec(
            description=line["description"],
            quantity=line["quantity"],
            unit_price=line["unit_price"],
            unit=line["unit"],
            vat=Vat(**(line.get("vat") or {})),
        ))
    return specs


def _created(invoice: Invoice):  # type: ignore[no-untyped-def]
    return present_detail(invoice), 201, {"Location": url_for("invoices.InvoiceById", invoice_id=invoice.id)}


# ---------------------------------------------------------------- routes


@blp.route("")
class Invoices(MethodView):
    @blp.arguments(InvoiceListArgs, location="query")
    @blp.response(200, InvoicePage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List invoices and credit notes (newest first)"""
        query = select(Invoice).order_by(Invoice.id.desc())
        for name in ("status", "kind"):
            if name in args:
                query = query.where(getattr(Invoice, name) == args[name])
        if "client" in args:
            query = query.where(Invoice.client_id.in_(select(Client.id).where(Client.code == args["client"])))
        if "entity" in args:
            query = query.where(Invoice.entity_id.in_(select(Entity.id).where(Entity.code == args["entity"])))
        if "contract" in args:
            contract = aliased(Contract)
            query = query.where(Invoice.contract_id.in_(
                select(contract.id).where(contract.reference == args["contract"])))
        return paginate(db(), query, args, present_summary)

    @blp.arguments(DraftIn)
    @blp.response(201, InvoiceDetail)
    def post(self, data):  # type: ignore[no-untyped-def]
        """Create a manual draft"""
        session = db()
        invoice = invoicing.create_draft(
            session,
            entity=catalog.get_entity(session, data["entity"]),
            client=catalog.get_client(session, data["client"]),
            contract=catalog.get_contract(session, data["contract"]) if data.get("contract") else None,
            currency=data.get("currency"),
            service_date=data.get("service_date"),
            purchase_order_ref=data.get("purchase_order_ref"),
            note=data.get("note"),
            reason=data.get("reason"),
            lines=line_specs(data["lines"]),
            actor=actor(),
        )
        return _created(invoice)


@blp.route("/<int:invoice_id>")
class InvoiceById(MethodView):
    @blp.response(200, InvoiceDetail)
    def get(self, invoice_id):  # type: ignore[no-untyped-def]
        """Get an invoice with its lines, VAT breakdown and open balance"""
        return present_detail(invoicing.get_invoice(db(), invoice_id))


@blp.route("/<int:invoice_id>/lines", methods=["PUT"])
@blp.arguments(LinesIn)
@blp.response(200, InvoiceDetail)
def replace_lines(data, invoice_id):  # type: ignore[no-untyped-def]
    """Replace a draft's lines (an issued invoice is corrected by a credit note)"""
    session = db()
    invoice = invoicing.get_invoice(session, invoice_id)
    invoicing.replace_lines(session, invoice, line_specs(data["lines"]), actor=actor())
    return present_detail(invoice)


@blp.route("/<int:invoice_id>/issue", methods=["POST"])
@blp.arguments(IssueIn)
@blp.response(200, InvoiceDetail)
def issue(data, invoice_id):  # type: ignore[no-untyped-def]
    """Issue a draft: give it its number and freeze it"""
    session = db()
    invoice = invoicing.issue(session, invoice_id, actor=actor(), issue_date=data.get("issue_date"),
                              reason=data.get("reason"))
    notify.on_invoice_issued(session, invoice)
    return present_detail(invoice)


@blp.route("/<int:invoice_id>/credit", methods=["POST"])
@blp.arguments(CreditIn)
@blp.response(201, InvoiceDetail, description="The credit note, issued")
def credit(data, invoice_id):  # type: ignore[no-untyped-def]
    """Correct an issued invoice with a credit note (whole, or the lines given)"""
    note = invoicing.credit(
        db(), invoice_id, actor=actor(), reason=data["reason"],
        lines=line_specs(data["lines"]) if "lines" in data else None, issue_date=data.get("issue_date"),
    )
    return _created(note)


@blp.route("/<int:invoice_id>/cancel", methods=["POST"])
@blp.arguments(CancelIn)
@blp.response(200, InvoiceDetail)
def cancel(data, invoice_id):  # type: ignore[no-untyped-def]
    """Cancel a draft (an issued invoice is credited instead)"""
    session = db()
    invoice = invoicing.cancel_draft(session, invoicing.get_invoice(session, invoice_id), actor=actor(),
                                     reason=data["reason"])
    return present_detail(invoice)
