"""Invoices and credit notes, by id: drafts, approval and issuing, credit
notes, cancelling, their documents (the Factur-X PDF and its XML), and
sending them to the clients.

Finance tokens may write here as well as admin tokens.
"""

from __future__ import annotations

import io
import unicodedata
from typing import Any
from urllib.parse import quote

import marshmallow as ma
from flask import current_app, send_file, url_for
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.orm import aliased

from jalon.core import approval, balances, catalog, invoicing
from jalon.core.models import INVOICE_KINDS, INVOICE_STATUSES, Client, Contract, Entity, Invoice
from jalon.core.money import Money
from jalon.core.vat import Vat

from jalon.connector.outbox import notify

from jalon.connector.outbox import sending
from jalon.connector.outbox.rendering import ensure_documents, store_after_issue
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import (
    DecimalString, Id, MoneyAmount, PageArgs, Schema, StrictBoolean, VatIn, VatOut, currency_field, page_of, paginate,
)

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
    disbursement = StrictBoolean(load_default=False, metadata={
        "description": "A disbursement (débours): a cost paid in the client's name and on its behalf, outside the "
                       "taxable amount (art. 267 II 2° du CGI); issued as an exempt line with code VATEX-EU-79-C, "
                       "so that it may sit beside taxable lines. Give no vat with it."})

    @ma.validates_schema
    def _disbursement_has_no_vat(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("disbursement") and data.get("vat"):
            raise ma.ValidationError("a disbursement carries no VAT of its own: leave vat out", "vat")


class DraftIn(Schema):
    entity = fields.String(required=True, metadata={"description": "Entity code"})
    client = fields.String(required=True, metadata={"description": "Client code"})
    contract = fields.String(allow_none=True, metadata={"description": "Contract reference"})
    currency = currency_field(allow_none=True)
    service_date = fields.Date(allow_none=True)
    purchase_order_ref = fields.String(allow_none=True, validate=validate.Length(max=100))
    note = fields.String(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "Why, for the audit trail"})
    prepaid_amount = DecimalString(load_default="0", metadata={
        "example": "300.00", "description": "Deposits already paid, printed with the net amount due (default 0)"})
    lines = fields.List(fields.Nested(LineIn), required=True, validate=validate.Length(min=1))
    deposit = StrictBoolean(load_default=False, metadata={
        "description": "A deposit invoice (acompte, type 386), deducted later by a final invoice"})
    deposits = fields.List(Id("invoices"), load_default=list, validate=validate.Length(max=100), metadata={
        "description": "The issued deposit invoices this final invoice deducts (ids): their totals incl. VAT are "
                       "its prepaid amount, and it is a final invoice after deposits (BT-23 S4)"})


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


class ApproveIn(IssueIn):
    pass


class SendIn(Schema):
    all_issued = StrictBoolean(metadata={"description": "Every issued invoice and credit note not sent yet "
                                                         "(those whose client has no billing e-mail are skipped)"})
    invoice_ids = fields.List(Id("invoices"), validate=validate.Length(min=1, max=1000),
                              metadata={"description": "These invoices (all refused if one cannot be sent)"})

    @ma.validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        if bool(data.get("all_issued")) == bool(data.get("invoice_ids")):
            raise ma.ValidationError('give "invoice_ids" or "all_issued": true (not both)')


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
    deposit = fields.Boolean(metadata={"description": "A deposit invoice (acompte, type 386)"})
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
    exemption_code = fields.String(allow_none=True)
    base = MoneyAmount()
    tax = MoneyAmount()


class InvoiceAllocationOut(Schema):
    payment_id = fields.Integer()
    amount = MoneyAmount()
    received_on = fields.Date()


class DocumentLinks(Schema):
    pdf = fields.String(metadata={"description": "The Factur-X PDF (EN 16931, PDF/A-3 with the XML embedded)"})
    xml = fields.String(metadata={"description": "The CII XML alone"})


