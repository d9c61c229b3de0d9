"""Money is an exact Decimal with its ISO 4217 currency; rounding is explicit."""

from decimal import Decimal

import pytest

from jalon.core.errors import Invalid
from jalon.core.money import Money, minor_unit, quantize, to_decimal


@pytest.mark.parametrize("value", [0.1, 1.0, float("nan")])
def test_money_refuses_floats(value):
    with pytest.raises(Invalid) as refused:
        Money(value, "EUR")
    assert refused.value.code == "float_refused"


@pytest.mark.parametrize("value", [True, False])
def test_money_refuses_booleans(value):
    with pytest.raises(Invalid) as refused:
        Money.of(value, "EUR")
    assert refused.value.code == "float_refused"


def test_money_multiplied_by_a_float_is_refused():
    with pytest.raises(Invalid):
        Money.of("10", "EUR") * 1.2


def test_money_accepts_decimal_strings_ints_and_decimals_exactly():
    assert Money.of("0.1", "EUR") + Money.of("0.2", "EUR") == Money.of("0.3", "EUR")
    assert Money.of(3, "EUR").amount == Decimal("3")
    assert Money.of(Decimal("1.005"), "EUR").amount == Decimal("1.005")


@pytest.mark.parametrize("value", ["abc", "", "1,5", "Infinity", "NaN"])
def test_an_amount_that_is_not_a_finite_decimal_is_refused(value):
    with pytest.raises(Invalid) as refused:
        to_decimal(value)
    assert refused.value.code == "invalid_decimal"


@pytest.mark.parametrize("operation", [
    lambda a, b: a + b,
    lambda a, b: a - b,
    lambda a, b: a < b,
    lambda a, b: a <= b,
    lambda a, b: a > b,
    lambda a, b: a >= b,
])
def test_amounts_of_different_currencies_never_mix(operation):
    with pytest.raises(Invalid) as refused:
        operation(Money.of("1", "EUR"), Money.of("1", "USD"))
    assert refused.value.code == "currency_mismatch"


def test_equal_amounts_in_different_currencies_are_not_equal():
    assert Money.of("1", "EUR") != Money.of("1", "USD")


def test_sum_of_money_starts_from_zero():
    assert sum([Money.of("1.10", "EUR"), Money.of("2.20", "EUR")]) == Money.of("3.30", "EUR")


@pytest.mark.parametrize("currency, places", [("EUR", 2), ("JPY", 0), ("KWD", 3)])
def test_minor_unit_follows_the_currency(currency, places):
    assert minor_unit(currency) == places


@pytest.mark.parametrize("currency, amount, rounded", [
    ("EUR", "10.125", "10.13"),
    ("EUR", "10.005", "10.01"),
    ("JPY", "1234.5", "1235"),
    ("KWD", "1.2345", "1.235"),
])
def test_quantize_rounds_to_the_currency_minor_unit_half_up_by_default(currency, amount, rounded):
    result = Money.of(amount, currency).quantize()
    assert str(result.amount) == rounded


@pytest.mark.parametrize("amount, half_up, half_even", [
    ("0.125", "0.13", "0.12"),
    ("0.005", "0.01", "0.00"),
    ("0.135", "0.14", "0.14"),
    ("-0.125", "-0.13", "-0.12"),
])
def test_rounding_modes_are_named_and_differ_on_halves(amount, half_up, half_even):
    money = Money.of(amount, "EUR")
    assert str(money.quantize("half_up").amount) == half_up
    assert str(money.quantize("half_even").amount) == half_even


def test_jpy_half_even_rounds_to_the_even_yen():
    assert Money.of("2.5", "JPY").quantize("half_even").amount == Decimal("2")
    assert Money.of("2.5", "JPY").quantize("half_up").amount == Decimal("3")


def test_an_unknown_rounding_mode_is_refused():
    with pytest.raises(Invalid) as refused:
        quantize(Decimal("1.005"), 2, "bankers")
    assert refused.value.code == "invalid_rounding"


@pytest.mark.parametrize("code", ["eur", "EURO", "XYZ", "", None, 978])
def test_an_invalid_currency_code_is_refused(code):
    with pytest.raises(Invalid) as refused:
        Money.of("1", code)
    assert refused.value.code == "invalid_currency"


def test_to_json_gives_the_rounded_amount_as_a_string():
    assert Money.of("1234.5", "EUR").to_json() == {"amount": "1234.50", "currency": "EUR"}
    assert Money.of("1234.5", "JPY").to_json() == {"amount": "1235", "currency": "JPY"}
    assert Money.of("0.0005", "KWD").to_json() == {"amount": "0.001", "currency": "KWD"}
