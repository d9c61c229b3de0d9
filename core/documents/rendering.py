"""Rendering an issued invoice's documents: the Factur-X PDF and its CII XML."""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Invoice
from . import cii, pdf, view


@dataclass(frozen=True)
class Rendered:
    pdf: bytes  # Factur-X PDF/A-3 with factur-x.xml embedded
    xml: bytes  # the CII XML alone (the same bytes as embedded)


def render(invoice: Invoice) -> Rendered:
    """Render an issued invoice or credit note from what it froze at issue.

    Pure: reads the invoice, writes nothing. A draft or a cancelled invoice has
    no number and no frozen parties: refused with ``invoice_not_issued``.
    """
    reading = view.build(invoice)
    xml = cii.build(reading)
    return Rendered(pdf=pdf.factur_x(reading, xml), xml=xml)
