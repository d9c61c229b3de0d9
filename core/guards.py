"""The append-only guard: issued invoices, their lines, recorded payments, the
audit trail and the stored invoice documents cannot be changed or deleted through the ORM.

Installed on every :class:`~sqlalchemy.orm.Session` when this module is imported
(``jalon.core.models`` users get it through :mod:`jalon.core`'s services).
"""

from __future__ import annotations

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from .errors import ImmutableRecord
from .models import (
    MUTABLE_AFTER_ISSUE,
    AuditRecord,
    Invoice,
    InvoiceDocument,
    InvoiceLine,
    Payment,
    PaymentAllocation,
)


# records that are written once and never changed: corrections are new rows
APPEND_ONLY = (Payment, PaymentAllocation, AuditRecord, InvoiceDocument)


def _was_issued(invoice: Invoice) -> bool:
    """True when the invoice, as stored in the database, is no longer a draft."""
    state = inspect(invoice)
    if not state.persistent:
        return False
    history = state.attrs.status.history
    committed = history.deleted[0] if history.deleted else invoice.status
    return committed != "draft"


def _issued_invoice_of(session: Session, line: InvoiceLine) -> Invoice | None:
    """The issued invoice a line belongs to, now or as stored: a line moved away
    from an issued invoice, or added to one by its id alone, touches it."""
    invoices = [line.invoice, *inspect(line).attrs.invoice.history.deleted]
    if line.invoice is None and line.invoice_id is not None:
        invoices.append(session.get(Invoice, line.invoice_id))
    return next((i for i in invoices if i is not None and _was_issued(i)), None)


def check_session(session: Session) -> None:
    for obj in session.new:
        if isinstance(obj, InvoiceLine) and (issued := _issued_invoice_of(session, obj)) is not None:
            raise ImmutableRecord(f"invoice {issued.number} is issued: no line can be added to it",
                                  code="invoice_issued")
    for obj in session.dirty:
        # a line removed from an issued invoice's collection would be deleted as an
        # orphan during the flush, after this check: refuse the collection change
        if isinstance(obj, Invoice) and _was_issued(obj) and inspect(obj).attrs.lines.history.has_changes():
            raise ImmutableRecord(
                f"invoice {obj.number} is issued: its lines cannot be changed", code="invoice_issued"
            )
        if not session.is_modified(obj, include_collections=False):
            continue
        if isinstance(obj, Invoice) and _was_issued(obj):
            changed = {
                attr.key
                for attr in inspect(obj).attrs
                if attr.key in obj.__table__.columns and attr.history.has_changes()
            }
            forbidden = changed - MUTABLE_AFTER_ISSUE
            if forbidden:
                raise ImmutableRecord(
                    f"invoice {obj.number} is issued and cannot be changed ({', '.join(sorted(forbidden))}); "
                    "issue a credit note to correct it",
                    code="invoice_issued",
                )
        elif isinstance(obj, InvoiceLine) and (issued := _issued_invoice_of(session, obj)) is not None:
            raise ImmutableRecord(
                f"invoice {issued.number} is issued: its lines cannot be changed",
                code="invoice_issued",
            )
        elif isinstance(obj, APPEND_ONLY):
            raise ImmutableRecord(
                f"a recorded {obj.__tablename__[:-1].replace('_', ' ')} cannot be changed",
                code="record_append_only",
            )
    for obj in session.deleted:
        if isinstance(obj, Invoice) and (_was_issued(obj) or obj.number is not None):
            raise ImmutableRecord(f"invoice {obj.number} is issued and cannot be deleted", code="invoice_issued")
        if isinstance(obj, InvoiceLine) and (issued := _issued_invoice_of(session, obj)) is not None:
            raise ImmutableRecord(
                f"invoice {issued.number} is issued: its lines cannot be deleted", code="invoice_issued"
            )
        if isinstance(obj, APPEND_ONLY):
            raise ImmutableRecord(
                f"a recorded {obj.__tablename__[:-1].replace('_', ' ')} cannot be deleted",
                code="record_append_only",
            )


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context, _instances) -> None:  # type: ignore[no-untyped-def]
    check_session(session)
