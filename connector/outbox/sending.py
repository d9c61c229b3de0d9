"""Sending issued invoices to their clients: one e-mail per invoice, to the
client's billing addresses, with the stored Factur-X PDF attached, through the
outbox.

The message's idempotency key is ``invoice:<id>:send`` (unique), so an invoice
is queued for sending once, whoever asks and however often: the API, ``jalon
invoices send`` run again after an interruption, two operators at once. The
dispatcher attaches the PDF just before the send (rendering it first if it is
not stored yet); the SMTP ``Message-ID`` derived from the key is recorded as
the message's ``external_id``: the invoice's sending record.

Texts are in the client's language (French unless the client's is English):
the number, the amount due, the due date and the seller's bank details.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from html import escape
from typing import Any

from babel.dates import format_date
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from jalon.core import audit
from jalon.core.catalog import LOCALES
from jalon.core.db import unit_of_work
from jalon.core.errors import Conflict, Invalid, NotFound
from jalon.core.models import Invoice, OutboxMessage

from jalon.connector.outbox.enqueue import enqueue

SEND_KIND = "invoice.sent"

TEXTS = {
    "fr": {
        "invoice": ("Facture {number} — {seller}",
                    "Veuillez trouver ci-joint notre facture {number} du {issue_date}, d'un montant de "
                    "{gross} TTC."),
        "credit_note": ("Avoir {number} — {seller}",
                        "Veuillez trouver ci-joint notre avoir {number} du {issue_date}, d'un montant de "
                        "{gross} TTC{corrects}. Il vient en déduction de ce que vous nous devez : "
                        "il n'y a rien à payer."),
        "corrects": ", qui corrige la facture {number}",
        "greeting": "Bonjour,",
        "due": "Montant à payer : {due}, au plus tard le {due_date}.",
        "bank": "Par virement sur le compte {holder} :",
        "reference": "Référence à indiquer : {number}",
        "closing": "Cordialement,",
    },
    "en": {
        "invoice": ("Invoice {number} — {seller}",
                    "Please find attached our invoice {number} of {issue_date}, for {gross} incl. VAT."),
        "credit_note": ("Credit note {number} — {seller}",
                        "Please find attached our credit note {number} of {issue_date}, for {gross} incl. "
                        "VAT{corrects}. It is deducted from what you owe us: there is nothing to pay."),
        "corrects": ", which corrects invoice {number}",
        "greeting": "Hello,",
        "due": "Amount due: {due}, by {due_date}.",
        "bank": "By bank transfer to {holder}:",
        "reference": "Reference to quote: {number}",
        "closing": "Kind regards,",
    },
}


def send_key(invoice_id: int) -> str:
    return f"invoice:{invoice_id}:send"


def language_of(invoice: Invoice) -> str:
    language = (invoice.buyer or {}).get("language") or invoice.client.language
    return language if language in TEXTS else "fr"


def compose(invoice: Invoice) -> dict[str, Any]:
    """The e-mail for the client: subject, text, HTML, and the PDF to attach."""
    language = language_of(invoice)
    texts, locale = TEXTS[language], LOCALES[language]
    seller = invoice.seller or {}

    def when(day: date | None) -> str:
        return format_date(day, format="long", locale=locale) if day else "—"

    values = {
        "number": invoice.number,
        "seller": seller.get("name") or invoice.entity.name,
        "issue_date": when(invoice.issue_date),
        "gross": invoice.money(invoice.total_gross).quantize().format(locale),
        "due": invoice.amount_due.quantize().format(locale),
        "due_date": when(invoice.due_date),
        "holder": seller.get("name") or "",
        "corrects": "",
    }
    if invoice.kind == "credit_note" and invoice.corrects is not None:
        values["corrects"] = texts["corrects"].format(number=invoice.corrects.number)
    subject, intro = (template.format(**values) for template in texts[invoice.kind])
    paragraphs: list[list[str]] = [[texts["greeting"]], [intro]]
    if invoice.kind == "invoice":
        paragraphs.append([texts["due"].format(**values)])
        if seller.get("iban"):
            bank = [texts["bank"].format(**values), f"IBAN : {seller['iban']}" if language == "fr"
                    else f"IBAN: {seller['iban']}"]
            if seller.get("bic"):
                bank.append(f"BIC : {seller['bic']}" if language == "fr" else f"BIC: {seller['bic']}")
            bank.append(texts["reference"].format(**values))
            paragraphs.append(bank)
    paragraphs.append([texts["closing"], values["seller"]])
    text = "\n\n".join("\n".join(lines) for lines in paragraphs) + "\n"
    html = "".join("<p>" + "<br>".join(escape(line) for line in lines) + "</p>" for lines in paragraphs)
    return {
        "subject": subject,
        "text": text,
        "html": html,
        "language": language,
        "attachments": [{"invoice_id": invoice.id, "kind": "pdf"}],
        "data": {"invoice_id": invoice.id, "number": invoice.number, "kind": invoice.kind,
                 "currency": invoice.currency, "amount_due": format(invoice.amount_due.quantize().amount, "f"),
                 "due_date": invoice.due_date.isoformat() if invoice.due_date else None},
    }


def check_sendable(invoice: Invoice) -> None:
    if invoice.number is None:
        raise Conflict(f"invoice {invoice.id} is {invoice.status}: only an issued invoice is sent",
                       code="invoice_not_issued")
    if not invoice.client.billing_emails:
        raise Conflict(f"client {invoice.client.code} has no billing e-mail address: add one to send "
                       f"invoice {invoice.number}", code="client_has_no_billing_email")


_SEND_MESSAGE = select(OutboxMessage).where(OutboxMessage.idempotency_key == bindparam("key"))


def send_message(session: Session, invoice_id: int) -> OutboxMessage | None:
    """The message that sends (or sent) the invoice, if it was ever queued."""
    return session.execute(_SEND_MESSAGE, {"key": send_key(invoice_id)}).scalar_one_or_none()


def queue(session: Session, invoice: Invoice, *, actor: str) -> tuple[OutboxMessage, bool]:
    """Queue the invoice's e-mail in the caller's transaction; (message, True)
    when newly queued, (the existing message, False) when it already was."""
    check_sendable(invoice)
    existing = send_message(session, invoice.id)
    if existing is not None:
        return existing, False
    seller_email = (invoice.seller or {}).get("email")
    message = enqueue(
        session,
        channel="email",
        kind=SEND_KIND,
        idempotency_key=send_key(invoice.id),
        destination={"to": list(invoice.client.billing_emails), **({"reply_to": seller_email} if seller_email else {})},
        payload=lambda: compose(invoice),
        invoice_id=invoice.id,
    )
    audit.record(session, actor=actor, action=f"{invoice.kind}.send_queued", subject=invoice,
                 details={"to": list(invoice.client.billing_emails)})
    return message, True


def sending_status(session: Session, invoice: Invoice) -> dict[str, Any] | None:
    """Where the invoice's e-mail to the client stands (None for a draft)."""
    if invoice.number is None:
        return None
    message = send_message(session, invoice.id)
    if message is None:
        return {"status": "not_sent", "to": list(invoice.client.billing_emails), "queued_at": None,
                "sent_at": None, "message_id": None, "attempts": 0, "last_error": None, "outbox_id": None}
    return {
        "status": message.status,
        "to": list((message.destination or {}).get("to") or []),
        "queued_at": message.created_at,
        "sent_at": message.sent_at,
        "message_id": message.external_id,
        "attempts": message.attempts,
        "last_error": message.last_error,
        "outbox_id": message.id,
    }


