"""Invoices: exact totals, gap-free chronological numbers, frozen parties, due dates."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from jalon.core import catalog
from jalon.core.db import unit_of_work
from jalon.core.errors import Conflict, ImmutableRecord, Invalid
from jalon.core.invoicing import cancel_draft, compute_totals, issue
from jalon.core.models import AuditRecord, Invoice
from jalon.core.money import Money
from jalon.core.vat import EXEMPT, REVERSE_CHARGE, STANDARD, Vat

from tests.factories import CLIENT, ENTITY, draft, issued, line

D = Decimal


def _mixed_rate_lines():
    return [
        line("85.00", "12.5", Vat(STANDARD, D("20")), "Développement", unit="HUR"),  # 1062.50
        line("33.333", "3", Vat(STANDARD, D("20")), "Hébergement"),  # 99.999 -> 100.00
        line("14.29", "7", Vat(STANDARD, D("10")), "Déplacements"),  # 100.03
        line("10.10", "1", Vat(STANDARD, D("5.5")), "Livre A"),
        line("10.10", "1", Vat(STANDARD, D("5.5")), "Livre B"),
        line("10.10", "1", Vat(STANDARD, D("5.5")), "Livre C"),  # 3 x 10.10 = 30.30
        line("45.45", "1", Vat(STANDARD, D("2.1")), "Publication"),
        line("250.00", "1", Vat(EXEMPT, D("0"), "Exonération de TVA, art. 261-4-4° du CGI"), "Formation"),
        line("500.00", "2", Vat(REVERSE_CHARGE, D("0")), "Sous-traitance BTP"),
    ]


def _groups(invoice_lines):
    totals = compute_totals("EUR", [(spec.vat, (Money.of(spec.unit_price, "EUR") * spec.quantity).quantize())
                                    for spec in invoice_lines])
    return totals, [(g.vat.category, g.vat.rate, g.base.amount, g.tax.amount) for g in totals.groups]


def test_mixed_vat_rates_give_one_group_per_category_and_rate_with_vat_on_the_group_base():
    totals, groups = _groups(_mixed_rate_lines())
    assert groups == [
        ("S", D("20"), D("1162.50"), D("232.50")),
        ("S", D("10"), D("100.03"), D("10.00")),
        ("S", D("5.5"), D("30.30"), D("1.67")),
        ("S", D("2.1"), D("45.45"), D("0.95")),
        ("AE", D("0"), D("1000.00"), D("0.00")),
        ("E", D("0"), D("250.00"), D("0.00")),
    ]
    assert totals.net == Money.of("2588.28", "EUR")
    assert totals.vat == Money.of("245.12", "EUR")
    assert totals.gross == Money.of("2833.40", "EUR")


def test_vat_is_rounded_once_per_group_not_once_per_line():
    # each line's VAT is 0.5555: rounded per line it would be 3 x 0.56 = 1.68
    specs = [line("10.10", vat=Vat(STANDARD, D("5.5"))) for _ in range(3)]
    totals, _ = _groups(specs)
    assert totals.vat.amount == D("1.67")


def test_line_nets_are_rounded_to_the_cent_before_grouping():
    totals, _ = _groups([line("33.333", "3")])
    assert totals.net.amount == D("100.00")
    assert totals.vat.amount == D("20.00")


def test_totals_of_a_yen_invoice_have_no_decimals():
    totals = compute_totals("JPY", [(Vat(STANDARD, D("10")), Money.of("1235", "JPY"))])
    assert (totals.net.amount, totals.vat.amount, totals.gross.amount) == (D("1235"), D("124"), D("1359"))


def test_an_issued_mixed_rate_invoice_stores_totals_exact_to_the_cent(world):
    with unit_of_work(world) as session:
        invoice_id = issued(session, *_mixed_rate_lines()).id
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        assert (invoice.total_net, invoice.total_vat, invoice.total_gross) == (
            D("2588.28"), D("245.12"), D("2833.40"))
        assert [line.net_amount for line in invoice.lines][:2] == [D("1062.50"), D("100.00")]
        assert invoice.lines[-1].vat_exemption_reason == "Autoliquidation"


def test_a_draft_has_no_number(world):
    with unit_of_work(world) as session:
        invoice = draft(session)
        assert (invoice.status, invoice.number, invoice.issue_date) == ("draft", None, None)


def test_issuing_gives_the_entity_prefix_year_and_a_five_digit_number(world):
    with unit_of_work(world) as session:
        invoice = issued(session, on=date(2026, 11, 2))
        assert invoice.number == "F2026-00001"
        assert invoice.status == "issued"
        assert invoice.issue_date == date(2026, 11, 2)


def test_numbers_are_continuous_and_cancelled_drafts_use_none(world):
    with unit_of_work(world) as session:
        first = issued(session, on=date(2026, 11, 2))
        cancel_draft(session, draft(session), actor="finance", reason="doublon")
        second = issued(session, on=date(2026, 11, 2))
        third = issued(session, on=date(2026, 11, 3))
        assert [first.number, second.number, third.number] == ["F2026-00001", "F2026-00002", "F2026-00003"]


def test_an_issue_date_before_the_last_issued_invoice_is_refused(world):
    with unit_of_work(world) as session:
        issued(session, on=date(2026, 11, 10))
        late = draft(session).id
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        issue(session, late, actor="finance", issue_date=date(2026, 11, 9))
    assert refused.value.code == "issue_date_out_of_order"
    with unit_of_work(world) as session:
        assert session.get(Invoice, late).status == "draft"
        # the refused attempt did not use up a number
        assert issue(session, late, actor="finance", issue_date=date(2026, 11, 10)).number == "F2026-00002"


def test_chronology_holds_across_years(world):
    with unit_of_work(world) as session:
        issued(session, on=date(2027, 1, 4))
        late = draft(session).id
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        issue(session, late, actor="finance", issue_date=date(2026, 12, 30))
    assert refused.value.code == "issue_date_out_of_order"


def test_issuing_an_issued_invoice_again_is_refused(world):
    with unit_of_work(world) as session:
        invoice_id = issued(session).id
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        issue(session, invoice_id, actor="finance", issue_date=date(2026, 11, 2))
    assert refused.value.code == "invoice_not_draft"
    with unit_of_work(world) as session:
        assert session.get(Invoice, invoice_id).number == "F2026-00001"


def test_a_cancelled_draft_cannot_be_issued(world):
    with unit_of_work(world) as session:
        invoice = draft(session)
        cancel_draft(session, invoice, actor="finance", reason="erreur")
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        issue(session, invoice.id, actor="finance")
    assert refused.value.code == "invoice_not_draft"


def test_a_new_year_starts_a_new_sequence(world):
    with unit_of_work(world) as session:
        december = [issued(session, on=date(2026, 12, 31)).number for _ in range(2)]
        january = issued(session, on=date(2027, 1, 4)).number
    assert december == ["F2026-00001", "F2026-00002"]
    assert january == "F2027-00001"


def test_each_entity_has_its_own_sequence(world):
    with unit_of_work(world) as session:
        catalog.upsert_entity(session, {**ENTITY, "code": "studio", "name": "Studio SAS", "invoice_prefix": "ST-"},
                              actor="admin")
        issued(session)
        assert issued(session, entity="studio").number == "ST-2026-00001"


def test_an_invoice_with_a_negative_total_cannot_be_issued(world):
    with unit_of_work(world) as session:
        invoice_id = draft(session, line("-10.00")).id
    with pytest.raises(Invalid) as refused, unit_of_work(world) as session:
        issue(session, invoice_id, actor="finance")
    assert refused.value.code == "invoice_negative"


def test_seller_and_buyer_are_frozen_at_issue(world):
    with unit_of_work(world) as session:
        invoice_id = issued(session).id
    with unit_of_work(world) as session:
        catalog.upsert_client(session, {**CLIENT, "name": "Lumière Group", "city": "Villeurbanne"}, actor="admin")
        catalog.upsert_entity(session, {**ENTITY, "name": "Atelier Numérique SA", "city": "Lille"}, actor="admin")
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        assert (invoice.buyer["name"], invoice.buyer["city"]) == ("Lumière Industries SA", "Lyon")
        assert (invoice.seller["name"], invoice.seller["city"]) == ("Atelier Numérique SAS", "Paris")
        assert invoice.seller["iban"] == ENTITY["iban"]
        assert issued(session, on=date(2026, 11, 3)).buyer["name"] == "Lumière Group"


def test_the_due_date_follows_the_client_terms(world):
    with unit_of_work(world) as session:
        net30 = issued(session, on=date(2026, 1, 20))
        assert net30.due_date == date(2026, 2, 19)
        assert net30.payment_terms == {"kind": "net", "days": 30}
        catalog.upsert_client(session, {**CLIENT, "payment_terms": {"kind": "eom45_eom_then_add"}}, actor="admin")
        assert issued(session, on=date(2026, 1, 20)).due_date == date(2026, 3, 17)


def test_issuing_leaves_an_audit_record_with_the_number(world):
    with unit_of_work(world) as session:
        invoice = issued(session)
        record = session.execute(
            select(AuditRecord).where(AuditRecord.action == "invoice.issued",
                                      AuditRecord.subject_id == str(invoice.id))
        ).scalar_one()
        assert record.actor == "finance"
        assert record.details["number"] == "F2026-00001"
        assert record.details["total_gross"] == {"amount": "1200.00", "currency": "EUR"}


def test_an_invoice_needs_at_least_one_line(world):
    with pytest.raises(Invalid) as refused, unit_of_work(world) as session:
        from jalon.core.invoicing import create_draft

        create_draft(session, entity=catalog.get_entity(session, "atelier"),
                     client=catalog.get_client(session, "lumiere"), lines=[], actor="finance")
    assert refused.value.code == "invoice_empty"
    with unit_of_work(world) as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 0


def test_deposits_already_paid_leave_the_net_amount_due_and_are_frozen_at_issue(world):
    with unit_of_work(world) as session:
        invoice = issued(session, line("1000.00"), prepaid_amount="300.00")
        assert invoice.money(invoice.total_gross) == Money("1200.00", "EUR")
        assert invoice.amount_due == Money("900.00", "EUR")
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        session.scalars(select(Invoice)).one().prepaid_amount = Decimal("0")


@pytest.mark.parametrize(("prepaid", "code"), [
    ("-1", "invalid_prepaid_amount"), ("1200.01", "invalid_prepaid_amount"), ("10.001", "invalid_prepaid_amount"),
    ("abc", "invalid_decimal"),
])
def test_deposits_outside_the_invoice_total_are_refused_and_no_draft_is_written(world, prepaid, code):
    with pytest.raises(Invalid) as refused, unit_of_work(world) as session:
        draft(session, line("1000.00"), prepaid_amount=prepaid)
    assert refused.value.code == code
    with unit_of_work(world) as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 0
