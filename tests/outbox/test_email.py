"""The e-mail channel against a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import email
import json
import re
from dataclasses import replace
from datetime import timedelta
from email import policy

import pytest

from jalon.connector.channels.email import message_id
from jalon.connector.outbox.dispatcher import dispatch_once
from jalon.core.types import utcnow

from .conftest import EMAIL, add_channel, complete_milestone, outbox


@pytest.fixture
def mail_runtime(runtime, smtp, world, uow):  # type: ignore[no-untyped-def]
    _, port = smtp
    runtime.settings = replace(runtime.settings, smtp_port=port)
    add_channel(uow, **EMAIL)
    complete_milestone(uow, runtime.settings)
    return runtime


def _parsed(envelope):  # type: ignore[no-untyped-def]
    return email.message_from_bytes(envelope.original_content, policy=policy.default)


def test_finance_receives_the_milestone_mail_with_amount_client_project_task_and_approve_link(
        mail_runtime, smtp, uow) -> None:  # type: ignore[no-untyped-def]
    mailbox, _ = smtp
    dispatch_once(mail_runtime, owner="test")
    [envelope] = mailbox.messages
    assert envelope.rcpt_tos == ["finance@atelier.example"]
    mail = _parsed(envelope)
    assert mail["Subject"] == "Jalon terminé : Refonte du site — Maquettes validées (7\u202f200,00\u00a0€ HT)"
    assert mail["From"] == "jalon@atelier.example"
    text = mail.get_body(("plain",)).get_content()
    assert "7\u202f200,00\u00a0€ HT" in text and "8\u202f640,00\u00a0€ TTC" in text
    assert "Lumière Industries SA" in text
    assert "LUM-2026-01 — Refonte du site" in text
    assert "Projet : WEB" in text
    assert "https://jira.atelier.test/browse/WEB-1" in text
    link = re.search(r"Approuver : (https://jalon\.atelier\.example/approve/([A-Za-z0-9_-]{43}))\r?\n", text)
    assert link is not None
    html = mail.get_body(("html",)).get_content()
    assert "<a href=\"https://jira.atelier.test/browse/WEB-1\">" in html
    assert f"<a href=\"{link.group(1)}\">" in html
    # the link was made as the message was sent: the outbox row never held it
    [message] = outbox(uow, channel="email")
    assert link.group(2) not in json.dumps(message.payload) and message.payload["approval"]


def test_the_message_id_comes_from_the_idempotency_key_and_is_recorded(mail_runtime, smtp, uow) -> None:  # type: ignore[no-untyped-def]
    mailbox, _ = smtp
    dispatch_once(mail_runtime, owner="test")
    [message] = outbox(uow, channel="email")
    expected = message_id(message.idempotency_key, "jalon@atelier.example")
    assert _parsed(mailbox.messages[0])["Message-ID"] == expected
    assert message.status == "sent" and message.external_id == expected and message.sent_at is not None
    assert expected.endswith("@atelier.example>")


def test_a_451_reply_is_retried_later(mail_runtime, smtp, uow) -> None:  # type: ignore[no-untyped-def]
    mailbox, _ = smtp
    mailbox.reply = "451 4.3.0 Mailbox busy, try later"
    before = utcnow()
    dispatch_once(mail_runtime, owner="test")
    [message] = outbox(uow, channel="email")
    assert message.status == "pending" and message.attempts == 1
    assert "SMTP 451" in message.last_error
    assert message.next_attempt_at >= before + timedelta(seconds=2)
    # the server recovers: the next pass, once due, sends it
    mailbox.reply = "250 OK"
    with uow() as session:
        session.get(type(message), message.id).next_attempt_at = utcnow()
    dispatch_once(mail_runtime, owner="test")
    [message] = outbox(uow, channel="email")
    assert message.status == "sent" and message.attempts == 2 and len(mailbox.messages) == 1


def test_a_550_reply_fails_the_message(mail_runtime, smtp, uow) -> None:  # type: ignore[no-untyped-def]
    mailbox, _ = smtp
    mailbox.reply = "550 5.1.1 No such user"
    dispatch_once(mail_runtime, owner="test")
    [message] = outbox(uow, channel="email")
    assert message.status == "failed" and "SMTP 550" in message.last_error
    assert mailbox.messages == []


def test_an_unreachable_smtp_server_is_retried_later(runtime, world, uow) -> None:  # type: ignore[no-untyped-def]
    from .conftest import free_port

    runtime.settings = replace(runtime.settings, smtp_port=free_port())  # nothing listens there
    add_channel(uow, **EMAIL)
    complete_milestone(uow, runtime.settings)
    dispatch_once(runtime, owner="test")
    [message] = outbox(uow, channel="email")
    assert message.status == "pending" and "unreachable" in message.last_error
