"""Fixtures of the documents' tests: each case's invoice, issued in a fresh
database and rendered once per engine (rendering is pure: the same invoice
gives the same bytes, so the tests of one case share one rendering)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from jalon.core import documents
from jalon.core.invoicing import invoice_totals

from tests.core.documents.cases import CASES
from tests.core.documents.helpers import load


@dataclass(frozen=True)
class Issued:
    """A rendered case and the invoice row's figures, as the database holds them."""

    rendered: documents.Rendered
    total_net: Decimal
    total_vat: Decimal
    total_gross: Decimal
    prepaid: Decimal
    amount_due: Decimal
    groups: list[tuple[str, Decimal, Decimal, Decimal]]


_rendered: dict[tuple[str, str], Issued] = {}


@pytest.fixture(params=sorted(CASES))
def case(request) -> str:  # type: ignore[no-untyped-def]
    return request.param


@pytest.fixture
def issued_case(case, db_url, world) -> Issued:  # type: ignore[no-untyped-def]
    key = (db_url.split(":", 1)[0], case)
    if key not in _rendered:
        invoice = load(world, CASES[case].issue(world))
        _rendered[key] = Issued(
            rendered=documents.render(invoice),
            total_net=invoice.total_net,
            total_vat=invoice.total_vat,
            total_gross=invoice.total_gross,
            prepaid=invoice.prepaid_amount,
            amount_due=invoice.amount_due.amount,
            groups=[(g.vat.category, g.vat.rate, g.base.amount, g.tax.amount) for g in invoice_totals(invoice).groups],
        )
    return _rendered[key]
