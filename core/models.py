"""Persistent records of the billing core (SQLAlchemy 2.0 typed models).

Models hold data and small derived values; they never commit and know nothing
of HTTP or serialisation. Alembic (``jalon.core.migrations``) owns the schema.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    and_,
    false,
    or_,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .money import Money
from .terms import PaymentTerms
from .secrets import Sealed, SealedJSON
from .types import BigId, ExactDecimal, UTCDateTime, utcnow
from .vat import Vat

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        Decimal: ExactDecimal(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[Any]: JSON,
    }


class AddressMixin:
    address_line1: Mapped[str] = mapped_column(String(200), default="")
    address_line2: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str] = mapped_column(String(20), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    country_code: Mapped[str] = mapped_column(String(2), default="FR")


class Entity(AddressMixin, Base):
    """A legal entity that issues invoices, with its own numbering sequence."""

    __tablename__ = "entities"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    legal_form: Mapped[str | None] = mapped_column(String(50))
    share_capital: Mapped[Decimal | None]
    siren: Mapped[str | None] = mapped_column(String(9))
    siret: Mapped[str | None] = mapped_column(String(14))
    rcs: Mapped[str | None] = mapped_column(String(100))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    email: Mapped[str | None] = mapped_column(String(200))
    # the electronic invoicing address (BT-34) and its scheme (EAS code; 0225 the French directory)
    electronic_address: Mapped[str | None] = mapped_column(String(125))
    electronic_address_scheme: Mapped[str | None] = mapped_column(String(4))
    # under the small-business franchise (art. 293 B du CGI): no VAT charged, every line exempt
    vat_franchise: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    invoice_prefix: Mapped[str] = mapped_column(String(20), default="F")
    vat_on_debits: Mapped[bool] = mapped_column(Boolean, default=False)
    # what the entity sells, printed and carried in Factur-X: services, goods or mixed
    operation_nature: Mapped[str] = mapped_column(String(10), default="services", server_default="services")
    # contractual late-payment penalty rate, % a year; none: the legal rate
    # (the ECB's refinancing rate + 10 points, L441-10 of the Code de commerce)
    late_penalty_rate: Mapped[Decimal | None]
    # early-payment discount terms as printed; none: "no discount for early payment"
    early_payment_discount: Mapped[str | None] = mapped_column(String(300))
    # milestone drafts whose total incl. VAT is below this are issued at once, without approval
    auto_issue_below: Mapped[Decimal | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Client(AddressMixin, Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    siren: Mapped[str | None] = mapped_column(String(9))
    siret: Mapped[str | None] = mapped_column(String(14))
    vat_number: Mapped[str | None] = mapped_column(String(20))
    # the electronic invoicing address (BT-49) and its scheme (EAS code; 0225 the French directory)
    electronic_address: Mapped[str | None] = mapped_column(String(125))
    electronic_address_scheme: Mapped[str | None] = mapped_column(String(4))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    language: Mapped[str] = mapped_column(String(5), default="fr")
    terms_kind: Mapped[str] = mapped_column(String(30), default="net")
    terms_days: Mapped[int] = mapped_column(Integer, default=30)
    billing_emails: Mapped[list[str]] = mapped_column(default=list)
    # where the service is delivered, when it is not the billing address
    delivery_address_line1: Mapped[str | None] = mapped_column(String(200))
    delivery_address_line2: Mapped[str | None] = mapped_column(String(200))
    delivery_postcode: Mapped[str | None] = mapped_column(String(20))
    delivery_city: Mapped[str | None] = mapped_column(String(100))
    delivery_country_code: Mapped[str | None] = mapped_column(String(2))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def delivery_address(self) -> dict[str, str | None] | None:
        """The delivery address when one is set and differs from the billing address."""
        if not self.delivery_address_line1:
            return None
        delivery = {
            "address_line1": self.delivery_address_line1,
            "address_line2": self.delivery_address_line2,
            "postcode": self.delivery_postcode or "",
            "city": self.delivery_city or "",
            "country_code": self.delivery_country_code or self.country_code,
        }
        billing = {key: getattr(self, key) for key in delivery}
        return None if delivery == billing else delivery

    @property
    def payment_terms(self) -> PaymentTerms:
        return PaymentTerms(self.terms_kind, self.terms_days)


CONTRACT_KINDS = ("fixed_price", "time_and_materials", "retainer")
RETAINER_PERIODS = ("month", "quarter", "year")


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint(f"kind IN {CONTRACT_KINDS!r}", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30))
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    # fixed price: the contract's total, of which milestones are amounts or percentages
    total_amount: Mapped[Decimal | None]
    # retainer: a fixed amount per period
    retainer_amount: Mapped[Decimal | None]
    retainer_period: Mapped[str | None] = mapped_column(String(10))
    # time and materials: how many hours make a billed day
    hours_per_day: Mapped[Decimal] = mapped_column(default=Decimal("8"))
    vat_category: Mapped[str] = mapped_column(String(3), default="S")
    vat_rate: Mapped[Decimal] = mapped_column(default=Decimal("20"))
    vat_exemption_reason: Mapped[str | None] = mapped_column(String(300))
    purchase_order_ref: Mapped[str | None] = mapped_column(String(100))
    starts_on: Mapped[date | None] = mapped_column(Date)
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    entity: Mapped[Entity] = relationship()
    client: Mapped[Client] = relationship()
    milestones: Mapped[list[Milestone]] = relationship(
        back_populates="contract", order_by="Milestone.position", cascade="all, delete-orphan"
    )
    rates: Mapped[list[Rate]] = relationship(
        back_populates="contract", order_by="Rate.effective_from", cascade="all, delete-orphan"
    )

    @property
    def vat(self) -> Vat:
        return Vat(self.vat_category, self.vat_rate, self.vat_exemption_reason)


MILESTONE_STATUSES = ("pending", "done", "invoiced")


class Milestone(Base):
    """A billable step of a fixed-price contract.

    Which PM task completes it is said by its selectors: an exact task id, a
    label (tag), or a task type. A label or type may select several tasks: the
    first one completed takes the next pending milestone, and is recorded in
    ``task_ref`` so that a replay or a reopen finds the same milestone.
    """

    __tablename__ = "milestones"
    __table_args__ = (
        UniqueConstraint("contract_id", "reference"),
        CheckConstraint(f"status IN {MILESTONE_STATUSES!r}", name="status"),
        CheckConstraint("(amount IS NULL) <> (percentage IS NULL)", name="amount_or_percentage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    reference: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    amount: Mapped[Decimal | None]
    percentage: Mapped[Decimal | None]
    match_task_id: Mapped[str | None] = mapped_column(String(100))
    match_label: Mapped[str | None] = mapped_column(String(100))
    match_task_type: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    task_ref: Mapped[str | None] = mapped_column(String(100))
    task_url: Mapped[str | None] = mapped_column(String(500))
    done_at: Mapped[datetime | None]
    # when the last task event applied to this milestone happened, at the source:
    # an older event arriving late changes nothing
    last_event_at: Mapped[datetime | None]

    contract: Mapped[Contract] = relationship(back_populates="milestones")

    def price(self) -> Money:
        contract = self.contract
        if self.amount is not None:
            return Money(self.amount, contract.currency).quantize()
        assert self.percentage is not None
        if contract.total_amount is None:
            from .errors import Invalid

            raise Invalid(
                f"milestone {self.reference} is a percentage but contract {contract.reference} has no total",
                code="contract_total_missing",
            )
        return (Money(contract.total_amount, contract.currency) * self.percentage * Decimal("0.01")).quantize()


class Rate(Base):
    """A time-and-materials rate for a person or a role, effective from a date."""

    __tablename__ = "rates"
    __table_args__ = (
        CheckConstraint("(person_ref IS NULL) <> (role IS NULL)", name="person_or_role"),
        CheckConstraint("unit IN ('hour', 'day')", name="unit"),
        UniqueConstraint("contract_id", "person_ref", "role", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    person_ref: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal]
    unit: Mapped[str] = mapped_column(String(10), default="day")
    effective_from: Mapped[date] = mapped_column(Date)

    contract: Mapped[Contract] = relationship(back_populates="rates")


class ContractMember(Base):
    """Which role a person plays on a time-and-materials contract."""

    __tablename__ = "contract_members"
    __table_args__ = (UniqueConstraint("contract_id", "person_ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    person_ref: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(100))


class Integration(Base):
    """A connected PM tool. Its secrets are write-only: never returned, never logged."""

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    source: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str | None] = mapped_column(String(500))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # sealed at rest (jalon.core.secrets): the webhook secrets and the tool's credentials
    secret: Mapped[str | None] = mapped_column(Sealed())
    previous_secret: Mapped[str | None] = mapped_column(Sealed())
    secret_rotated_at: Mapped[datetime | None]
    credentials: Mapped[dict[str, Any]] = mapped_column(SealedJSON(), default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:  # never shows the secrets
        return f"<Integration {self.key} source={self.source}>"


class Mapping(Base):
    """Integration + PM project -> contract, and which statuses mean done."""

    __tablename__ = "mappings"
    __table_args__ = (UniqueConstraint("integration_id", "pm_project"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    pm_project: Mapped[str] = mapped_column(String(200))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    # empty: the tool's own "done" category decides; otherwise only these statuses do
    done_statuses: Mapped[list[str]] = mapped_column(default=list)

    integration: Mapped[Integration] = relationship()
    contract: Mapped[Contract] = relationship()


INVOICE_KINDS = ("invoice", "credit_note")
INVOICE_STATUSES = ("draft", "issued", "partially_paid", "paid", "credited", "cancelled")
# once issued, only these columns may still change (state derived from payments and credits)
MUTABLE_AFTER_ISSUE = frozenset({"status"})


class Invoice(Base):
    """An invoice or a credit note.

    Numbered when issued, never when drafted. Once issued, it is frozen: the
    seller and buyer are kept as they were on the issue date, and a guard
    refuses any change but its payment status (see :mod:`jalon.core.guards`).
    """

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("entity_id", "number"),
        CheckConstraint(f"kind IN {INVOICE_KINDS!r}", name="kind"),
        CheckConstraint(f"status IN {INVOICE_STATUSES!r}", name="status"),
        # a milestone is invoiced at most once (a cancelled draft or a credited
        # invoice frees it)
        Index(
            "uq_invoices_live_milestone",
            "milestone_id",
            unique=True,
            sqlite_where=text("milestone_id IS NOT NULL AND status NOT IN ('cancelled', 'credited')"),
            postgresql_where=text("milestone_id IS NOT NULL AND status NOT IN ('cancelled', 'credited')"),
        ),
        Index("ix_invoices_client_status", "client_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="invoice")
    # active history: the guard must see the stored status even when it was not loaded
    status: Mapped[str] = mapped_column(String(20), default="draft", active_history=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    contract_id: Mapped[int | None] = mapped_column(ForeignKey("contracts.id"))
    milestone_id: Mapped[int | None] = mapped_column(ForeignKey("milestones.id"))
    corrects_invoice_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("invoices.id"))
    currency: Mapped[str] = mapped_column(String(3))
    number: Mapped[str | None] = mapped_column(String(50))
    sequence_year: Mapped[int | None] = mapped_column(Integer)
    sequence_no: Mapped[int | None] = mapped_column(Integer)
    issue_date: Mapped[date | None] = mapped_column(Date)
    service_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)
    purchase_order_ref: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    total_net: Mapped[Decimal] = mapped_column(default=Decimal(0))
    total_vat: Mapped[Decimal] = mapped_column(default=Decimal(0))
    total_gross: Mapped[Decimal] = mapped_column(default=Decimal(0))
    # deposits already paid (BT-113): the amount due is total_gross - prepaid_amount
    prepaid_amount: Mapped[Decimal] = mapped_column(default=Decimal(0), server_default="0")
    # a deposit invoice (acompte, UNTDID 1001 type 386)
    deposit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # an invoice in another currency: the ECB rate (currency units for 1 EUR) of the
    # day the VAT became chargeable, and the VAT total in euros (BT-111), frozen when issued
    exchange_rate: Mapped[Decimal | None]
    exchange_rate_date: Mapped[date | None] = mapped_column(Date)
    vat_total_eur: Mapped[Decimal | None]
    seller: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    buyer: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    payment_terms: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="system")
    issued_at: Mapped[datetime | None]
    issued_by: Mapped[str | None] = mapped_column(String(200))

    entity: Mapped[Entity] = relationship()
    client: Mapped[Client] = relationship()
    contract: Mapped[Contract | None] = relationship()
    milestone: Mapped[Milestone | None] = relationship()
    corrects: Mapped[Invoice | None] = relationship(remote_side=[id])
    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position", cascade="all, delete-orphan"
    )
    allocations: Mapped[list[PaymentAllocation]] = relationship(back_populates="invoice")
    # the deposit invoices a final invoice deducts (BT-23 S4)
    deposits: Mapped[list[InvoiceDeposit]] = relationship(
        foreign_keys="InvoiceDeposit.invoice_id", back_populates="invoice", cascade="all, delete-orphan",
        lazy="selectin",  # few, and read with the invoice: the documents are drawn outside a session
    )

    @property
    def is_draft(self) -> bool:
        return self.status == "draft"

    @property
    def sign(self) -> int:
        """A credit note's amounts count against the client: -1."""
        return -1 if self.kind == "credit_note" else 1

    def money(self, amount: Decimal) -> Money:
        return Money(amount, self.currency)

    @property
    def amount_due(self) -> Money:
        """Total incl. VAT less the deposits already paid (BT-115)."""
        return self.money(self.total_gross - self.prepaid_amount)