# --- choosing what to send ----------------------------------------------------------------

def issued_invoices(session: Session) -> list[Invoice]:
    """Every invoice and credit note that has a number, oldest first."""
    return list(session.execute(select(Invoice).where(Invoice.number.is_not(None)).order_by(Invoice.id)).scalars())


def by_numbers(session: Session, numbers: Iterable[str]) -> list[Invoice]:
    """The invoices these numbers name, in the order given; an unknown or
    ambiguous number refuses them all."""
    found = []
    for number in dict.fromkeys(numbers):  # a number given twice is sent once
        matches = list(session.execute(select(Invoice).where(Invoice.number == number)).scalars())
        if not matches:
            raise NotFound(f"no invoice numbered {number}", code="invoice_not_found")
        if len(matches) > 1:
            raise Invalid(f"{len(matches)} entities have an invoice numbered {number}: name it by id "
                          f"({', '.join(str(match.id) for match in matches)}: --id on the command line, "
                          "invoice_ids in the API)",
                          code="invoice_number_ambiguous")
        found.append(matches[0])
    return found


def by_ids(session: Session, ids: Iterable[int]) -> list[Invoice]:
    found = []
    for invoice_id in dict.fromkeys(ids):
        invoice = session.get(Invoice, invoice_id)
        if invoice is None:
            raise NotFound(f"no invoice {invoice_id}", code="invoice_not_found")
        found.append(invoice)
    return found


@dataclass
class Plan:
    """What sending a set of invoices comes to, before anything is written."""

    to_queue: list[Invoice] = field(default_factory=list)
    # invoices whose message exists, by its status: pending/sending (to drive), sent, failed
    queued: dict[str, list[tuple[Invoice, OutboxMessage]]] = field(default_factory=dict)
    no_email: list[Invoice] = field(default_factory=list)

    def with_status(self, *statuses: str) -> list[tuple[Invoice, OutboxMessage]]:
        return [pair for status in statuses for pair in self.queued.get(status, [])]


def plan(session: Session, invoices: Sequence[Invoice], *, strict: bool) -> Plan:
    """Sort the invoices. ``strict`` (invoices named one by one): a draft or a
    client without e-mail refuses them all; otherwise (every issued invoice)
    those without e-mail are skipped."""
    result = Plan()
    for invoice in invoices:
        message = send_message(session, invoice.id) if invoice.number is not None else None
        if message is not None:
            result.queued.setdefault(message.status, []).append((invoice, message))
            continue
        try:
            check_sendable(invoice)
        except Conflict as error:
            if strict or error.code != "client_has_no_billing_email":
                raise
            result.no_email.append(invoice)
            continue
        result.to_queue.append(invoice)
    return result


def queue_each(factory: sessionmaker[Session], invoice_ids: Iterable[int], *, actor: str) -> list[int]:
    """Queue each invoice in a short transaction of its own (a long run that
    stops keeps what it queued); returns the ids of their messages, new or
    queued meanwhile by someone else."""
    message_ids = []
    for invoice_id in invoice_ids:
        try:
            with unit_of_work(factory) as session:
                invoice = session.get(Invoice, invoice_id)
                if invoice is None:
                    raise NotFound(f"no invoice {invoice_id}", code="invoice_not_found")
                message, _ = queue(session, invoice, actor=actor)
                session.flush()
                message_ids.append(message.id)
        except IntegrityError:  # queued by another process between our look and our insert
            with unit_of_work(factory) as session:
                message = send_message(session, invoice_id)
                assert message is not None
                message_ids.append(message.id)
    return message_ids