class SendingOut(Schema):
    status = fields.String(metadata={"description": "not_sent, pending, sending, sent or failed"})
    to = fields.List(fields.String())
    queued_at = fields.DateTime(allow_none=True)
    sent_at = fields.DateTime(allow_none=True)
    message_id = fields.String(allow_none=True, metadata={"description": "The e-mail's Message-ID, once sent"})
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    outbox_id = fields.Integer(allow_none=True)


class SendOut(Schema):
    queued = fields.Integer(metadata={"description": "Invoices queued now"})
    already_queued = fields.Integer(metadata={"description": "Invoices queued or sent before: not queued again"})
    skipped_no_email = fields.List(fields.String(), metadata={"description": "Numbers of invoices whose client "
                                                                             "has no billing e-mail"})


class DeductedDeposit(Schema):
    id = fields.Integer()
    number = fields.String()
    total_gross = MoneyAmount()


class InvoiceDetail(InvoiceSummary):
    milestone = fields.String(allow_none=True, metadata={"description": "Milestone reference"})
    deposits = fields.List(fields.Nested(DeductedDeposit), metadata={
        "description": "The deposit invoices this final invoice deducts"})
    exchange_rate = DecimalString(allow_none=True, metadata={
        "description": "Another currency than EUR: the ECB rate used (units of the currency for 1 EUR), frozen "
                       "when issued"})
    exchange_rate_date = fields.Date(allow_none=True, metadata={"description": "The ECB day of that rate"})
    vat_total_eur = MoneyAmount(allow_none=True, metadata={
        "description": "The VAT total in euros (BT-111), stated on an invoice in another currency"})
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
    prepaid_amount = MoneyAmount(metadata={"description": "Deposits already paid"})
    amount_due = MoneyAmount(metadata={"description": "Total incl. VAT less the deposits already paid"})
    documents = fields.Nested(DocumentLinks, allow_none=True, metadata={"description": "Issued invoices only"})
    sending = fields.Nested(SendingOut, allow_none=True,
                            metadata={"description": "The e-mail to the client; issued invoices only"})


InvoicePage = page_of(InvoiceSummary, "InvoicePage")


def present_summary(invoice: Invoice) -> dict[str, Any]:
    return {
        **{c: getattr(invoice, c) for c in ("id", "kind", "deposit", "status", "number", "currency", "issue_date",
                                          "due_date", "total_net", "total_vat", "total_gross", "created_at")},
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
        "deposits": [{"id": d.deposit.id, "number": d.deposit.number,
                      "total_gross": d.deposit.money(d.deposit.total_gross)} for d in invoice.deposits],
        "exchange_rate": invoice.exchange_rate,
        "exchange_rate_date": invoice.exchange_rate_date,
        "vat_total_eur": None if invoice.vat_total_eur is None else Money(invoice.vat_total_eur, "EUR"),
        "corrects_number": invoice.corrects.number if invoice.corrects else None,
        "lines": [{**{c: getattr(line, c) for c in ("position", "description", "quantity", "unit", "unit_price",
                                                   "vat", "net_amount")}, "currency": invoice.currency}
                  for line in invoice.lines],
        "vat_breakdown": [{"category": g.vat.category, "rate": g.vat.rate, "exemption_reason": g.vat.exemption_reason,
                           "exemption_code": g.vat.exemption_code, "base": g.base, "tax": g.tax} for g in totals.groups],
        "paid": balances.paid_total(invoice),
        "credited": balances.credited_total(session, invoice),
        "open_balance": balances.open_balance(session, invoice),
        "allocations": [{"payment_id": a.payment_id, "amount": invoice.money(a.amount),
                         "received_on": a.payment.received_on} for a in invoice.allocations],
        "prepaid_amount": invoice.money(invoice.prepaid_amount),
        "amount_due": invoice.amount_due,
        "documents": None if invoice.number is None else {
            "pdf": url_for("invoices.pdf_document", invoice_id=invoice.id),
            "xml": url_for("invoices.xml_document", invoice_id=invoice.id),
        },
        "sending": sending.sending_status(session, invoice),
    }


