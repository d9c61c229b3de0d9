"""The documents of an issued invoice: a PDF carrying every mention French law
requires, which is also a Factur-X invoice (EN 16931 profile, PDF/A-3 with the
CII XML embedded), and that XML alone.

They are rendered once, after the invoice is issued, and stored
(:class:`~jalon.core.models.InvoiceDocument`): what is sent to the client is
what is downloaded later, byte for byte, whatever changes in jalon's templates
or in the entity's details afterwards.
"""

from __future__ import annotations

from .rendering import Rendered, render
from .store import ensure, ensure_committed, stored

__all__ = ["Rendered", "ensure", "ensure_committed", "render", "stored"]
