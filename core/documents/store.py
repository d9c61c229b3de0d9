"""Storing an invoice's documents once.

Rendering happens after the issuing transaction has committed, in a short
transaction of its own: the numbering lock is never held while WeasyPrint
works. Two processes may then render the same invoice at once (the sender and
a download, say); the unique (invoice, kind) key lets one insert win, and the
other absorbs the conflict inside a SAVEPOINT and returns the winner's rows.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker

from .. import guards as _guards  # noqa: F401  (the append-only guard covers the documents)
from ..db import unit_of_work
from ..errors import NotFound
from ..models import DOCUMENT_KINDS, Invoice, InvoiceDocument
from .rendering import render
from .view import require_issued

MEDIA_TYPES = {"pdf": "application/pdf", "xml": "application/xml"}


def stored(session: Session, invoice_id: int, kind: str) -> InvoiceDocument | None:
    return session.execute(
        select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice_id, InvoiceDocument.kind == kind)
    ).scalar_one_or_none()


def _all_stored(session: Session, invoice_id: int) -> dict[str, InvoiceDocument]:
    rows = session.execute(select(InvoiceDocument).where(InvoiceDocument.invoice_id == invoice_id)).scalars()
    return {row.kind: row for row in rows}


def safe_file_name(name: str) -> str:
    """``name`` fit for a file and for a quoted header value: a prefix may hold
    a '/' ("F/2026-00001"), which would read as a folder."""
    return re.sub(r'[\\/"]', "-", name)


def document(invoice: Invoice, kind: str, content: bytes) -> InvoiceDocument:
    return InvoiceDocument(
        invoice_id=invoice.id,
        kind=kind,
        filename=safe_file_name(f"{invoice.number}.{kind}"),
        media_type=MEDIA_TYPES[kind],
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
    )


def ensure(session: Session, invoice: Invoice) -> dict[str, InvoiceDocument]:
    """The stored {"pdf": ..., "xml": ...} of an issued invoice, rendered and
    inserted when absent. Stored once: never re-rendered, never replaced.
    Does not commit.

    On SQLite the caller's transaction holds the database's write lock from
    its first statement: rendering inside it makes every other writer wait
    for the render. :func:`ensure_committed` renders between two short
    transactions instead."""
    found = _all_stored(session, invoice.id)
    if set(found) == set(DOCUMENT_KINDS):
        return found
    require_issued(invoice)
    return _insert(session, invoice, render(invoice), found)


def ensure_committed(factory: sessionmaker[Session], invoice_id: int) -> dict[str, InvoiceDocument]:
    """:func:`ensure` for a caller outside any transaction: the invoice is read
    in one short transaction, rendered with none open (no lock held, whatever
    the engine), and its documents stored in a second one, committed. Returns
    the stored rows (detached: read their columns, not their relationships)."""
    with unit_of_work(factory) as session:
        found = _all_stored(session, invoice_id)
        if set(found) == set(DOCUMENT_KINDS):
            return found
        invoice = session.execute(
            select(Invoice)
            .where(Invoice.id == invoice_id)
            .options(selectinload(Invoice.lines), joinedload(Invoice.corrects))
        ).scalar_one_or_none()
        if invoice is None:
            raise NotFound(f"no invoice {invoice_id}", code="invoice_not_found")
        require_issued(invoice)
    rendered = render(invoice)
    with unit_of_work(factory) as session:
        return _insert(session, session.get(Invoice, invoice_id), rendered, _all_stored(session, invoice_id))


def _insert(session: Session, invoice: Invoice, rendered, found: dict[str, InvoiceDocument]):  # type: ignore[no-untyped-def]
    """Insert the kinds not stored yet, in a SAVEPOINT: a concurrent insert of
    the same (invoice, kind) makes this one fail on the unique key, and the
    winner's rows are returned instead."""
    contents = {"pdf": rendered.pdf, "xml": rendered.xml}
    try:
        with session.begin_nested():
            for kind in DOCUMENT_KINDS:
                if kind not in found:
                    session.add(document(invoice, kind, contents[kind]))
    except IntegrityError:
        pass  # another transaction stored them first: theirs are the documents
    return _all_stored(session, invoice.id)
