"""The documents of issued invoices (the Factur-X PDF and its XML), rendered
outside the transaction that issues.

Rendering takes a while (tens of milliseconds, more for a long invoice): done
in the transaction that issues, it would hold the numbering lock, and on
SQLite the write lock that webhook intake needs. So an invoice is issued and
committed first; its documents are stored afterwards, in a short transaction
of their own, by whoever needs them first (the approval that issued it, a
download, the e-mail to the client) or by the ``documents.render`` job, which
every minute renders those of issued invoices that have none (an invoice the
auto-issue policy issued while a webhook was applied, a process that stopped
between the two steps). The core stores each document once, so these paths
may race: the second one reads what the first stored.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from jalon.core import invoicing
from jalon.core.db import unit_of_work
from jalon.core.models import DOCUMENT_KINDS, Invoice, InvoiceDocument

from .plugin_types import JobSpec

log = logging.getLogger("jalon.connector.rendering")

# invoices rendered per run of the job: a run stays short; the next one takes the rest
RENDER_BATCH = 25


def ensure_documents(factory: sessionmaker[Session], invoice_id: int) -> dict[str, InvoiceDocument]:
    """The invoice's stored documents ({"pdf", "xml"}), rendered and stored
    first when they are not, in a transaction of their own."""
    from jalon.core import documents  # WeasyPrint is heavy: imported when a document is needed

    with unit_of_work(factory) as session:
        invoicing.get_invoice(session, invoice_id)  # unknown -> invoice_not_found
    # rendered with no transaction open: on SQLite a transaction holds the write lock
    return documents.ensure_committed(factory, invoice_id)


def _unrendered(limit: int) -> Any:
    missing = [
        ~exists().where(InvoiceDocument.invoice_id == Invoice.id, InvoiceDocument.kind == kind)
        for kind in DOCUMENT_KINDS
    ]
    return (select(Invoice.id).where(Invoice.number.is_not(None), or_(*missing))
            .order_by(Invoice.id).limit(limit))


def render_missing(context: Any) -> dict[str, Any]:
    """The scheduled job: render the documents of issued invoices that have none
    (a bounded batch; idempotent)."""
    runtime = context.runtime
    with unit_of_work(runtime.sessionmaker) as session:
        pending = list(session.execute(_unrendered(RENDER_BATCH)).scalars())
    rendered, failed = [], []
    for invoice_id in pending:
        try:
            ensure_documents(runtime.sessionmaker, invoice_id)
        except Exception:  # one bad invoice must not keep the others from their documents
            log.exception("documents of invoice %s could not be rendered", invoice_id)
            failed.append(invoice_id)
        else:
            rendered.append(invoice_id)
    return {"rendered": len(rendered), "failed": failed}


documents_job = JobSpec(
    name="documents.render",
    interval=timedelta(minutes=1),
    run=render_missing,
    description=f"Render and store the documents of issued invoices that have none ({RENDER_BATCH} a run)",
)
