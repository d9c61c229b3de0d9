"""Payment terms (Code de commerce L441-10): net N days, or one of the two
readings of "45 jours fin de mois"."""

from datetime import date

import pytest

from jalon.core.errors import Invalid
from jalon.core.terms import EOM45_ADD_THEN_EOM, EOM45_EOM_THEN_ADD, NET, PaymentTerms


@pytest.mark.parametrize("days, invoice_date, due", [
    (0, date(2026, 1, 20), date(2026, 1, 20)),
    (30, date(2026, 1, 20), date(2026, 2, 19)),
    (45, date(2026, 12, 15), date(2027, 1, 29)),
    (60, date(2026, 1, 20), date(2026, 3, 21)),
])
def test_net_terms_add_days_to_the_invoice_date(days, invoice_date, due):
    assert PaymentTerms(NET, days).due_date(invoice_date) == due


@pytest.mark.parametrize("days", [61, -1, 90])
def test_net_terms_beyond_the_legal_60_days_are_refused(days):
    with pytest.raises(Invalid) as refused:
        PaymentTerms(NET, days)
    assert refused.value.code == "invalid_payment_terms"


@pytest.mark.parametrize("days", ["30", 30.0, True])
def test_net_terms_need_an_integer_number_of_days(days):
    with pytest.raises(Invalid):
        PaymentTerms(NET, days)


def test_an_unknown_kind_of_terms_is_refused():
    with pytest.raises(Invalid) as refused:
        PaymentTerms("eom60", 60)
    assert refused.value.code == "invalid_payment_terms"


def test_45_days_end_of_month_add_then_end_of_month():
    # 2026-01-20 + 45 days = 2026-03-06, then the end of March
    assert PaymentTerms(EOM45_ADD_THEN_EOM).due_date(date(2026, 1, 20)) == date(2026, 3, 31)


def test_45_days_end_of_month_end_of_month_then_add():
    # end of January 2026 = 2026-01-31, + 45 days
    assert PaymentTerms(EOM45_EOM_THEN_ADD).due_date(date(2026, 1, 20)) == date(2026, 3, 17)


def test_the_two_readings_of_45_days_end_of_month_give_different_dates():
    invoice_date = date(2026, 1, 20)
    assert PaymentTerms(EOM45_ADD_THEN_EOM).due_date(invoice_date) != PaymentTerms(EOM45_EOM_THEN_ADD).due_date(
        invoice_date
    )


@pytest.mark.parametrize("kind, invoice_date, due", [
    # 2028 is a leap year: 2028-01-15 + 45 days is 29 February
    (EOM45_ADD_THEN_EOM, date(2028, 1, 15), date(2028, 2, 29)),
    (EOM45_ADD_THEN_EOM, date(2027, 1, 15), date(2027, 3, 31)),
    (EOM45_EOM_THEN_ADD, date(2028, 1, 10), date(2028, 3, 16)),
    (EOM45_EOM_THEN_ADD, date(2027, 1, 10), date(2027, 3, 17)),
    (EOM45_EOM_THEN_ADD, date(2027, 12, 31), date(2028, 2, 14)),
    (NET, date(2028, 2, 15), date(2028, 3, 16)),
    (NET, date(2027, 2, 15), date(2027, 3, 17)),
])
def test_due_dates_across_leap_years(kind, invoice_date, due):
    assert PaymentTerms(kind, 30).due_date(invoice_date) == due


def test_45_days_end_of_month_always_counts_45_days():
    assert PaymentTerms(EOM45_EOM_THEN_ADD, 10).days == 45
