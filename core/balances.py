"""What an invoice is owed: its payments, its credit notes, its open balance,
and the status they give it.

Issuing a credit note (:mod:`jalon.core.invoicing`) and recording a payment
(:mod:`jalon.core.payments`) both change what is owed, and both derive the
invoice's status from it here: this module sits below both.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .models import Invoice
from .money import Money


def paid_total(invoice: Invoice) -> Money:
    return sum((invoice.money(a.amount) for a in invoice.allocations), Money.zero(invoice.currency))


def credited_total(session: Session, invoice: Invoice) -> Money:
    notes = session.execute(
        select(Invoice.total_gross).where(
            Invoice.corrects_invoice_id == invoice.id,
            Invoice.kind == "credit_note",
            Invoice.status != "cancelled",
        )
    ).scalars()
    return sum((invoice.money(amount) for amount in notes), Money.zero(invoice.currency))


def open_balance(session: Session, invoice: Invoice) -> Money:
    """What the client still owes on this invoice: its amount due (the total, less the
    deposits it deducts, which are owed on the deposit invoices themselves), less
    payments and credit notes. Drafts, cancelled invoices and credit notes owe nothing."""
    if invoice.kind != "invoice" or invoice.status in ("draft", "cancelled"):
        return Money.zero(invoice.currency)
    return invoice.amount_due - paid_total(invoice) - credited_total(session, invoice)


def refresh_status(session: Session, invoice: Invoice, *, actor: str, reason: str | None = None) -> None:
    """Derive the invoice's status from its payments and credit notes."""
    if invoice.kind != "invoice" or invoice.status in ("draft", "cancelled"):
        return
    gross = invoice.money(invoice.total_gross)
    credited = credited_total(session, invoice)
    paid = paid_total(invoice)
    if credited >= gross:
        status = "credited"
    elif paid + credited >= invoice.amount_due:
        status = "paid"
    elif paid.amount > 0:
        status = "partially_paid"
    else:
        status = "issued"
    if status != invoice.status:
        previous, invoice.status = invoice.status, status
        if status == "credited" and invoice.milestone is not None:
            # the milestone's work is still done; it simply has no live invoice any more
            invoice.milestone.status = "done"
        if status == "credited" and invoice.deposits:
            # a final invoice cancelled by its credit note frees its deposits for the one replacing it
            released = [link.deposit.number for link in invoice.deposits]
            invoice.deposits = []
            audit.record(session, actor=actor, action="invoice.deposits_released", subject=invoice, reason=reason,
                         details={"deposits": released})
        audit.record(
            session,
            actor=actor,
            action=f"invoice.{status}",
            subject=invoice,
            reason=reason,
            details={"from": previous, "paid": paid, "credited": credited},
        )
