"""What the French 2026 rules ask of an invoice before it is drafted or issued:
electronic addresses, the closed lists of rates, numbers, the franchise,
disbursements beside taxable lines, deposits and the final invoice that
deducts them. Refusals name the field and the rule; what the rules allow is
represented the way they allow it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from jalon.core import catalog, invoicing
from jalon.core.balances import open_balance
from jalon.core.db import unit_of_work
from jalon.core.errors import Conflict, Invalid
from jalon.core.models import AuditRecord, Invoice, InvoiceDeposit
from jalon.core.vat import Vat

from tests.factories import CLIENT, ENTITY, draft, issued, line

FRANCHISE = {"code": "studio", "name": "Studio Lune", "legal_form": "EI", "siren": "803215805",
             "vat_franchise": True, "address_line1": "3 impasse des Lilas", "postcode": "44000", "city": "Nantes",
             "invoice_prefix": "SL"}


def _refused(Session, action, code: str) -> Invalid:  # type: ignore[no-untyped-def]  # noqa: N803
    with pytest.raises((Invalid, Conflict)) as refused:
        with unit_of_work(Session) as session:
            action(session)
    assert refused.value.code == code, refused.value
    return refused.value  # type: ignore[return-value]


# ---------------------------------------------------------------- electronic addresses


def test_a_party_without_an_address_uses_its_siren_in_the_french_directory(world):
    with unit_of_work(world) as session:
        invoice = issued(session)
        assert (invoice.seller["electronic_address_scheme"], invoice.seller["electronic_address"]) == (
            "0225", "732829320")
        assert (invoice.buyer["electronic_address_scheme"], invoice.buyer["electronic_address"]) == (
            "0225", "552100554")


def test_a_configured_address_is_kept_and_frozen_on_the_invoice(world):
    with unit_of_work(world) as session:
        catalog.upsert_client(session, {**CLIENT, "electronic_address": "552100554_COMPTA"}, actor="admin")
        invoice = issued(session)
        assert invoice.buyer["electronic_address"] == "552100554_COMPTA"
        assert invoice.buyer["electronic_address_scheme"] == "0225"


@pytest.mark.parametrize(("address", "scheme", "rule"), [
    ("999999999", None, "BR-FR-21"),           # a 0225 address starts with the party's SIREN
    ("552100554 COMPTA", "0225", "BR-FR-23"),  # no space
    ("552100554_" + "x" * 120, None, "BR-FR-25"),
    ("552100554", "ZZ", None),                 # not an EAS code
    ("not-an-e-mail", "EM", None),
])
def test_a_bad_electronic_address_is_refused_naming_the_field(world, address, scheme, rule):
    data = {**CLIENT, "electronic_address": address, "electronic_address_scheme": scheme}
    error = _refused(world, lambda s: catalog.upsert_client(s, data, actor="admin"), "invalid_electronic_address")
    assert error.details.get("rule") == rule
    assert "electronic_address" in error.details["field"]


def test_a_client_with_neither_address_nor_siren_nor_e_mail_cannot_be_invoiced(world):
    with unit_of_work(world) as session:
        catalog.upsert_client(session, {"code": "anon", "name": "Client sans identifiant"}, actor="admin")
        invoice_id = draft(session, client="anon").id
    error = _refused(world, lambda s: invoicing.issue(s, invoice_id, actor="finance"), "electronic_address_required")
    assert "anon" in str(error)
    with unit_of_work(world) as session:  # nothing half-issued
        assert session.get(Invoice, invoice_id).status == "draft"


def test_a_client_abroad_is_reached_at_its_billing_e_mail(world):
    with unit_of_work(world) as session:
        catalog.upsert_client(session, {"code": "nw", "name": "Northwind", "country_code": "IE",
                                        "vat_number": "IE6388047V", "billing_emails": ["ap@northwind.example"]},
                              actor="admin")
        invoice = issued(session, line("100.00", vat=Vat("AE", Decimal(0))), client="nw")
        assert (invoice.buyer["electronic_address_scheme"], invoice.buyer["electronic_address"]) == (
            "EM", "ap@northwind.example")


# ---------------------------------------------------------------- rates, numbers


def test_a_rate_outside_the_french_list_is_refused_naming_the_line(world):
    error = _refused(world, lambda s: draft(s, line("100.00"), line("100.00", vat=Vat("S", Decimal("19")))),
                     "vat_rate_not_allowed")
    assert error.details == {"field": "lines[1].vat.rate", "rule": "BR-FR-16"}


def test_a_contract_rate_outside_the_french_list_is_refused_at_configuration(world):
    contract = {"reference": "X-1", "name": "X", "kind": "time_and_materials", "entity": "atelier",
                "client": "lumiere", "vat": {"category": "S", "rate": "21"}}
    error = _refused(world, lambda s: catalog.upsert_contract(s, contract, actor="admin"), "vat_rate_not_allowed")
    assert error.details["field"] == "vat.rate"


@pytest.mark.parametrize("rate", ["20", "10", "5.5", "2.1", "8.5", "0.9", "1.05", "13", "19.6"])
def test_every_french_rate_is_accepted(world, rate):
    with unit_of_work(world) as session:
        assert draft(session, line("100.00", vat=Vat("S", Decimal(rate)))).lines[0].vat_rate == Decimal(rate)


@pytest.mark.parametrize("prefix", ["F 2026", "Fé", "F.", "FACT#"])
def test_a_prefix_the_french_numbering_rules_refuse_is_refused(world, prefix):
    error = _refused(world, lambda s: catalog.upsert_entity(s, {**ENTITY, "invoice_prefix": prefix}, actor="admin"),
                     "invalid_prefix")
    assert error.details == {"field": "invoice_prefix", "rule": "BR-FR-02"}


# ---------------------------------------------------------------- franchise, disbursements, exemptions


def test_a_seller_under_the_franchise_charges_no_vat_and_says_why(world):
    with unit_of_work(world) as session:
        catalog.upsert_entity(session, FRANCHISE, actor="admin")
        invoice = issued(session, line("900.00"), line("100.00", vat=Vat("S", Decimal("10"))), entity="studio")
        assert invoice.number == "SL2026-00001"
        assert {(ln.vat_category, ln.vat_exemption_reason, ln.vat_exemption_code) for ln in invoice.lines} == {
            ("E", "TVA non applicable, art. 293 B du CGI", "VATEX-FR-FRANCHISE")}
        assert (invoice.total_vat, invoice.total_gross) == (Decimal("0.00"), Decimal("1000.00"))


def test_a_franchise_contract_takes_the_franchise_and_refuses_a_standard_rate(world):
    with unit_of_work(world) as session:
        catalog.upsert_entity(session, FRANCHISE, actor="admin")
        contract, _ = catalog.upsert_contract(session, {"reference": "S-1", "name": "Illustrations",
                                                        "kind": "time_and_materials", "entity": "studio",
                                                        "client": "lumiere"}, actor="admin")
        assert contract.vat == Vat.franchise()
    bad = {"reference": "S-2", "name": "X", "kind": "time_and_materials", "entity": "studio", "client": "lumiere",
           "vat": {"category": "S", "rate": "20"}}
    error = _refused(world, lambda s: catalog.upsert_contract(s, bad, actor="admin"), "vat_franchise_no_vat")
    assert error.details["field"] == "vat.category"


def test_disbursements_sit_beside_taxable_lines_as_exempt_lines(world):
    with unit_of_work(world) as session:
        invoice = issued(session, line("1200.00"), line("214.60", vat=Vat.disbursement()))
        groups = {(g.vat.category, g.vat.exemption_code): g.tax.amount for g in invoicing.invoice_totals(invoice).groups}
        assert groups == {("S", None): Decimal("240.00"), ("E", "VATEX-EU-79-C"): Decimal("0.00")}
        assert invoice.total_gross == Decimal("1654.60")


def test_an_outside_scope_line_beside_taxable_ones_is_refused_with_the_way_out(world):
    outside = Vat("O", Decimal(0), "Hors champ")
    error = _refused(world, lambda s: draft(s, line("1000.00"), line("50.00", vat=outside)), "vat_outside_scope_mixed")
    assert error.details == {"field": "lines[1].vat.category", "rule": "BR-O-11"}
    assert "disbursement" in str(error)
    with unit_of_work(world) as session:  # alone, it is an invoice of its own
        assert issued(session, line("50.00", vat=outside)).number


def test_two_exemption_reasons_in_one_category_are_refused(world):
    training = Vat("E", Decimal(0), "Exonération de TVA, art. 261-4-4° a du CGI", "VATEX-FR-CGI261-4")
    error = _refused(world, lambda s: draft(s, line("1000.00", vat=training), line("50.00", vat=Vat.disbursement())),
                     "vat_exemption_reasons_conflict")
    assert error.details["field"] == "lines[1].vat.exemption_reason"


def test_a_vatex_code_must_look_like_one():
    with pytest.raises(Invalid) as refused:
        Vat("E", Decimal(0), "Exonéré", "261-4")
    assert refused.value.code == "invalid_vat_exemption_code"


# ---------------------------------------------------------------- deposits


def _deposit(session, amount: str = "1800.00", on: date = date(2026, 11, 2)) -> Invoice:  # type: ignore[no-untyped-def]
    invoice = invoicing.create_draft(session, entity=catalog.get_entity(session, "atelier"),
                                     client=catalog.get_client(session, "lumiere"), lines=[line(amount)],
                                     actor="finance", deposit=True)
    return invoicing.issue(session, invoice.id, actor="finance", issue_date=on)


def _final(session, *deposits: Invoice) -> Invoice:  # type: ignore[no-untyped-def]
    return invoicing.create_draft(session, entity=catalog.get_entity(session, "atelier"),
                                  client=catalog.get_client(session, "lumiere"), lines=[line("6000.00")],
                                  actor="finance", deposits=list(deposits))


def test_a_final_invoice_deducts_its_deposits_once(world):
    with unit_of_work(world) as session:
        first, second = _deposit(session, "1000.00"), _deposit(session, "800.00")
        final = invoicing.issue(session, _final(session, first, second).id, actor="finance",
                                issue_date=date(2026, 11, 3))
        assert final.prepaid_amount == Decimal("2160.00")  # 1 200.00 + 960.00 incl. VAT
        assert final.amount_due.amount == Decimal("5040.00")
        assert open_balance(session, final).amount == Decimal("5040.00")  # the deposits are owed on their own
        assert open_balance(session, first).amount == Decimal("1200.00")
        assert [link.deposit.number for link in final.deposits] == [first.number, second.number]
        first_id = first.id
    error = _refused(world, lambda s: _final(s, s.get(Invoice, first_id)), "deposit_already_deducted")
    assert "deposit F2026-00001 is already deducted by invoice F2026-00003" in str(error)


def test_a_cancelled_final_draft_frees_its_deposit(world):
    with unit_of_work(world) as session:
        deposit = _deposit(session)
        final = _final(session, deposit)
        invoicing.cancel_draft(session, final, actor="finance", reason="wrong client")
        assert session.execute(select(InvoiceDeposit)).scalars().all() == []
        assert _final(session, deposit).prepaid_amount == Decimal("2160.00")


@pytest.mark.parametrize("which", ["plain_invoice", "draft_deposit", "credited_deposit"])
def test_only_an_issued_deposit_can_be_deducted(world, which):
    with unit_of_work(world) as session:
        if which == "plain_invoice":
            target = issued(session)
        elif which == "draft_deposit":
            target = invoicing.create_draft(session, entity=catalog.get_entity(session, "atelier"),
                                            client=catalog.get_client(session, "lumiere"), lines=[line("10.00")],
                                            actor="finance", deposit=True)
        else:
            target = _deposit(session)
            invoicing.credit(session, target.id, actor="finance", reason="annulé", issue_date=date(2026, 11, 2))
        target_id = target.id
    error = _refused(world, lambda s: _final(s, s.get(Invoice, target_id)), "invalid_deposit")
    assert error.details == {"field": "deposits[0]"}


def test_a_deposit_invoice_deducts_nothing(world):
    def both(session):  # type: ignore[no-untyped-def]
        invoicing.create_draft(session, entity=catalog.get_entity(session, "atelier"),
                               client=catalog.get_client(session, "lumiere"), lines=[line("10.00")],
                               actor="finance", deposit=True, prepaid_amount="5")
    _refused(world, both, "invalid_deposit")


def test_a_deducted_deposit_cannot_be_credited_under_its_final_invoice(world):
    with unit_of_work(world) as session:
        deposit = _deposit(session)
        _final(session, deposit)
        deposit_id = deposit.id
    error = _refused(world, lambda s: invoicing.credit(s, deposit_id, actor="finance", reason="x",
                                                       issue_date=date(2026, 11, 2)), "deposit_deducted")
    assert "F2026-00001" in str(error)


def test_a_final_invoice_credited_in_full_frees_its_deposit_for_the_one_replacing_it(world):
    with unit_of_work(world) as session:
        deposit = _deposit(session)
        final = invoicing.issue(session, _final(session, deposit).id, actor="finance", issue_date=date(2026, 11, 2))
        invoicing.credit(session, final.id, actor="finance", reason="annule et remplace", issue_date=date(2026, 11, 2))
        assert final.status == "credited" and final.deposits == []
        replacement = _final(session, deposit)
        assert replacement.prepaid_amount == Decimal("2160.00")
        assert session.execute(select(AuditRecord.details).where(
            AuditRecord.action == "invoice.deposits_released")).scalar_one() == {"deposits": ["F2026-00001"]}
