"""Payments received, their allocation to invoices, and clients' balances
(an invoice's own open balance: :mod:`jalon.core.balances`).

A payment is recorded once and never edited. It is allocated to the invoices it
names, in the order given, each up to its open balance; what is left over
(an over-payment) stays on the payment as the client's credit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .balances import open_balance, refresh_status
from .errors import Conflict, Invalid, NotFound
from .models import Client, Invoice, Payment, PaymentAllocation
from .money import Money

OPEN_STATUSES = ("issued", "partially_paid")


@dataclass(frozen=True, slots=True)
class Allocation:
    """An invoice named by its number, with the amount to put on it (or None: as
    much as the payment and the invoice's balance allow)."""

    invoice_number: str
    amount: Money | None = None


def find_invoice_by_number(session: Session, number: str, *, entity_id: int | None = None) -> Invoice:
    query = select(Invoice).where(Invoice.number == number)
    if entity_id is not None:
        query = query.where(Invoice.entity_id == entity_id)
    found = session.execute(query).scalars().all()
    if not found:
        raise NotFound(f"no issued invoice numbered {number!r}", code="invoice_not_found")
    if len(found) > 1:
        raise Invalid(
            f"invoice number {number!r} exists for several entities: say which entity", code="ambiguous_invoice_number"
        )
    return found[0]


def record_payment(
    session: Session,
    *,
    amount: Money,
    received_on: date,
    allocations: Sequence[Allocation],
    actor: str,
    client: Client | None = None,
    entity_id: int | None = None,
    method: str = "transfer",
    reference: str | None = None,
) -> Payment:
    if amount.amount <= 0:
        raise Invalid("a payment's amount must be positive", code="invalid_payment_amount")
    invoices: list[Invoice] = []
    for allocation in allocations:
        invoice = find_invoice_by_number(session, allocation.invoice_number, entity_id=entity_id)
        if invoice in invoices:
            raise Invalid(f"invoice {invoice.number} is named twice", code="duplicate_allocation")
        invoices.append(invoice)
    if client is None:
        if not invoices:
            raise Invalid("name the client or at least one invoice", code="payment_client_required")
        client = invoices[0].client
    for invoice in invoices:
        if invoice.kind != "invoice":
            raise Invalid(f"{invoice.number} is a credit note: a payment goes to invoices", code="not_an_invoice")
        if invoice.client_id != client.id:
            raise Invalid(f"invoice {invoice.number} belongs to another client", code="client_mismatch")
        if invoice.currency != amount.currency:
            raise Invalid(
                f"invoice {invoice.number} is in {invoice.currency}, the payment in {amount.currency}",
                code="currency_mismatch",
            )
        if invoice.status not in OPEN_STATUSES:
            raise Conflict(f"invoice {invoice.number} is {invoice.status}: nothing is owed on it", code="invoice_not_open")
    payment = Payment(
        client=client,
        amount=amount.amount,
        currency=amount.currency,
        received_on=received_on,
        method=method,
        reference=reference,
        created_by=actor,
    )
    session.add(payment)
    remaining = amount
    for allocation, invoice in zip(allocations, invoices):
        balance = open_balance(session, invoice)
        wanted = allocation.amount if allocation.amount is not None else remaining.min(balance)
        if wanted.amount <= 0:
            if allocation.amount is not None:
                raise Invalid("an allocation's amount must be positive", code="invalid_allocation")
            continue
        if wanted > balance:
            raise Invalid(
                f"{wanted} is more than the {balance} still due on {invoice.number}", code="allocation_exceeds_balance"
            )
        if wanted > remaining:
            raise Invalid("the allocations add up to more than the payment", code="allocation_exceeds_payment")
        session.add(PaymentAllocation(payment=payment, invoice=invoice, amount=wanted.amount))
        remaining = remaining - wanted
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="payment.recorded",
        subject=payment,
        details={
            "amount": amount,
            "received_on": received_on,
            "allocations": {a.invoice.number: Money(a.amount, payment.currency) for a in payment.allocations},
            "unallocated": remaining,
        },
    )
    for invoice in invoices:
        refresh_status(session, invoice, actor=actor, reason=f"payment {payment.id}")
    return payment


@dataclass(frozen=True, slots=True)
class ClientBalance:
    client_id: int
    currency: str
    invoiced_open: Money
    unallocated_payments: Money

    @property
    def balance(self) -> Money:
        """Positive: the client owes; negative: the client is in credit."""
        return self.invoiced_open - self.unallocated_payments


def client_balances(session: Session, client: Client) -> list[ClientBalance]:
    """The client's open balance, one per currency it is invoiced or pays in."""
    # paid and credited invoices count too: once credited after a payment, their
    # open balance is negative, money the client has paid and is owed back
    invoices = session.execute(
        select(Invoice).where(
            Invoice.client_id == client.id, Invoice.kind == "invoice", Invoice.status.not_in(("draft", "cancelled"))
        )
    ).scalars()
    open_by: dict[str, Money] = {}
    for invoice in invoices:
        open_by[invoice.currency] = open_by.get(invoice.currency, Money.zero(invoice.currency)) + open_balance(
            session, invoice
        )
    credit_by: dict[str, Money] = {}
    for payment in session.execute(select(Payment).where(Payment.client_id == client.id)).scalars():
        credit_by[payment.currency] = credit_by.get(payment.currency, Money.zero(payment.currency)) + payment.unallocated
    currencies = sorted(set(open_by) | set(credit_by)) or [client.currency]
    return [
        ClientBalance(
            client_id=client.id,
            currency=c,
            invoiced_open=open_by.get(c, Money.zero(c)),
            unallocated_payments=credit_by.get(c, Money.zero(c)),
        )
        for c in currencies
    ]
