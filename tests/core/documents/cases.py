"""The invoices the documents' tests render, one per situation the law treats
differently, with what each must say on paper and carry in its XML."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Callable

from jalon.core import catalog, fx, invoicing
from jalon.core.db import unit_of_work
from jalon.core.models import Invoice
from jalon.core.vat import Vat

from tests.core.documents.helpers import issue
from tests.factories import line

# what an invoice the client must pay says about paying it (a credit note says none of it)
FR_PAYMENT = [
    "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 €",
    "Pas d'escompte pour paiement anticipé",
    "Pénalités de retard : taux de refinancement le plus récent de la Banque centrale européenne majoré de 10 points",
    "IBAN FR76 3000 6000 0112 3456 7890 189",  # by groups of four
    "BIC AGRIFRPP",
]
# who issues it and when: every French invoice and credit note
FR_IDENTITY = [
    "SIREN 732829320",
    "RCS Paris 732 829 320",
    "SAS au capital de 10 000 €",
    "N° TVA intracommunautaire FR44732829320",
    "Date d'émission 2 novembre 2026",
    "Date de la prestation ou de la livraison 2 novembre 2026",
]
FR_LEGAL = [*FR_PAYMENT, *FR_IDENTITY]
# none of it on a credit note: the seller owes the client
NOT_ON_A_CREDIT_NOTE = ["Date d'échéance", "CONDITIONS DE PAIEMENT", "Règlement par virement", "IBAN", "BIC",
                        "Pénalités de retard", "Indemnité forfaitaire", "40 €", "escompte", "Net à payer"]
# (XPath, expected values) every French invoice carries
FR_XML = [
    ("//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']", ["732829320"]),
    ("//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']", ["FR44732829320"]),
    ("//ram:SellerTradeParty/ram:Description", ["SAS au capital de 10 000 € – RCS Paris 732 829 320"]),
    ("//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode", ["58"]),
    ("//ram:PayeePartyCreditorFinancialAccount/ram:IBANID", ["FR7630006000011234567890189"]),
    ("//ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID", ["AGRIFRPP"]),
    ("//rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString", ["20261102"]),
    ("//ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/udt:DateTimeString", ["20261102"]),
    ("//ram:IncludedNote[ram:SubjectCode='PMT']/ram:Content",
     ["Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 €"]),
    ("//ram:IncludedNote[ram:SubjectCode='AAB']/ram:Content", ["Pas d'escompte pour paiement anticipé."]),
    ("count(//ram:IncludedNote[ram:SubjectCode='PMD'])", ["1"]),
]


@dataclass(frozen=True)
class Case:
    issue: Callable[[Any], int]
    pdf: list[str]
    xml: list[tuple[str, list[str]]]
    absent: list[str] = field(default_factory=list)


def _standard(Session) -> int:  # noqa: N803
    return issue(Session, line("1000.00", "2", description="Développement"),
                 line("150.00", "3", Vat("S", Decimal("10")), description="Formation", unit="HUR"))


def _reverse_charge(Session) -> int:  # noqa: N803
    return issue(Session, line("4000.00", description="Sous-traitance du lot 3", vat=Vat("AE", Decimal("0"))))


def _exempt(Session) -> int:  # noqa: N803
    return issue(Session, line("800.00", description="Formation",
                               vat=Vat("E", Decimal("0"), "TVA non applicable, art. 293 B du CGI")))


def _english(Session) -> int:  # noqa: N803
    return issue(Session, line("2500.00", description="Design sprint", vat=Vat("AE", Decimal("0"))),
                 client={"language": "en", "country_code": "DE", "siren": None, "vat_number": "DE123456789",
                         "address_line1": "Torstraße 1", "postcode": "10119", "city": "Berlin"})


def _credit_note(Session) -> int:  # noqa: N803
    invoice_id = _standard(Session)
    with unit_of_work(Session) as session:
        return invoicing.credit(session, invoice_id, actor="finance", reason="Erreur de quantité",
                                issue_date=date(2026, 11, 2)).id


def _partial_credit_note(Session) -> int:  # noqa: N803
    """One of the three hours of training of the standard invoice credited."""
    invoice_id = _standard(Session)
    with unit_of_work(Session) as session:
        return invoicing.credit(session, invoice_id, actor="finance", reason="Une heure non effectuée",
                                lines=[line("150.00", vat=Vat("S", Decimal("10")), description="Formation",
                                            unit="HUR")],
                                issue_date=date(2026, 11, 2)).id


def _vat_on_debits(Session) -> int:  # noqa: N803
    return issue(Session, line("1200.00", description="Maintenance"),
                 entity={"vat_on_debits": True, "late_penalty_rate": Decimal("12"),
                         "early_payment_discount": "2 % pour un paiement sous 10 jours"})


def _delivery(Session) -> int:  # noqa: N803
    return issue(Session, line("300.00", "4", description="Bornes Wi-Fi"),
                 entity={"operation_nature": "goods"},
                 client={"delivery_address_line1": "Entrepôt 7, zone des Gaulnes", "delivery_postcode": "69330",
                         "delivery_city": "Meyzieu"})


def _purchase_order(Session) -> int:  # noqa: N803
    return issue(Session, line("950.00", description="Audit"), purchase_order="PO-4521",
                 entity={"operation_nature": "mixed"})


def _prepaid(Session) -> int:  # noqa: N803
    return issue(Session, line("5000.00", description="Refonte du site"), prepaid="1500.00")


def _intra_community(Session) -> int:  # noqa: N803
    return issue(Session, line("700.00", "2", description="Routeurs", vat=Vat("K", Decimal("0"))),
                 entity={"operation_nature": "goods"},
                 client={"country_code": "BE", "siren": None, "vat_number": "BE0403170701",
                         "address_line1": "Rue de la Loi 16", "postcode": "1000", "city": "Bruxelles"})


def _deposit(Session) -> int:  # noqa: N803
    with unit_of_work(Session) as session:
        invoice = invoicing.create_draft(session, entity=catalog.get_entity(session, "atelier"),
                                         client=catalog.get_client(session, "lumiere"), actor="finance", deposit=True,
                                         lines=[line("1800.00", description="Acompte de 30 % à la commande")])
        return invoicing.issue(session, invoice.id, actor="finance", issue_date=date(2026, 11, 2)).id


def _final_after_deposit(Session) -> int:  # noqa: N803
    deposit_id = _deposit(Session)
    with unit_of_work(Session) as session:
        invoice = invoicing.create_draft(session, entity=catalog.get_entity(session, "atelier"),
                                         client=catalog.get_client(session, "lumiere"), actor="finance",
                                         deposits=[session.get(Invoice, deposit_id)],
                                         lines=[line("6000.00", description="Audit d'accessibilité")])
        return invoicing.issue(session, invoice.id, actor="finance", issue_date=date(2026, 11, 2)).id


def _in_dollars(Session) -> int:  # noqa: N803
    with unit_of_work(Session) as session:
        fx.set_rate(session, "USD", date(2026, 10, 30), "1.0842", actor="finance")  # a Friday: Monday takes it
    return issue(Session, line("1234.50", "2", description="Développement"), currency="USD")


def _franchise(Session) -> int:  # noqa: N803
    return issue(Session, line("900.00", description="Illustrations"),
                 entity={"vat_franchise": True, "vat_number": None, "legal_form": "EI", "share_capital": None,
                         "rcs": None})


def _disbursements(Session) -> int:  # noqa: N803
    return issue(Session, line("1200.00", description="Atelier de co-conception"),
                 line("214.60", description="Débours — billets de train", vat=Vat.disbursement()))


def _consumer(Session) -> int:  # noqa: N803
    return issue(Session, line("450.00", description="Audit de site personnel"),
                 client={"name": "Claire Martin", "siren": None, "vat_number": None,
                         "billing_emails": ["claire.martin@example.fr"]})


def _discount(Session) -> int:  # noqa: N803
    return issue(Session, line("1000.00", "2", description="Développement"),
                 line("-200.00", description="Remise commerciale"))


def _outside_scope(Session) -> int:  # noqa: N803
    return issue(Session, line("600.00", description="Refacturation de frais de douane",
                               vat=Vat("O", Decimal("0"), "Hors champ d'application de la TVA")))


CASES: dict[str, Case] = {
    "discount_line": Case(
        _discount,
        ["Remise commerciale", "Total HT 1 800,00 €", "Total TVA 360,00 €", "Total TTC 2 160,00 €"],
        [("//ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeAgreement"
          "/ram:NetPriceProductTradePrice/ram:ChargeAmount", ["1000.00", "200.00"]),  # BR-27: never negative
         ("//ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeDelivery/ram:BilledQuantity",
          ["2", "-1"]),
         ("//ram:IncludedSupplyChainTradeLineItem/ram:SpecifiedLineTradeSettlement"
          "/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount", ["2000.00", "-200.00"])],
    ),
    "standard_two_rates": Case(
        _standard,
        ["FACTURE", "F2026-00001", "Lumière Industries SA", "SIREN 552100554", "N° TVA intracommunautaire FR96552100554",
         "Nature de l'opération : prestations de services", "Développement", "Formation", "3 heures",
         "TVA 20 % 2 000,00 € 400,00 €", "TVA 10 % 450,00 € 45,00 €", "Total HT 2 450,00 €",
         "Total TVA 445,00 €", "Total TTC 2 895,00 €", "Net à payer 2 895,00 €", "Date d'échéance 2 décembre 2026",
         *FR_LEGAL],
        [("//rsm:ExchangedDocument/ram:TypeCode", ["380"]), ("//rsm:ExchangedDocument/ram:ID", ["F2026-00001"]),
         ("//ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID[@schemeID='0002']", ["552100554"]),
         ("//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']", ["FR96552100554"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent",
          ["20.00", "10.00"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", ["S", "S"]),
         ("//ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString", ["20261202"]),
         ("//ram:BilledQuantity/@unitCode", ["C62", "HUR"]),
         ("//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", ["S1"]),
         *FR_XML],
        absent=["ADRESSE DE LIVRAISON", "Acomptes", "Bon de commande", "débits", "AVOIR"],
    ),
    "reverse_charge": Case(
        _reverse_charge,
        ["Autoliquidation", "N° TVA intracommunautaire FR96552100554", "Total TVA 0,00 €", *FR_LEGAL],
        [("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", ["AE"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReason", ["Autoliquidation"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReasonCode", ["VATEX-EU-AE"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CalculatedAmount", ["0.00"]),
         ("//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']", ["FR96552100554"]),
         *FR_XML],
    ),
    "exempt": Case(
        _exempt,
        ["TVA non applicable, art. 293 B du CGI", "Exonération", "Total TTC 800,00 €", *FR_LEGAL],
        [("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", ["E"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReason",
          ["TVA non applicable, art. 293 B du CGI"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReasonCode",
          ["VATEX-FR-FRANCHISE"]),
         *FR_XML],
    ),
    "foreign_client_in_english": Case(
        _english,
        ["INVOICE", "BILL TO", "Issue date 2 November 2026", "Torstraße 1", "10119 Berlin Germany",
         "75011 Paris France",  # a buyer abroad reads the seller's country too
         "VAT number DE123456789", "INVOICE F2026-00001 – page 1 of 1", "Unit price excl. VAT", "Amount excl. VAT",
         "IBAN FR76 3000 6000 0112 3456 7890 189", "Reverse charge (autoliquidation)", "Amount due €2,500.00",
         "Fixed compensation for recovery costs in the event of late payment: €40",
         "No discount for early payment", "Late payment penalties: the European Central Bank's most recent main "
         "refinancing rate plus 10 percentage points", "Nature of the transaction: supply of services",
         "SAS with a share capital of €10,000", "Payment by SEPA credit transfer"],
        [("//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CountryID", ["DE"]),
         ("//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']", ["DE123456789"]),
         ("count(//ram:BuyerTradeParty/ram:SpecifiedLegalOrganization)", ["0"]),
         ("//ram:IncludedNote[ram:SubjectCode='PMT']/ram:Content",
          ["Fixed compensation for recovery costs in the event of late payment: €40"]),
         ("//ram:IncludedNote[ram:SubjectCode='AAB']/ram:Content", ["No discount for early payment."]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReason",
          ["Reverse charge (autoliquidation)"])],
        absent=["FACTURE", "Indemnité forfaitaire", "Pas d'escompte"],
    ),
    "credit_note": Case(
        _credit_note,
        ["AVOIR", "F2026-00002", "Avoir sur la facture F2026-00001",
         "Cet avoir annule et remplace la facture n° F2026-00001 du 2 novembre 2026",
         "Montant de l'avoir 2 895,00 €", "AVOIR F2026-00002 – page 1 sur 1", *FR_IDENTITY],
        [("//rsm:ExchangedDocument/ram:TypeCode", ["381"]), ("//rsm:ExchangedDocument/ram:ID", ["F2026-00002"]),
         ("//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", ["F2026-00001"]),
         ("//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/qdt:DateTimeString", ["20261102"]),
         ("//ram:GrandTotalAmount", ["2895.00"]),
         *FR_XML],
        absent=["FACTURE", "rectifie partiellement", *NOT_ON_A_CREDIT_NOTE],
    ),
    "vat_on_debits_and_contractual_terms": Case(
        _vat_on_debits,
        ["Option pour le paiement de la taxe d'après les débits",
         "Pénalités de retard : 12 % par an", "Escompte pour paiement anticipé : 2 % pour un paiement sous 10 jours",
         "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40 €"],
        [("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:DueDateTypeCode", ["5"]),
         ("//ram:IncludedNote[ram:SubjectCode='TXD']/ram:Content",
          ["Option pour le paiement de la taxe d'après les débits"]),
         ("//ram:IncludedNote[ram:SubjectCode='AAB']/ram:Content",
          ["Escompte pour paiement anticipé : 2 % pour un paiement sous 10 jours"]),
         ("//ram:IncludedNote[ram:SubjectCode='PMD']/ram:Content",
          ["Pénalités de retard : 12 % par an, exigibles dès le lendemain de la date d'échéance sans qu'un rappel "
           "soit nécessaire."])],
        absent=["Pas d'escompte"],
    ),
    "delivery_address_different": Case(
        _delivery,
        ["ADRESSE DE LIVRAISON", "Entrepôt 7, zone des Gaulnes", "69330 Meyzieu",
         "Nature de l'opération : livraisons de biens", *FR_LEGAL],
        [("//ram:ShipToTradeParty/ram:Name", ["Lumière Industries SA"]),
         ("//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:LineOne", ["Entrepôt 7, zone des Gaulnes"]),
         ("//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CityName", ["Meyzieu"]),
         ("//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID", ["FR"]),
         ("//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", ["B1"]),
         *FR_XML],
    ),
    "purchase_order": Case(
        _purchase_order,
        ["Bon de commande PO-4521", "Nature de l'opération : livraisons de biens et prestations de services",
         *FR_LEGAL],
        [("//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID", ["PO-4521"]),
         ("//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", ["M1"]),
         *FR_XML],
    ),
    "intra_community_supply": Case(
        _intra_community,
        ["Livraison intracommunautaire", "Exonération de TVA, article 262 ter I du CGI", "N° TVA intracommunautaire "
         "BE0403170701", "Nature de l'opération : livraisons de biens", *FR_LEGAL],
        [("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", ["K"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReasonCode", ["VATEX-EU-IC"]),
         ("//ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID", ["BE"]),
         ("//ram:BuyerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']", ["BE0403170701"]),
         *FR_XML],
    ),
    "outside_scope": Case(
        _outside_scope,
        ["Hors champ de la TVA", "Hors champ d'application de la TVA", "N° TVA intracommunautaire FR44732829320",
         *FR_LEGAL],
        # "not subject to VAT" forbids VAT identifiers and rates in the XML (BR-O-02, BR-O-05): printed only
        [("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", ["O"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReasonCode", ["VATEX-EU-O"]),
         ("count(//ram:SpecifiedTaxRegistration)", ["0"]), ("count(//ram:RateApplicablePercent)", ["0"])],
    ),
    "prepaid_deposit": Case(
        _prepaid,
        ["Total TTC 6 000,00 €", "Acomptes déjà versés 1 500,00 €", "Net à payer 4 500,00 €", *FR_LEGAL],
        [("//ram:TotalPrepaidAmount", ["1500.00"]), ("//ram:DuePayableAmount", ["4500.00"]),
         ("//ram:GrandTotalAmount", ["6000.00"]), *FR_XML],
    ),
    "partial_credit_note": Case(
        _partial_credit_note,
        ["AVOIR", "F2026-00002", "Avoir sur la facture F2026-00001",
         "Cet avoir rectifie partiellement la facture n° F2026-00001 du 2 novembre 2026",
         "Formation 1 heure 150,00 € TVA 10 % 150,00 €", "Montant de l'avoir 165,00 €", *FR_IDENTITY],
        [("//rsm:ExchangedDocument/ram:TypeCode", ["381"]),
         ("//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", ["F2026-00001"]),
         ("//ram:GrandTotalAmount", ["165.00"])],
        absent=["FACTURE", "annule et remplace", "Développement", *NOT_ON_A_CREDIT_NOTE],
    ),
    "deposit_invoice": Case(
        _deposit,
        ["FACTURE D'ACOMPTE", "F2026-00001", "Acompte de 30 % à la commande", "Net à payer 2 160,00 €", *FR_LEGAL],
        [("//rsm:ExchangedDocument/ram:TypeCode", ["386"]),
         ("//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", ["S1"]), *FR_XML],
    ),
    "final_after_deposit": Case(
        _final_after_deposit,
        ["FACTURE", "F2026-00002", "Total TTC 7 200,00 €", "Acomptes déjà versés 2 160,00 €",
         "Net à payer 5 040,00 €", "Acomptes déduits : facture n° F2026-00001 du 2 novembre 2026.", *FR_LEGAL],
        [("//rsm:ExchangedDocument/ram:TypeCode", ["380"]),
         ("//ram:BusinessProcessSpecifiedDocumentContextParameter/ram:ID", ["S4"]),
         ("//ram:InvoiceReferencedDocument/ram:IssuerAssignedID", ["F2026-00001"]),
         ("//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/qdt:DateTimeString", ["20261102"]),
         ("//ram:TotalPrepaidAmount", ["2160.00"]), ("//ram:DuePayableAmount", ["5040.00"]), *FR_XML],
        absent=["FACTURE D'ACOMPTE"],
    ),
    "foreign_currency": Case(
        _in_dollars,
        ["Total TTC 2 962,80 $US", "Total TVA en euros : 455,45 € (taux de change de la BCE du 30 octobre 2026 : "
         "1 EUR = 1,0842 USD)", *FR_IDENTITY],
        # BR-FR-CO-12: the accounting currency and the VAT total in it (493.80 USD / 1.0842)
        [("//ram:InvoiceCurrencyCode", ["USD"]), ("//ram:TaxCurrencyCode", ["EUR"]),
         ("//ram:TaxTotalAmount[@currencyID='EUR']", ["455.45"]),
         ("//ram:TaxTotalAmount[@currencyID='USD']", ["493.80"])],
    ),
    "franchise_en_base": Case(
        _franchise,
        ["TVA non applicable, art. 293 B du CGI", "Total TTC 900,00 €", "SIREN 732829320"],
        [("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", ["E"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReasonCode",
          ["VATEX-FR-FRANCHISE"]),
         # no VAT number: the SIREN as tax registration (BR-E-02)
         ("//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='FC']", ["732829320"]),
         ("count(//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA'])", ["0"])],
        absent=["N° TVA intracommunautaire FR44732829320", "TVA 20 %"],
    ),
    "disbursements_beside_taxable_work": Case(
        _disbursements,
        ["Débours — billets de train", "Débours : frais engagés au nom et pour le compte du client",
         "Total HT 1 414,60 €", "Total TVA 240,00 €", "Total TTC 1 654,60 €", *FR_LEGAL],
        [("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:CategoryCode", ["S", "E"]),
         ("//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReasonCode",
          ["VATEX-EU-79-C"]), *FR_XML],
    ),
    "consumer_without_siren": Case(
        _consumer,
        ["Claire Martin", "Total TTC 540,00 €", *FR_LEGAL],
        # B2C: no SIREN for BR-FR-11 to ask; reached at her e-mail (BT-49, scheme EM)
        [("//rsm:ExchangedDocument/ram:IncludedNote[ram:SubjectCode='BAR']/ram:Content", ["B2C"]),
         ("//ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID[@schemeID='EM']",
          ["claire.martin@example.fr"]),
         ("count(//ram:BuyerTradeParty/ram:SpecifiedLegalOrganization)", ["0"])],
        absent=["SIREN 552100554"],
    ),
}