class InvoiceLine(Base):
    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(BigId, ForeignKey("invoices.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    description: Mapped[str] = mapped_column(Text)
    quantity: Mapped[Decimal]
    # UN/ECE recommendation 20 codes, as Factur-X wants them: C62 unit, HUR hour, DAY day
    unit: Mapped[str] = mapped_column(String(10), default="C62")
    unit_price: Mapped[Decimal]
    vat_category: Mapped[str] = mapped_column(String(3), default="S")
    vat_rate: Mapped[Decimal] = mapped_column(default=Decimal("20"))
    vat_exemption_reason: Mapped[str | None] = mapped_column(String(300))
    # the VATEX code of the exemption (BT-121), when it has one
    vat_exemption_code: Mapped[str | None] = mapped_column(String(30))
    net_amount: Mapped[Decimal]

    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    @property
    def vat(self) -> Vat:
        return Vat(self.vat_category, self.vat_rate, self.vat_exemption_reason, self.vat_exemption_code)


class InvoiceDeposit(Base):
    """A deposit invoice (acompte) deducted by a final invoice: each deposit once."""

    __tablename__ = "invoice_deposits"
    __table_args__ = (UniqueConstraint("deposit_id"),)

    invoice_id: Mapped[int] = mapped_column(BigId, ForeignKey("invoices.id"), primary_key=True)
    deposit_id: Mapped[int] = mapped_column(BigId, ForeignKey("invoices.id"), primary_key=True)

    invoice: Mapped[Invoice] = relationship(foreign_keys=[invoice_id], back_populates="deposits")
    deposit: Mapped[Invoice] = relationship(foreign_keys=[deposit_id], lazy="joined")


class ExchangeRate(Base):
    """A reference rate of the ECB: how many units of ``currency`` one euro buys on ``day``.
    Loaded from the ECB's published CSV or typed by an admin; never fetched at render time."""

    __tablename__ = "exchange_rates"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    rate: Mapped[Decimal]
    source: Mapped[str] = mapped_column(String(20), default="manual", server_default="manual")
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class InvoiceSequence(Base):
    """The last number given per entity and year: the lock that keeps numbers
    continuous across concurrent issuers."""

    __tablename__ = "invoice_sequences"
    __table_args__ = (UniqueConstraint("entity_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("entities.id"))
    year: Mapped[int] = mapped_column(Integer)
    last_no: Mapped[int] = mapped_column(Integer, default=0)
    last_issue_date: Mapped[date | None] = mapped_column(Date)


class Payment(Base):
    """Money received from a client. Append-only: a mistake is reversed, not edited."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id"))
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3))
    received_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(30), default="transfer")
    reference: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="system")

    client: Mapped[Client] = relationship()
    allocations: Mapped[list[PaymentAllocation]] = relationship(
        back_populates="payment", cascade="all"
    )

    @property
    def unallocated(self) -> Money:
        allocated = sum((Money(a.amount, self.currency) for a in self.allocations), Money.zero(self.currency))
        return Money(self.amount, self.currency) - allocated


class PaymentAllocation(Base):
    __tablename__ = "payment_allocations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    payment_id: Mapped[int] = mapped_column(BigId, ForeignKey("payments.id"))
    invoice_id: Mapped[int] = mapped_column(BigId, ForeignKey("invoices.id"))
    amount: Mapped[Decimal]

    payment: Mapped[Payment] = relationship(back_populates="allocations")
    invoice: Mapped[Invoice] = relationship(back_populates="allocations")


class TimeEntry(Base):
    """The time ledger: one row per worklog of a PM tool, kept up to date by
    TimeLogged / TimeLogChanged / TimeLogDeleted. Billing reads it later."""

    __tablename__ = "time_entries"
    __table_args__ = (UniqueConstraint("integration_id", "worklog_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    worklog_ref: Mapped[str] = mapped_column(String(100))
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    project_ref: Mapped[str] = mapped_column(String(200))
    task_ref: Mapped[str] = mapped_column(String(100))
    person_ref: Mapped[str | None] = mapped_column(String(200))
    seconds: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None]
    description: Mapped[str | None] = mapped_column(Text)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    last_event_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaskState(Base):
    """The last known state of a PM task, so that an event older than the last
    one applied (a late retry, an out-of-order delivery) changes nothing."""

    __tablename__ = "task_states"
    __table_args__ = (UniqueConstraint("integration_id", "task_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    task_ref: Mapped[str] = mapped_column(String(100))
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    last_event_at: Mapped[datetime]


class AuditRecord(Base):
    """Who did what, when, and why: one row per change of state. Append-only."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ApiToken(Base):
    """A bearer token for the admin API, stored as a SHA-256 digest only."""

    __tablename__ = "api_tokens"
    __table_args__ = (CheckConstraint("scope IN ('admin', 'finance')", name="scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(20))
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


# --- the relay: inbox, outbox, notification channels, scheduled job runs -------------


class LeasedWork:
    """Work that workers claim with a lease: the inbox's deliveries and the
    outbox's messages. A claim sets ``WORKING``, a lease owner, a random token
    and an expiry; the result is recorded only where the token still matches
    (a worker whose lease was taken over commits nothing); a lease that expires
    with its worker makes the work claimable again."""

    WORKING: ClassVar[str]

    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    @classmethod
    def due(cls, now: datetime) -> ColumnElement[bool]:
        """Claimable now: pending and due, or held by a lease that expired."""
        return or_(
            and_(cls.status == "pending", cls.next_attempt_at <= now),
            and_(cls.status == cls.WORKING, cls.lease_expires_at < now),
        )

DELIVERY_STATUSES = ("pending", "processing", "done", "ignored", "dead")


class Delivery(LeasedWork, Base):
    """A webhook delivery as received: the inbox.

    Stored (raw body and the headers that matter) before the sender gets its
    2xx; processed later by a worker that holds a lease on it. The
    idempotency key stays after the body is pruned, so a late redelivery is
    still recognised as a duplicate.
    """

    __tablename__ = "deliveries"
    WORKING = "processing"
    __table_args__ = (
        UniqueConstraint("integration_id", "idempotency_key"),
        CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="status"),
        Index("ix_deliveries_claim", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"))
    source: Mapped[str] = mapped_column(String(50))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    event_name: Mapped[str | None] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_sha256: Mapped[str] = mapped_column(String(64))
    body_pruned_at: Mapped[datetime | None]
    processed_at: Mapped[datetime | None]
    # what processing did: [{"effect": ..., "detail": ..., "invoice_id": ...}, ...]
    outcomes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # "webhook": sent by the tool; "reconcile": found by asking the tool, the
    # body holds the core events themselves (never set from a request)
    origin: Mapped[str] = mapped_column(String(20), default="webhook", server_default="webhook")

    integration: Mapped[Integration] = relationship()


class SourceCursor(Base):
    """How far an integration's reconciliation has looked: the start of its
    last successful run (the next one asks for what changed since, minus an
    overlap), and the last error, per integration, so one failing never holds
    back the others."""

    __tablename__ = "source_cursors"

    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id"), primary_key=True)
    last_success_at: Mapped[datetime | None]
    last_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


OUTBOX_STATUSES = ("pending", "sending", "sent", "failed")


class NotificationChannel(Base):
    """Where notifications go: an e-mail list, a chat incoming webhook, or a
    signed HTTP callback. ``events`` lists the notification kinds it wants
    (empty: all). The signing secret is write-only."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    # sealed at rest (jalon.core.secrets): a chat webhook's URL is a credential itself
    target: Mapped[dict[str, Any]] = mapped_column(SealedJSON(), default=dict)
    events: Mapped[list[str]] = mapped_column(default=list)
    secret: Mapped[str | None] = mapped_column(Sealed())
    allow_private_network: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:  # never shows the secret
        return f"<NotificationChannel {self.key} kind={self.kind}>"


class OutboxMessage(LeasedWork, Base):
    """A notification or a write-back to a PM tool, written in the same
    transaction as the billing change that causes it, sent later by the
    dispatcher. Never dropped: a message that keeps failing ends ``failed``."""

    __tablename__ = "outbox_messages"
    WORKING = "sending"
    __table_args__ = (
        CheckConstraint(f"status IN {OUTBOX_STATUSES!r}", name="status"),
        Index("ix_outbox_messages_claim", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    # the channel plugin that sends it: "email", "chat", "webhook", or a source ("jira") for write-backs
    channel: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(100))
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("notification_channels.id"))
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("integrations.id"))
    delivery_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("deliveries.id"))
    # the invoice the message is about, when it is about one (its sending to the client, a notification)
    invoice_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("invoices.id"), index=True)
    destination: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    external_id: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    notification_channel: Mapped[NotificationChannel | None] = relationship()
    integration: Mapped[Integration | None] = relationship()


class JobRun(Base):
    """One run of a scheduled job for one tick. The unique (job, tick) row is
    what lets only one process run a tick, whatever the number of schedulers."""

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job", "tick"),
        CheckConstraint("status IN ('running', 'ok', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job: Mapped[str] = mapped_column(String(100))
    tick: Mapped[datetime]
    owner: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="running")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- documents and approval ----------------------------------------------------------

DOCUMENT_KINDS = ("pdf", "xml")


class InvoiceDocument(Base):
    """A rendered document of an issued invoice, stored once: the PDF (Factur-X,
    PDF/A-3 with the XML embedded) and the CII XML alone. What is stored is what
    is sent and what is downloaded later. Append-only."""

    __tablename__ = "invoice_documents"
    __table_args__ = (
        UniqueConstraint("invoice_id", "kind"),
        CheckConstraint(f"kind IN {DOCUMENT_KINDS!r}", name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(BigId, ForeignKey("invoices.id"))
    kind: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    invoice: Mapped[Invoice] = relationship()


class ApprovalLink(Base):
    """A one-click link that lets finance approve (issue) a draft from a
    notification: valid until ``expires_at``, usable once. Only the digest of
    the link's secret part is stored."""

    __tablename__ = "approval_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(BigId, ForeignKey("invoices.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[str | None] = mapped_column(String(200))

    invoice: Mapped[Invoice] = relationship()
