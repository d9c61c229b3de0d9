"""Invoices: drafting, totals, issuing with gap-free numbers, credit notes.

Totals follow EN 16931: each line's net amount is rounded to the currency's
minor unit, then VAT is computed once per (category, rate) group on the sum of
that group's lines, so the printed breakdown and the totals always add up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import audit, fx
from . import guards as _guards  # noqa: F401  (installs the append-only guard)
from .balances import credited_total, refresh_status
from .db import insert_ignoring_conflicts
from .errors import Conflict, Invalid, NotFound
from .identifiers import EMAIL_SCHEME, FRENCH_DIRECTORY
from .models import Client, Contract, Entity, Invoice, InvoiceDeposit, InvoiceLine, InvoiceSequence, Milestone
from .money import Money, to_decimal
from .types import utcnow
from .vat import EXEMPT, OUTSIDE_SCOPE, STANDARD, ZERO, Vat, check_french_rate

BUSINESS_TZ = ZoneInfo("Europe/Paris")
UNITS = {"C62": "unit", "HUR": "hour", "DAY": "day", "MON": "month", "ANN": "year", "LS": "lump sum"}


def business_today() -> date:
    """Invoices are dated in French time, whatever the server's clock zone."""
    return datetime.now(BUSINESS_TZ).date()


# decimals of a line's quantity and unit price at most: what EN 16931 carries, enough for an hourly rate
LINE_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class LineSpec:
    description: str
    quantity: Decimal
    unit_price: Decimal
    unit: str = "C62"
    vat: Vat = field(default_factory=Vat)

    def __post_init__(self) -> None:
        if not str(self.description).strip():
            raise Invalid("a line needs a description", code="line_description_required")
        quantity = to_decimal(self.quantity, what="quantity")
        if quantity <= 0:
            raise Invalid("a line's quantity must be positive", code="invalid_quantity")
        unit_price = to_decimal(self.unit_price, what="unit price")
        for what, value in (("quantity", quantity), ("unit price", unit_price)):
            # the invoice prints and the Factur-X carries what the net was computed from
            if value.normalize().as_tuple().exponent < -LINE_DECIMALS:
                raise Invalid(f"a line's {what} has at most {LINE_DECIMALS} decimals, not {value}",
                              code="too_many_decimals")
        object.__setattr__(self, "quantity", quantity)
        object.__setattr__(self, "unit_price", unit_price)
        if self.unit not in UNITS:
            raise Invalid(
                f"unit must be one of {', '.join(UNITS)} (UN/ECE rec. 20), not {self.unit!r}",
                code="invalid_unit",
            )


@dataclass(frozen=True, slots=True)
class VatGroup:
    vat: Vat
    base: Money
    tax: Money


@dataclass(frozen=True, slots=True)
class Totals:
    net: Money
    vat: Money
    gross: Money
    groups: tuple[VatGroup, ...]


def line_net(quantity: Decimal, unit_price: Decimal, currency: str) -> Money:
    return (Money(unit_price, currency) * quantity).quantize()


def compute_totals(currency: str, lines: Iterable[tuple[Vat, Money]]) -> Totals:
    """Totals per VAT group from (vat, rounded line net) pairs."""
    bases: dict[tuple[str, Decimal], tuple[Vat, Money]] = {}
    for vat, net in lines:
        known = bases.get(vat.key)
        bases[vat.key] = (vat, net if known is None else known[1] + net)
    groups = []
    for key in sorted(bases, key=lambda k: (k[0] != "S", -k[1], k[0])):
        vat, base = bases[key]
        tax = (base * vat.rate * Decimal("0.01")).quantize()
        groups.append(VatGroup(vat, base, tax))
    net = sum((g.base for g in groups), Money.zero(currency))
    tax = sum((g.tax for g in groups), Money.zero(currency))
    return Totals(net=net, vat=tax, gross=net + tax, groups=tuple(groups))


def invoice_totals(invoice: Invoice) -> Totals:
    return compute_totals(invoice.currency, ((line.vat, invoice.money(line.net_amount)) for line in invoice.lines))


def _refresh_totals(invoice: Invoice) -> Totals:
    totals = invoice_totals(invoice)
    invoice.total_net = totals.net.amount
    invoice.total_vat = totals.vat.amount
    invoice.total_gross = totals.gross.amount
    return totals


def get_invoice(session: Session, invoice_id: int, *, lock: bool = False) -> Invoice:
    query = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    invoice = session.execute(query).scalar_one_or_none()
    if invoice is None:
        raise NotFound(f"no invoice {invoice_id}", code="invoice_not_found")
    return invoice