def line_specs(lines: list[dict[str, Any]]) -> list[invoicing.LineSpec]:
    specs = []
    for line in lines:
        specs.append(invoicing.LineSpec(
            description=line["description"],
            quantity=line["quantity"],
            unit_price=line["unit_price"],
            unit=line["unit"],
            vat=Vat.disbursement() if line.get("disbursement") else Vat(**(line.get("vat") or {})),
        ))
    return specs


def _issued(invoice: Invoice) -> Invoice:
    """Commit the issue, then store the documents (:func:`store_after_issue`)."""
    session = db()
    notify.on_invoice_issued(session, invoice)
    session.commit()
    store_after_issue(current_app.extensions["jalon"], invoice.id, invoice.number)
    return invoice


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
            prepaid_amount=data["prepaid_amount"],
            lines=line_specs(data["lines"]),
            deposit=data["deposit"],
            deposits=[invoicing.get_invoice(session, i) for i in data["deposits"]],
            actor=actor(),
        )
        invoicing.electronic_address_of(invoice.entity)  # refused now rather than when it is issued
        invoicing.electronic_address_of(invoice.client)
        return _created(invoice)


@blp.route("/<id(invoices):invoice_id>")
class InvoiceById(MethodView):
    @blp.response(200, InvoiceDetail)
    def get(self, invoice_id):  # type: ignore[no-untyped-def]
        """Get an invoice with its lines, VAT breakdown and open balance"""
        return present_detail(invoicing.get_invoice(db(), invoice_id))


@blp.route("/<id(invoices):invoice_id>/lines", methods=["PUT"])
@blp.arguments(LinesIn)
@blp.response(200, InvoiceDetail)
def replace_lines(data, invoice_id):  # type: ignore[no-untyped-def]
    """Replace a draft's lines (an issued invoice is corrected by a credit note)"""
    session = db()
    invoice = invoicing.get_invoice(session, invoice_id)
    invoicing.replace_lines(session, invoice, line_specs(data["lines"]), actor=actor())
    return present_detail(invoice)


@blp.route("/<id(invoices):invoice_id>/issue", methods=["POST"])
@blp.arguments(IssueIn)
@blp.response(200, InvoiceDetail)
def issue(data, invoice_id):  # type: ignore[no-untyped-def]
    """Issue a draft: give it its number and freeze it"""
    invoice = invoicing.issue(db(), invoice_id, actor=actor(), issue_date=data.get("issue_date"),
                              reason=data.get("reason"))
    return present_detail(_issued(invoice))


@blp.route("/<id(invoices):invoice_id>/approve", methods=["POST"])
@blp.arguments(ApproveIn)
@blp.response(200, InvoiceDetail, description="The invoice, issued, with the links to its documents")
@blp.alt_response(409, response="CONFLICT", description="`invoice_not_draft`, `issue_date_out_of_order`")
def approve(data, invoice_id):  # type: ignore[no-untyped-def]
    """Approve a draft: record who approved it, issue it, and store its documents"""
    invoice = approval.approve(db(), invoice_id, actor=actor(), issue_date=data.get("issue_date"),
                               reason=data.get("reason"))
    return present_detail(_issued(invoice))


@blp.route("/<id(invoices):invoice_id>/credit", methods=["POST"])
@blp.arguments(CreditIn)
@blp.response(201, InvoiceDetail, description="The credit note, issued")
def credit(data, invoice_id):  # type: ignore[no-untyped-def]
    """Correct an issued invoice with a credit note (whole, or the lines given)"""
    note = invoicing.credit(
        db(), invoice_id, actor=actor(), reason=data["reason"],
        lines=line_specs(data["lines"]) if "lines" in data else None, issue_date=data.get("issue_date"),
    )
    return _created(_issued(note))


