"""Payment terms and due dates (French Code de commerce, art. L441-10).

* ``net``: N days after the invoice date (N from 0 to 60, the legal ceiling).
* ``eom45_add_then_eom``: "45 jours fin de mois", first reading: add 45 days to the
  invoice date, then go to the end of that month.
* ``eom45_eom_then_add``: "45 jours fin de mois", second reading: go to the end of
  the invoice's month, then add 45 days.

Both readings of 45 days end of month are in legal use; the contract says which.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from .errors import Invalid

NET = "net"
EOM45_ADD_THEN_EOM = "eom45_add_then_eom"
EOM45_EOM_THEN_ADD = "eom45_eom_then_add"
KINDS = (NET, EOM45_ADD_THEN_EOM, EOM45_EOM_THEN_ADD)
LEGAL_MAX_NET_DAYS = 60


def end_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True, slots=True)
class PaymentTerms:
    kind: str = NET
    days: int = 30

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise Invalid(
                f"payment terms must be one of {', '.join(KINDS)}, not {self.kind!r}",
                code="invalid_payment_terms",
            )
        if self.kind == NET:
            if isinstance(self.days, bool) or not isinstance(self.days, int) or not 0 <= self.days <= LEGAL_MAX_NET_DAYS:
                raise Invalid(
                    f"net payment terms must be 0 to {LEGAL_MAX_NET_DAYS} days (L441-10), not {self.days!r}",
                    code="invalid_payment_terms",
                )
        else:
            object.__setattr__(self, "days", 45)

    def due_date(self, invoice_date: date) -> date:
        if self.kind == NET:
            return invoice_date + timedelta(days=self.days)
        if self.kind == EOM45_ADD_THEN_EOM:
            return end_of_month(invoice_date + timedelta(days=45))
        return end_of_month(invoice_date) + timedelta(days=45)

    def describe(self, language: str = "fr") -> str:
        if language == "fr":
            if self.kind == NET:
                return "à réception" if self.days == 0 else f"{self.days} jours net à compter de la date de facture"
            if self.kind == EOM45_ADD_THEN_EOM:
                return "45 jours fin de mois (date de facture + 45 jours, puis fin de mois)"
            return "45 jours fin de mois (fin du mois de facture, puis + 45 jours)"
        if self.kind == NET:
            return "due on receipt" if self.days == 0 else f"net {self.days} days from the invoice date"
        if self.kind == EOM45_ADD_THEN_EOM:
            return "45 days end of month (invoice date + 45 days, then end of month)"
        return "45 days end of month (end of the invoice month, then + 45 days)"
