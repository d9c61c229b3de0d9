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


# The electronic invoicing address (EN 16931 BT-34 seller, BT-49 buyer) is a value and a
# scheme from the EAS code list: 0225 is the French directory (annuaire) of the 2026
# reform, whose addresses are the SIREN, SIREN_SIRET, SIREN_SIRET_routing code or
# SIREN_suffix (BR-FR-21); EM is an e-mail address, for a buyer abroad.
FRENCH_DIRECTORY = "0225"
EMAIL_SCHEME = "EM"
_EAS = re.compile(r"^(\d{4}|EM|AN|AQ|AS|AU)$")
_DIRECTORY_ADDRESS = re.compile(r"^[A-Za-z0-9._-]{1,125}$")


def electronic_address(value: str, scheme: str | None, *, siren_value: str | None,
                       field: str = "electronic_address") -> tuple[str, str]:
    """(scheme, value) of an electronic invoicing address, checked against the rules a
    plateforme agréée applies: the scheme from the EAS list; a 0225 address made of
    letters, digits, '-', '_' and '.' (BR-FR-23), at most 125 characters (BR-FR-25),
    starting with the party's SIREN (BR-FR-21)."""
    scheme = (scheme or FRENCH_DIRECTORY).strip().upper()
    value = value.strip()
    if not _EAS.match(scheme):
        raise Invalid(f"{field}_scheme: {scheme!r} is not an EAS code (0225 for the French directory, "
                      "EM for an e-mail address, or another 4-digit ISO 6523 code)",
                      code="invalid_electronic_address", details={"field": f"{field}_scheme"})
    if len(value) > 125:
        raise Invalid(f"{field}: at most 125 characters (BR-FR-25)", code="invalid_electronic_address",
                      details={"field": field, "rule": "BR-FR-25"})
    if scheme == FRENCH_DIRECTORY:
        if not _DIRECTORY_ADDRESS.match(value):
            raise Invalid(f"{field}: {value!r} may hold only letters, digits, '-', '_' and '.' (BR-FR-23)",
                          code="invalid_electronic_address", details={"field": field, "rule": "BR-FR-23"})
        if siren_value and not value.startswith(siren_value):
            raise Invalid(f"{field}: a 0225 address starts with the SIREN {siren_value} (BR-FR-21), "
                          f"not {value!r}", code="invalid_electronic_address",
                          details={"field": field, "rule": "BR-FR-21"})
    elif scheme == EMAIL_SCHEME and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise Invalid(f"{field}: {value!r} is not an e-mail address", code="invalid_electronic_address",
                      details={"field": field})
    elif not value:
        raise Invalid(f"{field} is empty", code="invalid_electronic_address", details={"field": field})
    return scheme, value
