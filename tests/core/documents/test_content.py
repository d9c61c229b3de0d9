"""What each invoice says, on paper and in its Factur-X XML, situation by
situation (see cases.py): the mandatory French mentions printed, the same
facts carried in the EN 16931 fields, the XML valid against the schema, and
the figures of both equal to the database's."""

from __future__ import annotations

from decimal import Decimal

import facturx
from babel.numbers import format_currency

from tests.core.documents.cases import CASES
from tests.core.documents.helpers import NS, pdf_text, xml_tree, xpath


def _values(tree, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    if path.startswith("count("):
        return [str(int(tree.xpath(path, namespaces=NS)))]
    return [" ".join(value.split()) for value in xpath(tree, path)]  # babel's no-break spaces made plain


def test_the_pdf_prints_the_mentions_of_its_case(case, issued_case):
    text = pdf_text(issued_case.rendered.pdf)
    missing = [phrase for phrase in CASES[case].pdf if phrase not in text]
    assert missing == [], text
    present = [phrase for phrase in CASES[case].absent if phrase in text]
    assert present == []


def test_the_xml_carries_the_mentions_of_its_case(case, issued_case):
    tree = xml_tree(issued_case.rendered.xml)
    wrong = {path: _values(tree, path) for path, expected in CASES[case].xml if _values(tree, path) != expected}
    assert wrong == {}


def test_the_xml_is_valid_against_the_en16931_schema(issued_case):
    assert facturx.xml_check_xsd(issued_case.rendered.xml, flavor="factur-x", level="en16931")


def test_the_pdf_embeds_the_same_xml(issued_case):
    filename, embedded = facturx.get_xml_from_pdf(issued_case.rendered.pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    assert embedded == issued_case.rendered.xml


def test_the_figures_of_the_embedded_xml_equal_the_database_totals(issued_case):
    _filename, embedded = facturx.get_xml_from_pdf(issued_case.rendered.pdf)
    tree = xml_tree(embedded)
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"
    assert Decimal(xpath(tree, summation + "ram:TaxBasisTotalAmount")[0]) == issued_case.total_net  # BT-109
    assert Decimal(xpath(tree, summation + "ram:TaxTotalAmount")[0]) == issued_case.total_vat  # BT-110
    assert Decimal(xpath(tree, summation + "ram:GrandTotalAmount")[0]) == issued_case.total_gross  # BT-112
    assert Decimal(xpath(tree, summation + "ram:DuePayableAmount")[0]) == issued_case.amount_due  # BT-115
    assert Decimal((xpath(tree, summation + "ram:TotalPrepaidAmount") or ["0"])[0]) == issued_case.prepaid  # BT-113
    breakdown = [
        (tax.findtext("ram:CategoryCode", namespaces=NS),
         Decimal(tax.findtext("ram:RateApplicablePercent", default="0", namespaces=NS)),
         Decimal(tax.findtext("ram:BasisAmount", namespaces=NS)),
         Decimal(tax.findtext("ram:CalculatedAmount", namespaces=NS)))
        for tax in tree.xpath("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", namespaces=NS)
    ]
    assert breakdown == issued_case.groups


def test_the_printed_totals_equal_the_database_totals(case, issued_case):
    text = pdf_text(issued_case.rendered.pdf)
    locale = "en_GB" if case == "foreign_client_in_english" else "fr_FR"
    currency = xpath(xml_tree(issued_case.rendered.xml), "//ram:InvoiceCurrencyCode")[0]
    for amount in (issued_case.total_net, issued_case.total_vat, issued_case.total_gross, issued_case.amount_due):
        printed = _money(amount, locale, currency)
        assert printed in text, (printed, text)


def _money(amount: Decimal, locale: str, currency: str = "EUR") -> str:
    """An amount as printed, its spaces made plain as pdf_text makes them."""
    return " ".join(format_currency(amount, currency, locale=locale).replace("\u202f", " ").replace("\xa0", " ").split())