def create_draft(
    session: Session,
    *,
    entity: Entity,
    client: Client,
    lines: Sequence[LineSpec],
    actor: str,
    currency: str | None = None,
    contract: Contract | None = None,
    milestone: Milestone | None = None,
    service_date: date | None = None,
    purchase_order_ref: str | None = None,
    note: str | None = None,
    reason: str | None = None,
    prepaid_amount: Decimal | str | int = 0,
    deposit: bool = False,
    deposits: Sequence[Invoice] = (),
) -> Invoice:
    """A draft invoice. ``deposit`` makes it a deposit invoice (acompte, type 386);
    ``deposits`` are the issued deposit invoices this final invoice deducts (BT-23 S4):
    their totals incl. VAT are its prepaid amount (BT-113)."""
    currency = currency or (contract.currency if contract else client.currency)
    Money.zero(currency)  # validates the code
    if not lines:
        raise Invalid("an invoice needs at least one line", code="invoice_empty")
    if contract is not None and (contract.entity_id != entity.id or contract.client_id != client.id):
        raise Invalid("the contract belongs to another entity or client", code="contract_mismatch")
    if deposit and (deposits or Decimal(str(prepaid_amount or 0))):
        raise Invalid("a deposit invoice deducts no deposit", code="invalid_deposit")
    invoice = Invoice(
        kind="invoice",
        deposit=deposit,
        status="draft",
        entity=entity,
        client=client,
        contract=contract,
        milestone=milestone,
        currency=currency,
        service_date=service_date,
        purchase_order_ref=purchase_order_ref or (contract.purchase_order_ref if contract else None),
        note=note,
        created_by=actor,
        created_at=utcnow(),
    )
    _set_lines(invoice, lines)
    if deposits:
        if Decimal(str(prepaid_amount or 0)):
            raise Invalid("give either the deposits deducted or a prepaid amount, not both",
                          code="invalid_prepaid_amount")
        prepaid_amount = _deduct(session, invoice, deposits)
    invoice.prepaid_amount = _prepaid(invoice, prepaid_amount)
    session.add(invoice)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="invoice.drafted",
        subject=invoice,
        reason=reason,
        details={"total_gross": invoice.money(invoice.total_gross), "milestone_id": invoice.milestone_id,
                 **({"deposit": True} if deposit else {}),
                 **({"deducts": [d.number for d in deposits]} if deposits else {})},
    )
    return invoice


def _deduct(session: Session, invoice: Invoice, deposits: Sequence[Invoice]) -> Decimal:
    """Link the deposit invoices a final invoice deducts; their total incl. VAT is its prepaid amount.

    Each deposit is an issued deposit invoice of the same entity, client and currency,
    deducted once (a unique key; a cancelled draft frees its deposits)."""
    total = Decimal(0)
    for position, deposit in enumerate(deposits):
        field_name = f"deposits[{position}]"
        if not deposit.deposit or deposit.kind != "invoice" or deposit.status in ("draft", "cancelled", "credited"):
            raise Invalid(f"{field_name}: invoice {deposit.number or deposit.id} is not an issued deposit invoice",
                          code="invalid_deposit", details={"field": field_name})
        if (deposit.entity_id, deposit.client_id, deposit.currency) != (
            invoice.entity.id, invoice.client.id, invoice.currency
        ):
            raise Invalid(f"{field_name}: deposit {deposit.number} belongs to another entity, client or currency",
                          code="invalid_deposit", details={"field": field_name})
        taken = session.execute(
            select(Invoice.number, Invoice.id).join(InvoiceDeposit, InvoiceDeposit.invoice_id == Invoice.id)
            .where(InvoiceDeposit.deposit_id == deposit.id)
        ).first()
        if taken is not None or any(d is deposit for d in deposits[:position]):
            raise Conflict(f"{field_name}: deposit {deposit.number} is already deducted"
                           + (f" by invoice {taken.number or taken.id}" if taken else ""),
                           code="deposit_already_deducted", details={"field": field_name})
        invoice.deposits.append(InvoiceDeposit(deposit=deposit))
        total += deposit.total_gross
    return total


