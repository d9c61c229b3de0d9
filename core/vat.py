"""VAT categories (EN 16931 / UNCL 5305 codes) and their rules.

A line's VAT is a category plus a rate. Reduced rates are the standard category
with a lower rate (10 %, 5.5 %, 2.1 % in France); zero, exempt and reverse-charge
lines carry a 0 % rate, and exempt and reverse-charge lines carry the legal reason
that must be printed on the invoice.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Vat:
    category: str = STANDARD
    rate: Decimal = Decimal("20")
    exemption_reason: str | None = None

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
        if self.category in (STANDARD, ZERO):
            reason = None
        object.__setattr__(self, "exemption_reason", reason)

    @property
    def key(self) -> tuple[str, Decimal]:
        return (self.category, self.rate.normalize())
