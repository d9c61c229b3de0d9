"""What an invoice says, in French and in English.

French is the default: the law is French and so are most buyers. A buyer whose
frozen snapshot says ``language: "en"`` gets every label and every legal
sentence in English. The legal sentences are kept word for word here, in one
place, because a missing or reworded mention is what a tax inspection fines.
"""

from __future__ import annotations

from typing import Any

from ..catalog import LANGUAGES
from ..vat import DISBURSEMENT_REASON

TEXTS: dict[str, dict[str, Any]] = {
    "fr": {
        "title": {"invoice": "FACTURE", "credit_note": "AVOIR", "deposit": "FACTURE D'ACOMPTE"},
        # French typography: a space before the colon, a no-break one (U+00A0) so that
        # the colon never starts a line; the same before %, € and after n°
        "colon": "\u00a0:",
        "number": "Numéro",
        "issue_date": "Date d'émission",
        "service_date": "Date de la prestation ou de la livraison",
        "due_date": "Date d'échéance",
        "purchase_order": "Bon de commande",
        "corrects": "Avoir sur la facture",
        # a credit note of the whole invoice replaces it; one of a part corrects it
        "corrects_whole": "Cet avoir annule et remplace la facture n°\u00a0{number} du {date}.",
        "corrects_partial": "Cet avoir rectifie partiellement la facture n°\u00a0{number} du {date}.",
        "seller": "Émetteur",
        "buyer": "Client",
        "delivery_address": "Adresse de livraison",
        "siren": "SIREN",
        "siret": "SIRET",
        "vat_number": "N° TVA intracommunautaire",
        "capital": "{form} au capital de {capital}",
        "operation_nature": "Nature de l'opération",
        "natures": {
            "services": "prestations de services",
            "goods": "livraisons de biens",
            "mixed": "livraisons de biens et prestations de services",
        },
        "description": "Désignation",
        "quantity": "Quantité",
        "unit": "Unité",
        "unit_price": "Prix unitaire\u00a0HT",  # breaks as "Prix | unitaire HT"
        "vat_rate": "TVA",
        "line_total": "Montant HT",
        # singular, plural
        "units": {"C62": ("unité", "unités"), "HUR": ("heure", "heures"), "DAY": ("jour", "jours"),
                  "MON": ("mois", "mois"), "ANN": ("an", "ans"), "LS": ("forfait", "forfaits")},
        "vat_breakdown": "Récapitulatif de la TVA",
        "vat_category": "Taux / régime",
        "vat_base": "Base HT",
        "vat_amount": "Montant TVA",
        "categories": {
            "S": "TVA {rate}\u00a0%",
            "Z": "Taux zéro",
            "E": "Exonération",
            "AE": "Autoliquidation",
            "K": "Livraison intracommunautaire",
            "G": "Exportation hors UE",
            "O": "Hors champ de la TVA",
        },
        "total_net": "Total HT",
        "total_vat": "Total TVA",
        "total_gross": "Total TTC",
        "prepaid": "Acomptes déjà versés",
        "deducted": "Acomptes déduits\u00a0: {invoices}.",
        "deducted_item": "facture n°\u00a0{number}\u00a0du\u00a0{date}",
        "vat_in_eur": "Total TVA en euros\u00a0: {amount} (taux de change de la BCE du {day}\u00a0: {rate})",
        "amount_due": "Net à payer",
        "amount_due_credit": "Montant de l'avoir",
        "payment": "Conditions de paiement",
        "terms": "Conditions",
        "bank": "Règlement par virement SEPA",
        "iban": "IBAN",
        "bic": "BIC",
        "no_discount": "Pas d'escompte pour paiement anticipé.",
        "discount": "Escompte pour paiement anticipé\u00a0: {terms}",
        "penalty_rate": "Pénalités de retard\u00a0: {rate}\u00a0% par an, exigibles dès le lendemain de la date d'échéance "
                        "sans qu'un rappel soit nécessaire.",
        "penalty_legal": "Pénalités de retard\u00a0: taux de refinancement le plus récent de la Banque centrale "
                         "européenne majoré de 10 points, exigibles dès le lendemain de la date d'échéance sans "
                         "qu'un rappel soit nécessaire (art. L441-10 du Code de commerce).",
        "indemnity": "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement\u00a0: 40\u00a0€",
        "vat_on_debits": "Option pour le paiement de la taxe d'après les débits",
        "mentions": "Mentions",
        "page": "page",
        "of": "sur",
    },
    "en": {
        "title": {"invoice": "INVOICE", "credit_note": "CREDIT NOTE", "deposit": "DEPOSIT INVOICE"},
        "colon": ":",
        "number": "Number",
        "issue_date": "Issue date",
        "service_date": "Date of supply",
        "due_date": "Due date",
        "purchase_order": "Purchase order",
        "corrects": "Credit note for invoice",
        "corrects_whole": "This credit note cancels and replaces invoice no.\u00a0{number} of {date}.",
        "corrects_partial": "This credit note partially corrects invoice no.\u00a0{number} of {date}.",
        "seller": "From",
        "buyer": "Bill to",
        "delivery_address": "Delivery address",
        "siren": "SIREN",
        "siret": "SIRET",
        "vat_number": "VAT number",
        "capital": "{form} with a share capital of {capital}",
        "operation_nature": "Nature of the transaction",
        "natures": {
            "services": "supply of services",
            "goods": "supply of goods",
            "mixed": "supply of goods and services",
        },
        "description": "Description",
        "quantity": "Quantity",
        "unit": "Unit",
        "unit_price": "Unit price excl.\u00a0VAT",  # breaks as "Unit price | excl. VAT"
        "vat_rate": "VAT",
        "line_total": "Amount excl.\u00a0VAT",
        "units": {"C62": ("unit", "units"), "HUR": ("hour", "hours"), "DAY": ("day", "days"),
                  "MON": ("month", "months"), "ANN": ("year", "years"), "LS": ("lump sum", "lump sums")},
        "vat_breakdown": "VAT summary",
        "vat_category": "Rate / scheme",
        "vat_base": "Taxable amount",
        "vat_amount": "VAT amount",
        "categories": {
            "S": "VAT {rate}%",
            "Z": "Zero rated",
            "E": "Exempt",
            "AE": "Reverse charge",
            "K": "Intra-Community supply",
            "G": "Export outside the EU",
            "O": "Outside the scope of VAT",
        },
        "total_net": "Total excl. VAT",
        "total_vat": "Total VAT",
        "total_gross": "Total incl. VAT",
        "prepaid": "Deposits already paid",
        "deducted": "Deposits deducted: {invoices}.",
        "deducted_item": "invoice no.\u00a0{number}\u00a0of\u00a0{date}",
        "vat_in_eur": "Total VAT in euros: {amount} (ECB exchange rate of {day}: {rate})",
        "amount_due": "Amount due",
        "amount_due_credit": "Amount credited",
        "payment": "Payment terms",
        "terms": "Terms",
        "bank": "Payment by SEPA credit transfer",
        "iban": "IBAN",
        "bic": "BIC",
        "no_discount": "No discount for early payment.",
        "discount": "Early payment discount: {terms}",
        "penalty_rate": "Late payment penalties: {rate}% a year, due from the day after the due date "
                        "without any reminder being necessary.",
        "penalty_legal": "Late payment penalties: the European Central Bank's most recent main refinancing rate "
                         "plus 10 percentage points, due from the day after the due date without any reminder "
                         "being necessary (art. L441-10 of the French Commercial Code).",
        "indemnity": "Fixed compensation for recovery costs in the event of late payment: €40",
        "vat_on_debits": "VAT payable on debits (option for payment of the tax on an accruals basis)",
        "mentions": "Legal notices",
        "page": "page",
        "of": "of",
    },
}

