"""The documents of an issued invoice: a PDF carrying every mention French law
requires, which is also a Factur-X invoice (EN 16931 profile, PDF/A-3 with the
CII XML embedded), and that XML alone.

They are rendered once, after the invoice is issued, and stored
(:class:`~jalon.core.models.InvoiceDocument`): what is sent to the client is
what is downloaded later, byte for byte, whatever changes in jalon's templates
or in the entity's details afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Invoice
from . import cii, pdf, view
from .store import ensure, ensure_committed, stored

__all__ = ["Rendered", "ensure", "ensure_committed", "render", "stored"]


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
