"""The tour's invoices that the French rules treat differently, issued the way
finance would: a deposit and the final invoice that deducts it, an invoice in
pounds (its VAT total also in euros, at the ECB rate), an exempt training, a
sole trader under the franchise, and disbursements beside taxable work. With
``--out`` each is written beside the others, for a plateforme agréée's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from jalon.core import catalog, fx, invoicing
from jalon.core.db import unit_of_work
from jalon.core.errors import Invalid
from jalon.core.invoicing import LineSpec, business_today
from jalon.core.models import Invoice
from jalon.core.vat import Vat

ECB_SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ecb-rates-sample.csv"
FINANCE = "finance@atelier.example"
Step = Callable[[str, str], None]


def issue_kinds(Session, step: Step) -> list[int]:  # type: ignore[no-untyped-def]  # noqa: N803
    ids = [*_deposit_and_final(Session, step), _in_pounds(Session, step), _exempt(Session, step),
           _franchise(Session, step), _disbursements(Session, step)]
    return ids


def _issue(Session, entity: str, client: str, lines: list[LineSpec], **draft) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]  # noqa: N803
    with unit_of_work(Session) as session:
        deposits = [session.get(Invoice, deposit_id) for deposit_id in draft.pop("deposits", [])]
        invoice = invoicing.create_draft(session, entity=catalog.get_entity(session, entity),
                                         client=catalog.get_client(session, client), lines=lines, actor=FINANCE,
                                         deposits=deposits, **draft)
        invoice = invoicing.issue(session, invoice.id, actor=FINANCE)
        language = invoice.client.language
        return invoice.id, invoice.number, invoice.money(invoice.total_gross).format(catalog.LOCALES[language])


def _deposit_and_final(Session, step: Step) -> list[int]:  # type: ignore[no-untyped-def]  # noqa: N803
    deposit_id, deposit, amount = _issue(
        Session, "atelier", "lumiere", [LineSpec("Acompte de 30 % à la commande — Audit d'accessibilité RGAA",
                                                 Decimal(1), Decimal("1800.00"))], deposit=True)
    step("A deposit invoice (acompte, type 386)", f"{deposit}, {amount}")
    final_id, final, amount = _issue(
        Session, "atelier", "lumiere",
        [LineSpec("Audit d'accessibilité RGAA — rapport et plan d'action", Decimal(1), Decimal("6000.00"))],
        deposits=[deposit_id])
    step("The final invoice deducts it (cadre S4)", f"{final}, {amount} less the deposit {deposit}")
    return [deposit_id, final_id]


def _in_pounds(Session, step: Step) -> int:  # type: ignore[no-untyped-def]  # noqa: N803
    """The ECB's rates are a file finance loads (never fetched by jalon): the sample's, and,
    when today is past its last day, today's rate as finance would type it."""
    today = business_today()
    with unit_of_work(Session) as session:
        rows = fx.parse_ecb_csv(ECB_SAMPLE.read_text(encoding="utf-8"))
        fx.load(session, rows, actor=FINANCE)
        try:
            fx.rate_for(session, "GBP", today)
        except Invalid:
            latest = max((row for row in rows if row[0] == "GBP"), key=lambda row: row[1])
            fx.set_rate(session, "GBP", today, latest[2], actor=FINANCE)
    invoice_id, number, amount = _issue(
        Session, "atelier", "thames",
        [LineSpec("Data quality review — senior consultant", Decimal(3), Decimal("950.00"), "DAY",
                  Vat("AE", Decimal(0), "Autoliquidation — TVA due par le preneur (art. 259-1 et 283-2 du CGI)"))])
    with unit_of_work(Session) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice is not None
        rate = f"1 EUR = {invoice.exchange_rate} GBP ({invoice.exchange_rate_date})"
    step("An invoice in pounds sterling", f"{number}, {amount}; VAT total also stated in euros at the ECB rate {rate}")
    return invoice_id


def _exempt(Session, step: Step) -> int:  # type: ignore[no-untyped-def]  # noqa: N803
    invoice_id, number, amount = _issue(
        Session, "atelier", "lumiere",
        [LineSpec("Formation professionnelle continue — accessibilité numérique (2 jours)", Decimal(2),
                  Decimal("1400.00"), "DAY",
                  Vat("E", Decimal(0), "Exonération de TVA, art. 261-4-4° a du CGI (formation professionnelle "
                                       "continue)", "VATEX-FR-CGI261-4"))])
    step("An exempt invoice (training, art. 261-4-4° a du CGI)", f"{number}, {amount}")
    return invoice_id


def _franchise(Session, step: Step) -> int:  # type: ignore[no-untyped-def]  # noqa: N803
    invoice_id, number, amount = _issue(
        Session, "studio", "lumiere", [LineSpec("Illustrations de la page d'accueil", Decimal(1), Decimal("900.00"))])
    step("A sole trader under the franchise (art. 293 B du CGI)", f"{number}, {amount}, no VAT charged")
    return invoice_id


def _disbursements(Session, step: Step) -> int:  # type: ignore[no-untyped-def]  # noqa: N803
    invoice_id, number, amount = _issue(
        Session, "atelier", "lumiere",
        [LineSpec("Atelier de co-conception sur site (1 jour)", Decimal(1), Decimal("1200.00"), "DAY"),
         LineSpec("Débours — billets de train Paris-Lyon payés pour le compte du client", Decimal(1),
                  Decimal("214.60"), vat=Vat.disbursement())])
    step("Disbursements (débours) beside taxable work", f"{number}, {amount}; the train tickets outside the VAT base")
    return invoice_id
