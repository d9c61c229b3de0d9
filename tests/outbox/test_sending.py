"""Invoices sent to their clients through a real SMTP server (aiosmtpd): one
e-mail per invoice, its stored Factur-X PDF attached."""

from __future__ import annotations

import email
from dataclasses import replace
from email import policy

import pytest
from sqlalchemy import select

from jalon.connector.outbox import sending
from jalon.connector.app import create_app
from jalon.connector.channels.email import message_id
from jalon.connector.outbox.dispatcher import dispatch_once
from jalon.core import catalog, tokens
from jalon.core.models import Invoice, InvoiceDocument
from tests import factories

from .conftest import free_port, outbox


def issue_and_queue(uow, count: int = 1) -> list[int]:  # type: ignore[no-untyped-def]
    ids = []
    with uow() as session:
        for _ in range(count):
            invoice = factories.issued(session)
            sending.queue(session, invoice, actor="test")
            ids.append(invoice.id)
    return ids


def stored_pdf(uow, invoice_id: int) -> InvoiceDocument | None:  # type: ignore[no-untyped-def]
    with uow() as session:
        return session.execute(select(InvoiceDocument).where(
            InvoiceDocument.invoice_id == invoice_id, InvoiceDocument.kind == "pdf")).scalar_one_or_none()


@pytest.fixture
def mail_runtime(runtime, smtp, world):  # type: ignore[no-untyped-def]
    runtime.settings = replace(runtime.settings, smtp_port=smtp[1])
    return runtime


def parsed(envelope):  # type: ignore[no-untyped-def]
    return email.message_from_bytes(envelope.original_content, policy=policy.default)


def test_each_invoice_goes_once_to_the_client_with_its_stored_pdf_attached(mail_runtime, smtp, uow):
    mailbox, _ = smtp
    ids = issue_and_queue(uow, 3)
    dispatch_once(mail_runtime, owner="test")
    dispatch_once(mail_runtime, owner="test")  # nothing left: nothing sent twice
    assert len(mailbox.messages) == 3
    by_id = {}
    for envelope in mailbox.messages:
        assert envelope.rcpt_tos == ["compta@lumiere.example"]
        mail = parsed(envelope)
        by_id[mail["Message-ID"]] = mail
    for invoice_id, message in zip(ids, outbox(uow, kind="invoice.sent")):
        assert message.status == "sent" and message.invoice_id == invoice_id
        assert message.external_id == message_id(f"invoice:{invoice_id}:send", "jalon@atelier.example")
        mail = by_id[message.external_id]
        with uow() as session:
            number = session.get(Invoice, invoice_id).number
        assert mail["Subject"] == f"Facture {number} — Atelier Numérique SAS"
        [attachment] = list(mail.iter_attachments())
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_filename() == f"{number}.pdf"
        assert attachment.get_content() == stored_pdf(uow, invoice_id).content
        assert number in mail.get_body(("plain",)).get_content()


def test_the_dispatcher_renders_a_missing_pdf_once_before_sending(mail_runtime, smtp, uow):
    [invoice_id] = issue_and_queue(uow)
    assert stored_pdf(uow, invoice_id) is None
    dispatch_once(mail_runtime, owner="test")
    [attachment] = list(parsed(smtp[0].messages[0]).iter_attachments())
    assert attachment.get_content() == stored_pdf(uow, invoice_id).content


def test_the_seller_address_is_where_the_client_replies(mail_runtime, smtp, uow):
    with uow() as session:
        catalog.upsert_entity(session, {**factories.ENTITY, "email": "facturation@atelier.example"}, actor="test")
    issue_and_queue(uow)
    dispatch_once(mail_runtime, owner="test")
    assert parsed(smtp[0].messages[0])["Reply-To"] == "facturation@atelier.example"


def test_an_attachment_of_an_unknown_invoice_fails_the_message(mail_runtime, smtp, uow):
    from jalon.connector.outbox.enqueue import enqueue

    with uow() as session:
        enqueue(session, channel="email", kind="invoice.sent", idempotency_key="broken", destination={
            "to": ["compta@lumiere.example"]}, payload={"subject": "x", "text": "x",
                                                        "attachments": [{"invoice_id": 999, "kind": "pdf"}]})
    dispatch_once(mail_runtime, owner="test")
    [message] = outbox(uow, kind="invoice.sent")
    assert message.status == "failed" and "attachment of invoice 999" in message.last_error
    assert smtp[0].messages == []


def _api(runtime, uow):  # type: ignore[no-untyped-def]
    app = create_app(str(runtime.engine.url.render_as_string(hide_password=False)), TESTING=True)
    with uow() as session:
        _, plain = tokens.create_token(session, name="compta", scope="finance", actor="test")
    return app, {"Authorization": f"Bearer {plain}"}


def test_a_5xx_reply_fails_the_sending_and_the_api_shows_it(mail_runtime, smtp, uow):
    mailbox, _ = smtp
    mailbox.reply = "554 5.7.1 Message rejected"
    [invoice_id] = issue_and_queue(uow)
    dispatch_once(mail_runtime, owner="test")
    app, headers = _api(mail_runtime, uow)
    try:
        detail = app.test_client().get(f"/api/v1/invoices/{invoice_id}", headers=headers).json
    finally:
        app.extensions["jalon"].dispose()
    assert detail["sending"]["status"] == "failed" and "SMTP 554" in detail["sending"]["last_error"]
    assert detail["sending"]["message_id"] is None and mailbox.messages == []


def test_an_unreachable_smtp_server_leaves_the_sending_pending_for_a_later_try(runtime, world, uow):
    runtime.settings = replace(runtime.settings, smtp_port=free_port())  # nothing listens there
    [invoice_id] = issue_and_queue(uow)
    dispatch_once(runtime, owner="test")
    [message] = outbox(uow, kind="invoice.sent")
    assert message.status == "pending" and message.attempts == 1 and "unreachable" in message.last_error
    assert message.next_attempt_at > message.created_at


def test_a_sent_invoice_shows_its_message_id_and_when_it_left(mail_runtime, smtp, uow):
    [invoice_id] = issue_and_queue(uow)
    dispatch_once(mail_runtime, owner="test")
    app, headers = _api(mail_runtime, uow)
    try:
        sending_ = app.test_client().get(f"/api/v1/invoices/{invoice_id}", headers=headers).json["sending"]
    finally:
        app.extensions["jalon"].dispose()
    assert sending_["status"] == "sent" and sending_["sent_at"]
    assert sending_["message_id"] == parsed(smtp[0].messages[0])["Message-ID"]
