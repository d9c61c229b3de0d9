"""Approving a draft: finance's decision that it may be issued.

Two ways in: an authenticated call (the API), or a one-click link sent in
finance's notification. A link is a capability: a random 256-bit token, of
which only the SHA-256 digest is stored (as for API tokens); it is valid
until it expires and usable once. Consuming it locks its row, so two clicks
at once issue one invoice and the second is told the link was used.

Approving records who approved (``invoice.approved``), then issues the
invoice in the same transaction. Rendering its documents is the caller's
next, separate step: never inside the transaction that holds the numbering
lock.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, invoicing
from .errors import Conflict, NotFound
from .models import ApprovalLink, Invoice
from .tokens import digest
from .types import utcnow

# the codes a link's holder may meet; the connector answers them as pages
LINK_UNKNOWN = "approval_link_unknown"
LINK_USED = "approval_link_used"
LINK_EXPIRED = "approval_link_expired"


def approve(
    session: Session,
    invoice_id: int,
    *,
    actor: str,
    issue_date: date | None = None,
    reason: str | None = None,
) -> Invoice:
    """Record that ``actor`` approved the draft, and issue it. Issuing refuses
    what is not a draft (``invoice_not_draft``); the caller's transaction then
    rolls the approval record back with it."""
    invoice = invoicing.get_invoice(session, invoice_id, lock=True)
    audit.record(session, actor=actor, action="invoice.approved", subject=invoice, reason=reason,
                 details={"total_gross": invoice.money(invoice.total_gross)})
    return invoicing.issue(session, invoice_id, actor=actor, issue_date=issue_date, reason=reason)


def create_link(
    session: Session, invoice: Invoice, *, valid_for: timedelta, now: datetime | None = None
) -> tuple[ApprovalLink, str]:
    """A new link for the draft; the token is returned once and never stored."""
    if not invoice.is_draft:
        raise Conflict(f"invoice {invoice.number or invoice.id} is {invoice.status}: only a draft is approved",
                       code="invoice_not_draft")
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    link = ApprovalLink(invoice=invoice, digest=digest(token), created_at=now, expires_at=now + valid_for)
    session.add(link)
    return link, token


def find_link(session: Session, token: str, *, lock: bool = False) -> ApprovalLink | None:
    """The link ``token`` opens, or None; with ``lock``, its row is locked for the transaction."""
    wanted = digest(token)
    query = select(ApprovalLink).where(ApprovalLink.digest == wanted)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    link = session.execute(query).scalar_one_or_none()
    # the lookup is by digest; compare again in constant time for good measure
    if link is None or not hmac.compare_digest(link.digest, wanted):
        return None
    return link


def check_link(link: ApprovalLink | None, now: datetime | None = None) -> ApprovalLink:
    """The link if it may still be used; otherwise the error its holder should see."""
    if link is None:
        raise NotFound("this approval link is unknown", code=LINK_UNKNOWN)
    if link.used_at is not None:
        raise Conflict(f"this approval link was already used ({link.used_at:%Y-%m-%d %H:%M} UTC)", code=LINK_USED)
    if (now or utcnow()) >= link.expires_at:
        raise Conflict(f"this approval link expired on {link.expires_at:%Y-%m-%d %H:%M} UTC", code=LINK_EXPIRED)
    return link


def consume(session: Session, token: str, *, now: datetime | None = None) -> tuple[ApprovalLink, Invoice]:
    """Use the link once: approve and issue its draft, and mark the link used,
    in the caller's transaction."""
    now = now or utcnow()
    link = check_link(find_link(session, token, lock=True), now)
    actor = f"approval-link:{link.id}"
    invoice = approve(session, link.invoice_id, actor=actor, reason="approved with the one-click link")
    link.used_at = now
    link.used_by = actor
    return link, invoice
