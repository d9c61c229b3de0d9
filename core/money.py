"""Money: an exact Decimal amount with its ISO 4217 currency.

Floats are refused at the door; amounts of different currencies never mix;
rounding is explicit, to the currency's minor unit, with a named mode.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel.numbers import format_currency, get_currency_precision, list_currencies

from .errors import Invalid

ROUNDING_MODES: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}
# French practice (and EN 16931's examples) round half away from zero.
DEFAULT_ROUNDING = "half_up"


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def check_currency(code: Any) -> str:
    if not isinstance(code, str) or code.upper() != code or code not in _currencies():
        raise Invalid(f"{code!r} is not an ISO 4217 currency code", code="invalid_currency")
    return code


def minor_unit(currency: str) -> int:
    """Number of decimal places of the currency (2 for EUR, 0 for JPY, 3 for KWD)."""
    return get_currency_precision(check_currency(currency))


def to_decimal(value: Any, *, what: str = "amount") -> Decimal:
    """Turn an int, a Decimal or a numeric string into a finite Decimal; refuse floats."""
    if isinstance(value, bool) or isinstance(value, float):
        raise Invalid(f"{what} must be a decimal string, not a float ({value!r})", code="float_refused")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise Invalid(f"{what} {value!r} is not a decimal number", code="invalid_decimal") from None
    else:
        raise Invalid(f"{what} must be a decimal string, not {type(value).__name__}", code="invalid_decimal")
    if not result.is_finite():
        raise Invalid(f"{what} must be finite", code="invalid_decimal")
    return result


def quantize(value: Decimal, places: int, rounding: str = DEFAULT_ROUNDING) -> Decimal:
    try:
        mode = ROUNDING_MODES[rounding]
    except KeyError:
        raise Invalid(f"unknown rounding mode {rounding!r}", code="invalid_rounding") from None
    return value.quantize(Decimal(1).scaleb(-places), rounding=mode)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", to_decimal(self.amount))
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def of(cls, amount: Any, currency: str) -> Money:
        return cls(to_decimal(amount), currency)

    def _same(self, other: Any) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise Invalid(
                f"cannot mix {self.currency} and {other.currency}", code="currency_mismatch"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other).amount, self.currency)

    def __radd__(self, other: Any) -> Money:
        if other == 0:  # lets sum() start from its default 0
            return self
        return self.__add__(other)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __mul__(self, factor: Any) -> Money:
        if isinstance(factor, Money):
            raise TypeError("cannot multiply Money by Money")
        return Money(self.amount * to_decimal(factor, what="factor"), self.currency)

    __rmul__ = __mul__

    def _cmp(self, other: Any) -> tuple[Decimal, Decimal]:
        return self.amount, self._same(other).amount

    def __lt__(self, other: Money) -> bool:
        a, b = self._cmp(other)
        return a < b

    def __le__(self, other: Money) -> bool:
        a, b = self._cmp(other)
        return a <= b

    def __gt__(self, other: Money) -> bool:
        a, b = self._cmp(other)
        return a > b

    def __ge__(self, other: Money) -> bool:
        a, b = self._cmp(other)
        return a >= b

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.currency == other.currency and self.amount == other.amount

    def __hash__(self) -> int:
        return hash((self.amount, self.currency))

    def quantize(self, rounding: str = DEFAULT_ROUNDING) -> Money:
        """Round to the currency's minor unit with the named mode."""
        return Money(quantize(self.amount, minor_unit(self.currency), rounding), self.currency)

    def min(self, other: Money) -> Money:
        return self if self <= other else other

    def to_json(self) -> dict[str, str]:
        """Amounts travel as strings, never floats."""
        return {"amount": str(self.quantize().amount), "currency": self.currency}

    def format(self, locale: str = "fr_FR") -> str:
        return format_currency(self.amount, self.currency, locale=locale)

    def __str__(self) -> str:
        return f"{self.quantize().amount} {self.currency}"