def check_lines(entity: Entity, lines: Sequence[LineSpec]) -> list[LineSpec]:
    """The lines as the rules let them be issued, or a clear refusal naming the line.

    - a seller under the franchise (art. 293 B du CGI) charges no VAT: every line that
      would be taxed or exempt becomes exempt under the franchise, with its mention;
    - a rate outside the French closed list is refused (BR-FR-16);
    - "not subject to VAT" (O) cannot share an invoice with other categories (BR-O-11,
      BR-O-12): disbursements beside taxable lines are lines marked as disbursements;
    - EN 16931 carries one exemption reason per VAT category (BG-23).
    """
    if entity.vat_franchise:
        lines = [replace(spec, vat=Vat.franchise()) if spec.vat.category in (STANDARD, ZERO, EXEMPT) else spec
                 for spec in lines]
    for position, spec in enumerate(lines):
        check_french_rate(spec.vat, field=f"lines[{position}].vat.rate")
    categories = {spec.vat.category for spec in lines}
    if OUTSIDE_SCOPE in categories and len(categories) > 1:
        position = next(i for i, spec in enumerate(lines) if spec.vat.category == OUTSIDE_SCOPE)
        raise Invalid(
            f"lines[{position}].vat.category: a line not subject to VAT (O) cannot sit beside lines of other "
            "categories (EN 16931 BR-O-11, BR-O-12); for disbursements (débours) mark the line "
            '"disbursement": true, or issue the outside-scope lines on an invoice of their own',
            code="vat_outside_scope_mixed", details={"field": f"lines[{position}].vat.category",
                                                     "rule": "BR-O-11"})
    reasons: dict[str, tuple[str | None, str | None]] = {}
    for position, spec in enumerate(lines):
        known = reasons.setdefault(spec.vat.category, (spec.vat.exemption_reason, spec.vat.exemption_code))
        if known != (spec.vat.exemption_reason, spec.vat.exemption_code):
            raise Invalid(
                f"lines[{position}].vat.exemption_reason: EN 16931 carries one exemption reason per VAT category, "
                f"and category {spec.vat.category} already has {known[0]!r}: issue these lines on another invoice",
                code="vat_exemption_reasons_conflict",
                details={"field": f"lines[{position}].vat.exemption_reason"})
    return list(lines)


def electronic_address_of(party: Entity | Client) -> tuple[str, str]:
    """(scheme, value) of a party's electronic invoicing address (BT-34, BT-49): the one
    configured; else the SIREN in the French directory (scheme 0225); else, for a client
    without a SIREN (abroad, or a consumer), its first billing e-mail (scheme EM); else a
    clear refusal."""
    if party.electronic_address:
        return party.electronic_address_scheme or FRENCH_DIRECTORY, party.electronic_address
    if party.siren:
        return FRENCH_DIRECTORY, party.siren
    emails = getattr(party, "billing_emails", None) or []
    if emails:
        return EMAIL_SCHEME, emails[0]
    what = "entity" if isinstance(party, Entity) else "client"
    raise Invalid(
        f"{what} {party.code} has no electronic invoicing address (BT-{'34' if what == 'entity' else '49'}, "
        "required by BR-FR-12/13) and no SIREN to derive it from: set its electronic_address "
        "(and electronic_address_scheme) or its siren",
        code="electronic_address_required", details={"field": "electronic_address", what: party.code})


def _set_lines(invoice: Invoice, lines: Sequence[LineSpec]) -> None:
    lines = check_lines(invoice.entity, lines)
    invoice.lines = [
        InvoiceLine(
            position=position,
            description=spec.description.strip(),
            quantity=spec.quantity,
            unit=spec.unit,
            unit_price=spec.unit_price,
            vat_category=spec.vat.category,
            vat_rate=spec.vat.rate,
            vat_exemption_reason=spec.vat.exemption_reason,
            vat_exemption_code=spec.vat.exemption_code,
            net_amount=line_net(spec.quantity, spec.unit_price, invoice.currency).amount,
        )
        for position, spec in enumerate(lines, start=1)
    ]
    _refresh_totals(invoice)


def _prepaid(invoice: Invoice, amount: Decimal | str | int) -> Decimal:
    """Deposits already paid, printed with the net amount due: between 0 and the total incl. VAT."""
    prepaid = Money(to_decimal(amount, what="prepaid amount"), invoice.currency)
    if prepaid.amount != prepaid.quantize().amount:
        raise Invalid(f"the prepaid amount has more decimals than {invoice.currency} allows", code="invalid_prepaid_amount")
    if prepaid.amount < 0 or (prepaid.amount > 0 and prepaid.amount > invoice.total_gross):
        raise Invalid("the deposits already paid must be between 0 and the invoice's total incl. VAT",
                      code="invalid_prepaid_amount")
    return prepaid.amount