# The reasons jalon.core.vat writes by default, in English; a reason typed by an
# admin is printed as typed.
ENGLISH_REASONS = {
    "Autoliquidation": "Reverse charge (autoliquidation)",
    "Exonération de TVA, article 262 ter I du CGI": "VAT exempt: intra-Community supply, "
                                                    "article 262 ter I of the French General Tax Code",
    "Exonération de TVA, article 262 I du CGI": "VAT exempt: export, article 262 I of the French General Tax Code",
    "TVA non applicable, art. 293 B du CGI": "VAT not applicable, article 293 B of the French General Tax Code",
    DISBURSEMENT_REASON: "Disbursements: costs paid in the client's name and on its behalf, outside the taxable "
                         "amount (article 267 II 2° of the French General Tax Code)",
}


def language_of(buyer: dict[str, Any]) -> str:
    language = (buyer.get("language") or "fr")[:2].lower()
    return language if language in LANGUAGES else "fr"


def unit_label(language: str, unit: str, quantity) -> str:  # type: ignore[no-untyped-def]
    """"1 heure", "2 heures", "1,5 heure": French keeps the singular below 2, English only for 1."""
    singular, plural = TEXTS[language]["units"].get(unit, (unit, unit))
    return singular if (quantity < 2 if language == "fr" else quantity == 1) else plural


def reason_in(language: str, reason: str) -> str:
    return ENGLISH_REASONS.get(reason, reason) if language == "en" else reason