@blp.route("/<id(invoices):invoice_id>/cancel", methods=["POST"])
@blp.arguments(CancelIn)
@blp.response(200, InvoiceDetail)
def cancel(data, invoice_id):  # type: ignore[no-untyped-def]
    """Cancel a draft (an issued invoice is credited instead)"""
    session = db()
    invoice = invoicing.cancel_draft(session, invoicing.get_invoice(session, invoice_id), actor=actor(),
                                     reason=data["reason"])
    return present_detail(invoice)


# ---------------------------------------------------------------- documents


def _document(invoice_id: int, kind: str):  # type: ignore[no-untyped-def]
    # the request's transaction (its token's check) ends first: rendering, if the documents are not
    # stored yet, happens outside any transaction. Unknown -> invoice_not_found, not issued ->
    # invoice_not_issued
    db().commit()
    document = ensure_documents(current_app.extensions["jalon"].sessionmaker, invoice_id)[kind]
    response = send_file(io.BytesIO(document.content), mimetype=document.media_type, etag=document.sha256,
                         conditional=True)
    response.headers["Content-Disposition"] = attachment(document.filename)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def attachment(filename: str) -> str:
    """``attachment; filename="F2026-00012.pdf"``; a prefix's '/' would read as
    a folder, and a non-ASCII letter needs RFC 6266's ``filename*`` too."""
    from jalon.core.documents.store import safe_file_name  # loaded already: a document is being served

    name = safe_file_name(filename)  # also for a document stored before names were made safe
    if name.isascii():
        return f'attachment; filename="{name}"'
    fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"


DOCUMENT_HEADERS = {
    "Content-Disposition": {"description": 'attachment; filename="<number>.pdf"', "schema": {"type": "string"}},
    "ETag": {"description": "The SHA-256 of the stored bytes (If-None-Match answers 304)",
             "schema": {"type": "string"}},
}


@blp.route("/<id(invoices):invoice_id>/pdf", methods=["GET"])
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/pdf", headers=DOCUMENT_HEADERS,
              description="The Factur-X PDF (EN 16931; PDF/A-3 with factur-x.xml embedded), as stored when issued")
@blp.alt_response(409, response="CONFLICT", description="`invoice_not_issued`: a draft has no documents")
def pdf_document(invoice_id):  # type: ignore[no-untyped-def]
    """Download the invoice's PDF (Factur-X)"""
    return _document(invoice_id, "pdf")


@blp.route("/<id(invoices):invoice_id>/facturx.xml", methods=["GET"])
@blp.response(200, {"type": "string", "format": "binary"}, content_type="application/xml", headers=DOCUMENT_HEADERS,
              description="The CII XML (Factur-X EN 16931), the same bytes as embedded in the PDF")
@blp.alt_response(409, response="CONFLICT", description="`invoice_not_issued`: a draft has no documents")
def xml_document(invoice_id):  # type: ignore[no-untyped-def]
    """Download the invoice's Factur-X XML"""
    return _document(invoice_id, "xml")


# ---------------------------------------------------------------- sending


@blp.route("/send", methods=["POST"])
@blp.arguments(SendIn)
@blp.response(202, SendOut, description="Queued: the dispatcher sends them (see each invoice's `sending`)")
@blp.alt_response(409, response="CONFLICT",
                  description="`invoice_not_issued`, `client_has_no_billing_email` (with `invoice_ids`)")
def send(data):  # type: ignore[no-untyped-def]
    """Send invoices to their clients by e-mail, the PDF attached: each invoice once, ever"""
    session = db()
    all_issued = bool(data.get("all_issued"))
    invoices = sending.issued_invoices(session) if all_issued else sending.by_ids(session, data["invoice_ids"])
    plan = sending.plan(session, invoices, strict=not all_issued)
    for invoice in plan.to_queue:
        sending.queue(session, invoice, actor=actor())
    session.flush()
    current_app.extensions["jalon"].wake_dispatcher.set()
    return {"queued": len(plan.to_queue), "already_queued": sum(len(pairs) for pairs in plan.queued.values()),
            "skipped_no_email": [invoice.number for invoice in plan.no_email]}