def replace_lines(session: Session, invoice: Invoice, lines: Sequence[LineSpec], *, actor: str) -> Invoice:
    """Edit a draft's lines (an issued invoice is refused by the guard, and here first)."""
    if not invoice.is_draft:
        raise Conflict(f"invoice {invoice.number} is {invoice.status}: only a draft can be edited", code="invoice_not_draft")
    if not lines:
        raise Invalid("an invoice needs at least one line", code="invoice_empty")
    _set_lines(invoice, lines)
    audit.record(session, actor=actor, action="invoice.lines_replaced", subject=invoice,
                 details={"total_gross": invoice.money(invoice.total_gross)})
    return invoice


def cancel_draft(session: Session, invoice: Invoice, *, actor: str, reason: str) -> Invoice:
    if invoice.status == "cancelled":
        return invoice
    if not invoice.is_draft:
        raise Conflict(
            f"invoice {invoice.number} is {invoice.status}: an issued invoice is corrected by a credit note",
            code="invoice_not_draft",
        )
    invoice.status = "cancelled"
    invoice.deposits = []  # the deposits it deducted can be deducted by another invoice
    audit.record(session, actor=actor, action="invoice.cancelled", subject=invoice, reason=reason)
    return invoice


def _sequence_for_update(session: Session, entity_id: int, year: int) -> InvoiceSequence:
    """Lock (creating it if needed) the entity's sequence row for ``year``.

    The row lock is what serialises concurrent issuers on PostgreSQL; on SQLite
    every transaction already holds the write lock (BEGIN IMMEDIATE).
    """
    session.execute(
        insert_ignoring_conflicts(session.get_bind().dialect.name, InvoiceSequence,
                                  index_elements=["entity_id", "year"])
        .values(entity_id=entity_id, year=year, last_no=0)
    )
    return session.execute(
        select(InvoiceSequence)
        .where(InvoiceSequence.entity_id == entity_id, InvoiceSequence.year == year)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def format_number(prefix: str, year: int, number: int) -> str:
    return f"{prefix}{year}-{number:05d}"


def party_snapshot(party: Entity | Client) -> dict[str, Any]:
    """The seller or buyer as they are on the issue date; later edits of the
    entity or client never change an issued invoice."""
    snapshot: dict[str, Any] = {
        "name": party.name,
        "address_line1": party.address_line1,
        "address_line2": party.address_line2,
        "postcode": party.postcode,
        "city": party.city,
        "country_code": party.country_code,
        "siren": party.siren,
        "siret": party.siret,
        "vat_number": party.vat_number,
    }
    snapshot["electronic_address_scheme"], snapshot["electronic_address"] = electronic_address_of(party)
    if isinstance(party, Entity):
        snapshot.update(
            legal_form=party.legal_form,
            share_capital=None if party.share_capital is None else str(party.share_capital),
            rcs=party.rcs,
            iban=party.iban,
            bic=party.bic,
            vat_on_debits=party.vat_on_debits,
            operation_nature=party.operation_nature,
            late_penalty_rate=None if party.late_penalty_rate is None else str(party.late_penalty_rate),
            early_payment_discount=party.early_payment_discount,
            email=party.email,
            vat_franchise=party.vat_franchise,
        )
    else:
        snapshot.update(language=party.language, delivery_address=party.delivery_address())
    return snapshot


def issue(
    session: Session,
    invoice_id: int,
    *,
    actor: str,
    issue_date: date | None = None,
    reason: str | None = None,
) -> Invoice:
    """Give the draft its number and freeze it.

    The number comes from the entity's sequence for the issue year, in the
    same transaction: if anything fails, the number is not used, so there is
    never a gap; the sequence row lock means never a duplicate.
    """
    invoice = get_invoice(session, invoice_id, lock=True)
    if not invoice.is_draft:
        raise Conflict(
            f"invoice {invoice.number or invoice.id} is {invoice.status}, not a draft: it cannot be issued",
            code="invoice_not_draft",
        )
    if not invoice.lines:
        raise Invalid("an invoice needs at least one line", code="invoice_empty")
    totals = _refresh_totals(invoice)
    if invoice.kind == "invoice" and totals.gross.amount < 0:
        raise Invalid("an invoice's total cannot be negative: issue a credit note instead", code="invoice_negative")
    if invoice.prepaid_amount > totals.gross.amount:
        raise Invalid("the deposits already paid exceed the invoice's total incl. VAT", code="invalid_prepaid_amount")
    issue_date = issue_date or business_today()
    sequence = _sequence_for_update(session, invoice.entity_id, issue_date.year)
    # chronology holds across the entity's yearly series too: no invoice dated
    # 30 December once January's have been issued
    latest = session.scalar(
        select(func.max(InvoiceSequence.last_issue_date)).where(InvoiceSequence.entity_id == invoice.entity_id)
    )
    if latest is not None and issue_date < latest:
        raise Conflict(
            f"issue date {issue_date} is before the last issued invoice's ({latest}): "
            "numbers must follow the chronology",
            code="issue_date_out_of_order",
        )
    sequence.last_no += 1
    sequence.last_issue_date = issue_date
    terms = invoice.client.payment_terms
    invoice.sequence_year = issue_date.year
    invoice.sequence_no = sequence.last_no
    invoice.number = format_number(invoice.entity.invoice_prefix, issue_date.year, sequence.last_no)
    invoice.issue_date = issue_date
    invoice.service_date = invoice.service_date or issue_date
    invoice.due_date = issue_date if invoice.kind == "credit_note" else terms.due_date(issue_date)
    invoice.payment_terms = {"kind": terms.kind, "days": terms.days}
    invoice.seller = party_snapshot(invoice.entity)
    invoice.buyer = party_snapshot(invoice.client)
    fx.freeze(session, invoice)
    invoice.status = "issued"
    invoice.issued_at = utcnow()
    invoice.issued_by = actor
    if invoice.milestone is not None and invoice.kind == "invoice":
        invoice.milestone.status = "invoiced"
    audit.record(
        session,
        actor=actor,
        action=f"{invoice.kind}.issued",
        subject=invoice,
        reason=reason,
        details={"number": invoice.number, "total_gross": totals.gross, "due_date": invoice.due_date},
    )
    return invoice


def credit(
    session: Session,
    invoice_id: int,
    *,
    actor: str,
    reason: str,
    lines: Sequence[LineSpec] | None = None,
    issue_date: date | None = None,
) -> Invoice:
    """Correct an issued invoice with a credit note, issued at once.

    Without ``lines`` the whole invoice is credited (its lines copied). The
    credit notes of one invoice never add up to more than the invoice.
    """
    if not (reason or "").strip():
        raise Invalid("a credit note needs a reason", code="reason_required")
    invoice = get_invoice(session, invoice_id, lock=True)
    if invoice.kind != "invoice" or invoice.status in ("draft", "cancelled", "credited"):
        raise Conflict(
            f"invoice {invoice.number or invoice.id} is a {invoice.kind} in state {invoice.status}: "
            "only an issued invoice can be credited",
            code="invoice_not_creditable",
        )
    if invoice.deposit:
        final = session.execute(
            select(Invoice.number, Invoice.id).join(InvoiceDeposit, InvoiceDeposit.invoice_id == Invoice.id)
            .where(InvoiceDeposit.deposit_id == invoice.id, Invoice.status != "cancelled")
        ).first()
        if final is not None:
            raise Conflict(
                f"deposit invoice {invoice.number} is deducted by invoice {final.number or final.id}: "
                "correct the final invoice first (a credit note of it, or cancel its draft)",
                code="deposit_deducted",
            )
    if lines is None:
        lines = [
            LineSpec(line.description, line.quantity, line.unit_price, line.unit, line.vat) for line in invoice.lines
        ]
    note = Invoice(
        kind="credit_note",
        status="draft",
        entity=invoice.entity,
        client=invoice.client,
        contract=invoice.contract,
        corrects=invoice,
        currency=invoice.currency,
        service_date=invoice.service_date,
        purchase_order_ref=invoice.purchase_order_ref,
        note=reason,
        created_by=actor,
        created_at=utcnow(),
    )
    if not lines:
        raise Invalid("a credit note needs at least one line", code="invoice_empty")
    _set_lines(note, lines)
    already = credited_total(session, invoice)
    if already + note.money(note.total_gross) > invoice.money(invoice.total_gross):
        raise Conflict(
            f"credit notes would exceed invoice {invoice.number}'s total "
            f"({invoice.money(invoice.total_gross)}; already credited {already})",
            code="credit_exceeds_invoice",
        )
    if note.total_gross <= 0:
        raise Invalid("a credit note's total must be positive", code="invalid_credit_amount")
    session.add(note)
    session.flush()
    audit.record(session, actor=actor, action="credit_note.drafted", subject=note, reason=reason,
                 details={"corrects": invoice.number})
    issue(session, note.id, actor=actor, issue_date=issue_date, reason=reason)
    refresh_status(session, invoice, actor=actor, reason=reason)
    return note
