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
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, sessionmaker

from jalon.core.db import unit_of_work
from jalon.core.models import DOCUMENT_KINDS, Invoice, InvoiceDocument

from jalon.connector.plugin.types import JobSpec

log = logging.getLogger("jalon.connector.outbox.rendering")

# invoices rendered per run of the job: a run stays short; the next one takes the rest
RENDER_BATCH = 25
# an invoice whose rendering failed is set aside this long (in this process) before the
# job tries it again: failures at the head of the queue must not hold the others back
RETRY_FAILED_AFTER = timedelta(hours=1)
# at most this many set aside (beyond, the oldest are tried again at once)
MAX_SET_ASIDE = 1000
_set_aside: dict[int, datetime] = {}  # invoice id -> when the job may try it again


def ensure_documents(factory: sessionmaker[Session], invoice_id: int) -> dict[str, InvoiceDocument]:
    """The invoice's stored documents ({"pdf", "xml"}), rendered and stored
    first when they are not, in a transaction of their own."""
    from jalon.core import documents  # WeasyPrint is heavy: imported when a document is needed

    # unknown -> invoice_not_found; rendered with no transaction open (on SQLite a transaction
    # holds the write lock)
    return documents.ensure_committed(factory, invoice_id)


def store_after_issue(runtime: Any, invoice_id: int, number: str | None) -> bool:
    """Once the issuing transaction has committed: wake the dispatcher (for the
    messages the issue queued) and store the documents now, in a transaction
    of their own (rendering never holds the numbering lock). False when
    rendering failed: the invoice stays issued, and the documents job renders
    them later."""
    runtime.wake_dispatcher.set()
    try:
        ensure_documents(runtime.sessionmaker, invoice_id)
    except Exception:
        log.exception("invoice %s is issued but its documents could not be rendered now", number)
        return False
    return True


def _unrendered(limit: int, skip: Iterable[int] = ()) -> Any:
    missing = [
        ~exists().where(InvoiceDocument.invoice_id == Invoice.id, InvoiceDocument.kind == kind)
        for kind in DOCUMENT_KINDS
    ]
    query = select(Invoice.id).where(Invoice.number.is_not(None), or_(*missing))
    skip = list(skip)
    if skip:
        query = query.where(Invoice.id.not_in(skip))
    return query.order_by(Invoice.id).limit(limit)


def render_missing(context: Any) -> dict[str, Any]:
    """The scheduled job: render the documents of issued invoices that have none
    (a bounded batch; idempotent). An invoice that fails is logged, reported
    and set aside for ``RETRY_FAILED_AFTER``: the next runs take the others."""
    runtime, now = context.runtime, context.now
    for invoice_id, until in list(_set_aside.items()):
        if until <= now:
            del _set_aside[invoice_id]
    with unit_of_work(runtime.sessionmaker) as session:
        pending = list(session.execute(_unrendered(RENDER_BATCH, _set_aside)).scalars())
    rendered, failed = [], []
    for invoice_id in pending:
        try:
            ensure_documents(runtime.sessionmaker, invoice_id)
        except Exception:  # one bad invoice must not keep the others from their documents
            log.exception("documents of invoice %s could not be rendered; tried again after %s",
                          invoice_id, RETRY_FAILED_AFTER)
            failed.append(invoice_id)
            _set_aside[invoice_id] = now + RETRY_FAILED_AFTER
        else:
            rendered.append(invoice_id)
    while len(_set_aside) > MAX_SET_ASIDE:
        del _set_aside[min(_set_aside, key=_set_aside.__getitem__)]
    return {"rendered": len(rendered), "failed": failed, "set_aside": len(_set_aside)}


documents_job = JobSpec(
    name="documents.render",
    interval=timedelta(minutes=1),
    run=render_missing,
    description=f"Render and store the documents of issued invoices that have none ({RENDER_BATCH} a run)",
)
