"""Checks of French and European business identifiers (SIREN, SIRET, VAT, IBAN, BIC)."""

from __future__ import annotations

import re

from .errors import Invalid


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _compact(value: str) -> str:
    return re.sub(r"[\s.-]", "", value)


def siren(value: str) -> str:
    value = _compact(value)
    if not re.fullmatch(r"\d{9}", value) or not _luhn_ok(value):
        raise Invalid(f"{value!r} is not a valid SIREN (9 digits, Luhn key)", code="invalid_siren")
    return value


def siret(value: str) -> str:
    value = _compact(value)
    # La Poste's establishments (SIREN 356000000) use a digit sum instead of Luhn
    valid = re.fullmatch(r"\d{14}", value) is not None and (
        _luhn_ok(value) or (value.startswith("356000000") and sum(map(int, value)) % 5 == 0)
    )
    if not valid:
        raise Invalid(f"{value!r} is not a valid SIRET (14 digits, Luhn key)", code="invalid_siret")
    return value


def vat_number(value: str) -> str:
    value = _compact(value).upper()
    if not re.fullmatch(r"[A-Z]{2}[0-9A-Z]{2,13}", value):
        raise Invalid(f"{value!r} is not an intra-EU VAT number", code="invalid_vat_number")
    if value.startswith("FR"):
        key, number = value[2:4], value[4:]
        if not (re.fullmatch(r"\d{9}", number) and key.isdigit()) or int(key) != (12 + 3 * (int(number) % 97)) % 97:
            raise Invalid(f"{value!r} is not a valid French VAT number (FR + key + SIREN)", code="invalid_vat_number")
    return value


def iban(value: str) -> str:
    value = _compact(value).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", value):
        raise Invalid(f"{value!r} is not an IBAN", code="invalid_iban")
    rearranged = value[4:] + value[:4]
    if int("".join(str(int(c, 36)) for c in rearranged)) % 97 != 1:
        raise Invalid(f"{value!r} is not a valid IBAN (check digits)", code="invalid_iban")
    return value


def bic(value: str) -> str:
    value = _compact(value).upper()
    if not re.fullmatch(r"[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?", value):
        raise Invalid(f"{value!r} is not a BIC", code="invalid_bic")
    return value


def french_vat_from_siren(siren_value: str) -> str:
    number = siren(siren_value)
    return f"FR{(12 + 3 * (int(number) % 97)) % 97:02d}{number}"
