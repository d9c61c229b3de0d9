"""VAT categories and rates (UNCL 5305 codes)."""

from decimal import Decimal

import pytest

from jalon.core.errors import Invalid
from jalon.core.vat import EXEMPT, REVERSE_CHARGE, STANDARD, ZERO, Vat


@pytest.mark.parametrize("rate", ["20", "10", "5.5", "2.1"])
def test_french_standard_and_reduced_rates_are_standard_category(rate):
    vat = Vat(STANDARD, Decimal(rate))
    assert vat.rate == Decimal(rate)
    assert vat.exemption_reason is None


def test_the_default_vat_is_20_percent_standard():
    assert (Vat().category, Vat().rate) == (STANDARD, Decimal("20"))


def test_a_zero_rated_line_has_a_zero_rate_and_no_reason():
    vat = Vat(ZERO, Decimal("0"), "ignored")
    assert vat.rate == 0
    assert vat.exemption_reason is None


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_an_exempt_line_needs_a_reason(reason):
    with pytest.raises(Invalid) as refused:
        Vat(EXEMPT, Decimal("0"), reason)
    assert refused.value.code == "vat_reason_required"


def test_an_exempt_line_keeps_its_reason():
    vat = Vat(EXEMPT, Decimal("0"), "TVA non applicable, art. 293 B du CGI")
    assert vat.exemption_reason == "TVA non applicable, art. 293 B du CGI"


def test_reverse_charge_prints_autoliquidation_by_default():
    assert Vat(REVERSE_CHARGE, Decimal("0")).exemption_reason == "Autoliquidation"


@pytest.mark.parametrize("category, rate", [
    (STANDARD, "0"),
    (STANDARD, "100"),
    (STANDARD, "-5.5"),
    (ZERO, "20"),
    (EXEMPT, "5.5"),
    (REVERSE_CHARGE, "20"),
])
def test_a_rate_that_does_not_fit_its_category_is_refused(category, rate):
    with pytest.raises(Invalid) as refused:
        Vat(category, Decimal(rate), "a reason")
    assert refused.value.code == "invalid_vat_rate"


def test_a_float_rate_is_refused():
    with pytest.raises(Invalid) as refused:
        Vat(STANDARD, 5.5)
    assert refused.value.code == "float_refused"


def test_an_unknown_category_is_refused():
    with pytest.raises(Invalid) as refused:
        Vat("X", Decimal("20"))
    assert refused.value.code == "invalid_vat_category"


def test_rates_written_differently_group_together():
    assert Vat(STANDARD, Decimal("5.50")).key == Vat(STANDARD, Decimal("5.5")).key
