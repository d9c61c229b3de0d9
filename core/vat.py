"""VAT categories (EN 16931 / UNCL 5305 codes) and their rules.

A line's VAT is a category plus a rate. Reduced rates are the standard category
with a lower rate (10 %, 5.5 %, 2.1 % in France); zero, exempt and reverse-charge
lines carry a 0 % rate, and exempt and reverse-charge lines carry the legal reason
that must be printed on the invoice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from .errors import Invalid
from .money import to_decimal

STANDARD = "S"
ZERO = "Z"
EXEMPT = "E"
REVERSE_CHARGE = "AE"
INTRA_EU = "K"
EXPORT = "G"
OUTSIDE_SCOPE = "O"

CATEGORIES = {
    STANDARD: "standard",
    ZERO: "zero rated",
    EXEMPT: "exempt",
    REVERSE_CHARGE: "reverse charge",
    INTRA_EU: "intra-community supply",
    EXPORT: "export outside the EU",
    OUTSIDE_SCOPE: "outside the scope of VAT",
}
NEEDS_REASON = {EXEMPT, REVERSE_CHARGE, INTRA_EU, EXPORT, OUTSIDE_SCOPE}
DEFAULT_REASONS = {
    REVERSE_CHARGE: "Autoliquidation",
    INTRA_EU: "Exonération de TVA, article 262 ter I du CGI",
    EXPORT: "Exonération de TVA, article 262 I du CGI",
}
# The VATEX code (BT-121) each category carries by default; an exempt line's code
# depends on why it is exempt (the franchise, a disbursement...)
DEFAULT_CODES = {REVERSE_CHARGE: "VATEX-EU-AE", INTRA_EU: "VATEX-EU-IC", EXPORT: "VATEX-EU-G",
                 OUTSIDE_SCOPE: "VATEX-EU-O"}
# The small-business franchise (art. 293 B du CGI): the seller charges no VAT at all
FRANCHISE_REASON = "TVA non applicable, art. 293 B du CGI"
FRANCHISE_CODE = "VATEX-FR-FRANCHISE"
# Disbursements (débours): costs paid in the client's name and on its behalf, outside the
# taxable amount (art. 267 II 2° du CGI, art. 79 c of directive 2006/112). EN 16931 lets no
# "outside the scope" line sit beside taxable ones (BR-O-11, BR-O-12): next to taxable lines
# they are exempt lines with the directive's own VATEX code, which every rule set accepts.
DISBURSEMENT_REASON = ("Débours : frais engagés au nom et pour le compte du client, exclus de la base "
                       "d'imposition (art. 267 II 2° du CGI)")
DISBURSEMENT_CODE = "VATEX-EU-79-C"
# The rates a French invoice may carry (FNFE-MPE rule BR-FR-16: the closed list of the
# rates in force in mainland France, Corsica and the overseas departments, past and present)
FRENCH_RATES = frozenset(Decimal(r) for r in (
    "0", "0.9", "1.05", "1.75", "2.1", "5.5", "7", "8.5", "9.2", "9.6", "10", "13", "19.6", "20", "20.6"))
# VATEX codes (CEF code list, as the EN 16931 schematron knows them) a line may name
VATEX_CODE = re.compile(r"^VATEX-(EU|FR)-[A-Z0-9-]{1,30}$")


@dataclass(frozen=True, slots=True)
class Vat:
    category: str = STANDARD
    rate: Decimal = Decimal("20")
    exemption_reason: str | None = None
    exemption_code: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise Invalid(
                f"VAT category must be one of {', '.join(CATEGORIES)}, not {self.category!r}",
                code="invalid_vat_category",
            )
        rate = to_decimal(self.rate, what="VAT rate")
        object.__setattr__(self, "rate", rate)
        if self.category == STANDARD:
            if not Decimal(0) < rate < Decimal(100):
                raise Invalid("a standard-rated line needs a rate above 0 and below 100", code="invalid_vat_rate")
        elif rate != 0:
            raise Invalid(
                f"a {CATEGORIES[self.category]} line has a 0 % rate, not {rate}", code="invalid_vat_rate"
            )
        reason = (self.exemption_reason or "").strip() or DEFAULT_REASONS.get(self.category)
        if self.category in NEEDS_REASON and not reason:
            raise Invalid(
                f"a {CATEGORIES[self.category]} line needs the legal reason that will be printed "
                "(for example 'TVA non applicable, art. 293 B du CGI')",
                code="vat_reason_required",
            )
        code = (self.exemption_code or "").strip().upper() or None
        if code is not None and not VATEX_CODE.match(code):
            raise Invalid(f"exemption_code {code!r} is not a VATEX code (e.g. VATEX-EU-79-C)",
                          code="invalid_vat_exemption_code")
        if self.category in (STANDARD, ZERO):
            reason = code = None
        elif code is None:
            code = FRANCHISE_CODE if self.category == EXEMPT and reason and "293 B" in reason \
                else DEFAULT_CODES.get(self.category)
        object.__setattr__(self, "exemption_reason", reason)
        object.__setattr__(self, "exemption_code", code)

    @classmethod
    def franchise(cls) -> Vat:
        return cls(EXEMPT, Decimal(0), FRANCHISE_REASON, FRANCHISE_CODE)

    @classmethod
    def disbursement(cls) -> Vat:
        return cls(EXEMPT, Decimal(0), DISBURSEMENT_REASON, DISBURSEMENT_CODE)

    @property
    def is_disbursement(self) -> bool:
        return self.exemption_code == DISBURSEMENT_CODE

    @property
    def key(self) -> tuple[str, Decimal]:
        return (self.category, self.rate.normalize())


def check_french_rate(vat: Vat, *, field: str = "vat.rate") -> Vat:
    """Refuse a rate outside the French closed list (BR-FR-16), naming the field."""
    if vat.rate.normalize() not in FRENCH_RATES:
        allowed = ", ".join(str(r) for r in sorted(FRENCH_RATES) if r)
        raise Invalid(
            f"{field}: {vat.rate} % is not a French VAT rate (BR-FR-16 allows {allowed})",
            code="vat_rate_not_allowed", details={"field": field, "rule": "BR-FR-16"},
        )
    return vat
