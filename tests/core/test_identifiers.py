"""French and European business identifiers."""

import pytest

from jalon.core import identifiers
from jalon.core.errors import Invalid


@pytest.mark.parametrize("value, compact", [("732829320", "732829320"), ("732 829 320", "732829320")])
def test_a_siren_with_a_valid_luhn_key_is_accepted(value, compact):
    assert identifiers.siren(value) == compact


@pytest.mark.parametrize("value", ["732829321", "73282932", "7328293200", "ABCDEFGHI"])
def test_a_siren_with_a_bad_key_or_length_is_refused(value):
    with pytest.raises(Invalid) as refused:
        identifiers.siren(value)
    assert refused.value.code == "invalid_siren"


def test_a_siret_with_a_valid_luhn_key_is_accepted():
    assert identifiers.siret("732 829 320 00009") == "73282932000009"


def test_a_siret_with_a_bad_luhn_key_is_refused():
    with pytest.raises(Invalid) as refused:
        identifiers.siret("73282932000008")
    assert refused.value.code == "invalid_siret"


def test_la_poste_siret_uses_a_digit_sum_instead_of_luhn():
    assert identifiers.siret("35600000000001") == "35600000000001"
    with pytest.raises(Invalid):
        identifiers.siret("35600000000002")


@pytest.mark.parametrize("value", ["FR44732829320", "fr 44 732829320", "FR96552100554"])
def test_a_french_vat_number_with_the_right_key_is_accepted(value):
    assert identifiers.vat_number(value).startswith("FR")


@pytest.mark.parametrize("value", ["FR45732829320", "FR4473282932", "FRXX732829320"])
def test_a_french_vat_number_with_a_wrong_key_is_refused(value):
    with pytest.raises(Invalid) as refused:
        identifiers.vat_number(value)
    assert refused.value.code == "invalid_vat_number"


def test_the_french_vat_number_derives_from_the_siren():
    assert identifiers.french_vat_from_siren("732829320") == "FR44732829320"


def test_an_iban_with_valid_check_digits_is_accepted():
    assert identifiers.iban("FR76 3000 6000 0112 3456 7890 189") == "FR7630006000011234567890189"


@pytest.mark.parametrize("value", ["FR7630006000011234567890188", "FR7730006000011234567890189", "FR76", "1234"])
def test_an_iban_failing_mod_97_is_refused(value):
    with pytest.raises(Invalid) as refused:
        identifiers.iban(value)
    assert refused.value.code == "invalid_iban"


@pytest.mark.parametrize("value", ["AGRIFRPP", "agrifrpp", "AGRIFRPPXXX", "BNPAFRPP123"])
def test_a_well_formed_bic_is_accepted(value):
    assert identifiers.bic(value) == value.upper()


@pytest.mark.parametrize("value", ["AGRIFRP", "AGR1FRPP", "AGRIFRPPXX", "AGRIFRPPXXXX"])
def test_a_malformed_bic_is_refused(value):
    with pytest.raises(Invalid) as refused:
        identifiers.bic(value)
    assert refused.value.code == "invalid_bic"
