"""``jalon demo``: the one-command tour of the product, on a fresh SQLite file.

It applies the example configuration, completes a milestone in "Jira" through
the core's event path (twice, to show that a replay changes nothing), issues
the draft invoice, records a partial payment, and prints the result.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from jalon.connector.configfile import load
from jalon.core import invoicing, payments
from jalon.core.catalog import apply_config
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.errors import Conflict, Invalid
from jalon.core.events import TaskCompleted
from jalon.core.invoicing import business_today
from jalon.core.migrate import upgrade
from jalon.core.models import Invoice
from jalon.core.money import Money
from jalon.core.rules import apply_event
from jalon.core.terms import PaymentTerms

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "jalon.yaml"
Echo = Callable[[str], None]


def run_demo(*, database_path: Path | None, config_path: Path | None, echo: Echo) -> str:
    """Run the tour; returns the issued invoice's number."""
    config_path = config_path or EXAMPLE
    if not config_path.exists():
        raise Invalid(f"example configuration not found at {config_path}: pass --config", code="config_unreadable")
    if database_path is not None:
        if database_path.exists():
            raise Conflict(f"{database_path} exists: the demo runs on a fresh file", code="demo_database_exists")
        return _tour(database_path, config_path, echo)
    with tempfile.TemporaryDirectory(prefix="jalon-demo-") as folder:
        return _tour(Path(folder) / "demo.db", config_path, echo)


def _tour(database_path: Path, config_path: Path, echo: Echo) -> str:
    engine = make_engine(f"sqlite:///{database_path}")
    try:
        return _steps(engine, config_path, echo)
    finally:
        engine.dispose()


def _steps(engine, config_path: Path, echo: Echo) -> str:  # type: ignore[no-untyped-def]
    Session = make_sessionmaker(engine)  # noqa: N806
    step = _Steps(echo)

    step("Fresh database", f"{engine.url.database}")
    upgrade(engine)

    with unit_of_work(Session) as session:
        summary = apply_config(session, load(config_path), actor="demo")
    step("Configuration applied", config_path.name)
    for section, counts in summary.items():
        echo(f"    {section:<13} {counts['created']} created")

    event = TaskCompleted(
        integration="jira-atelier",
        project_ref="WEB",
        task_ref="WEB-1",
        task_title="Maquettes validées par le client",
        task_url="https://atelier.atlassian.net/browse/WEB-1",
        status="Done",
        actor="alice@atelier.example",
        occurred_at=datetime.now(timezone.utc) - timedelta(minutes=5),
        event_id="demo-webhook-1",
    )
    with unit_of_work(Session) as session:
        outcome = apply_event(session, event)
    step("Jira: WEB-1 moved to Done", outcome.detail)
    with unit_of_work(Session) as session:
        replay = apply_event(session, event)
    step("Jira: the same delivery again", f"{replay.effect}: {replay.detail}")
    if outcome.invoice_id is None:
        raise Invalid(f"the demo milestone was not drafted: {outcome.detail}", code="demo_failed")

    with unit_of_work(Session) as session:
        invoice = invoicing.issue(session, outcome.invoice_id, actor="finance@atelier.example")
        number, gross = invoice.number, invoice.money(invoice.total_gross)
    step("Finance issued the draft", f"invoice {number}")

    partial = Money.of("3000.00", gross.currency)
    with unit_of_work(Session) as session:
        payments.record_payment(
            session,
            amount=partial,
            received_on=business_today(),
            allocations=[payments.Allocation(number)],
            actor="finance@atelier.example",
            reference="VIR LUMIERE INDUSTRIES " + number,
        )
    step("Bank transfer received", f"{partial.format('fr_FR')} on {number}")

    with unit_of_work(Session) as session:
        invoice = session.get(Invoice, outcome.invoice_id)
        assert invoice is not None
        _print_invoice(session, invoice, echo)
    return number


def plain(value: Decimal) -> str:
    """A decimal as people write it: 20, 5.5, 1 (never 2E+1)."""
    text = format(value.normalize(), "f")
    return text


class _Steps:
    def __init__(self, echo: Echo):
        self.echo = echo
        self.count = 0

    def __call__(self, title: str, detail: str) -> None:
        self.count += 1
        self.echo(f"[{self.count}] {title}: {detail}")


def _print_invoice(session, invoice: Invoice, echo: Echo) -> None:  # type: ignore[no-untyped-def]
    locale = "fr_FR" if (invoice.buyer or {}).get("language", "fr") == "fr" else "en_GB"

    def fmt(amount) -> str:  # type: ignore[no-untyped-def]
        return invoice.money(amount).quantize().format(locale)

    totals = invoicing.invoice_totals(invoice)
    seller, buyer = invoice.seller or {}, invoice.buyer or {}
    rule = "-" * 72
    echo("")
    echo(rule)
    echo(f"FACTURE {invoice.number}".ljust(44) + f"issued {invoice.issue_date}   due {invoice.due_date}")
    echo(rule)
    echo(f"From  {seller.get('name')} ({seller.get('legal_form')}), SIREN {seller.get('siren')}, "
         f"TVA {seller.get('vat_number')}")
    echo(f"To    {buyer.get('name')}, SIREN {buyer.get('siren')}, TVA {buyer.get('vat_number')}")
    echo(f"      {buyer.get('address_line1')}, {buyer.get('postcode')} {buyer.get('city')}")
    if invoice.purchase_order_ref:
        echo(f"PO    {invoice.purchase_order_ref}")
    echo("")
    for line in invoice.lines:
        echo(f"  {line.description}")
        echo(f"  {'':<20} {plain(line.quantity):>6} x {fmt(line.unit_price):>14}"
             f"   VAT {plain(line.vat_rate):>4} %   {fmt(line.net_amount):>14}")
    echo("")
    for group in totals.groups:
        label = f"VAT {group.vat.category} {plain(group.vat.rate)} %"
        echo(f"  {label:<24} base {group.base.format(locale):>14}   VAT {group.tax.format(locale):>12}")
    echo(f"  {'Total excl. VAT':<50} {totals.net.format(locale):>18}")
    echo(f"  {'Total VAT':<50} {totals.vat.format(locale):>18}")
    echo(f"  {'Total incl. VAT':<50} {totals.gross.format(locale):>18}")
    paid = payments.paid_total(invoice)
    echo(f"  {'Paid':<50} {paid.format(locale):>18}")
    echo(f"  {'Open balance':<50} {payments.open_balance(session, invoice).format(locale):>18}")
    echo(rule)
    terms = PaymentTerms(**invoice.payment_terms) if invoice.payment_terms else invoice.client.payment_terms
    echo(f"terms: {terms.describe('en')}")
    echo(f"status: {invoice.status}")
    for balance in payments.client_balances(session, invoice.client):
        echo(f"client {invoice.client.name} owes {balance.balance.format(locale)} in all ({balance.currency})")
