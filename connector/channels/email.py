"""E-mail channel: SMTP with smtplib.

Settings: ``smtp_host``, ``smtp_port``, ``smtp_username``, ``smtp_password``,
``smtp_starttls``, ``smtp_timeout_seconds``, ``mail_from`` (``JALON_SMTP_*``,
``JALON_MAIL_FROM``). The ``Message-ID`` is derived from the outbox message's
idempotency key, so a resend after a lost answer is recognisably the same
mail; it is recorded as the message's ``external_id``.

The message's ``attachments`` (an invoice's PDF, loaded by the dispatcher)
are attached as files. A destination may name a ``reply_to`` address (the
issuing entity's, on an invoice sent to a client).

A 4xx SMTP reply or a connection failure -> retry later; a 5xx reply -> give up.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from marshmallow import Schema, fields, validate

from jalon.core.catalog import LANGUAGES

from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.types import ChannelSpec, OutboxView, PermanentFailure, RetryLater, SendResult

NAME = "email"


class EmailTarget(Schema):
    to = fields.List(fields.Email(), required=True, validate=validate.Length(min=1, max=50),
                     metadata={"description": "Recipients, e.g. finance@example.com"})
    cc = fields.List(fields.Email(), validate=validate.Length(max=50))
    language = fields.String(validate=validate.OneOf(LANGUAGES), metadata={"description": "fr (default) or en"})


def message_id(idempotency_key: str, mail_from: str) -> str:
    domain = mail_from.rpartition("@")[2].strip("> ") or "jalon.invalid"
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}@{domain}>"


def build(message: OutboxView, settings: Mapping[str, Any]) -> EmailMessage:
    payload = message.payload
    mail = EmailMessage()
    mail["Subject"] = str(payload.get("subject") or message.kind)
    mail["From"] = settings.get("mail_from") or "jalon@localhost"
    recipients = list(message.destination.get("to") or [])
    if not recipients:
        raise PermanentFailure("the e-mail channel has no recipient")
    mail["To"] = ", ".join(recipients)
    if message.destination.get("cc"):
        mail["Cc"] = ", ".join(message.destination["cc"])
    if message.destination.get("reply_to"):
        mail["Reply-To"] = str(message.destination["reply_to"])
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id(message.idempotency_key, str(mail["From"]))
    mail["Auto-Submitted"] = "auto-generated"
    mail.set_content(str(payload.get("text") or ""), charset="utf-8")
    if payload.get("html"):
        mail.add_alternative(str(payload["html"]), subtype="html", charset="utf-8")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        mail.add_attachment(attachment.content, maintype=maintype, subtype=subtype or "octet-stream",
                            filename=attachment.filename)
    return mail


def _reply_error(code: int, what: str) -> Exception:
    if 400 <= code < 500:
        return RetryLater(f"SMTP {code}: {what}")
    return PermanentFailure(f"SMTP {code}: {what}")


def send(mail: EmailMessage, settings: Mapping[str, Any]) -> None:
    host, port = settings.get("smtp_host") or "127.0.0.1", int(settings.get("smtp_port") or 25)
    timeout = float(settings.get("smtp_timeout_seconds") or 10.0)
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            if settings.get("smtp_starttls"):
                smtp.starttls(context=ssl.create_default_context())
            if settings.get("smtp_username"):
                smtp.login(settings["smtp_username"], settings.get("smtp_password") or "")
            refused = smtp.send_message(mail)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        if codes and all(400 <= code < 500 for code in codes):
            raise RetryLater(f"SMTP {codes[0]}: every recipient deferred") from None
        raise PermanentFailure(f"SMTP {max(codes or [550])}: recipients refused") from None
    except smtplib.SMTPResponseException as error:
        detail = error.smtp_error.decode("utf-8", "replace") if isinstance(error.smtp_error, bytes) else str(error.smtp_error)
        raise _reply_error(error.smtp_code, detail[:200]) from None
    except (smtplib.SMTPException, OSError) as error:
        raise RetryLater(f"SMTP {host}:{port} unreachable ({type(error).__name__})") from None
    if refused:
        # some recipients accepted: the mail exists, the refusals are only logged by the caller
        return


@hookimpl
def jalon_channel_register() -> ChannelSpec:
    return ChannelSpec(name=NAME, title="E-mail (SMTP)", target_schema=EmailTarget)


@hookimpl
def jalon_channel_send(channel: str, message: OutboxView, settings: Mapping[str, Any]) -> SendResult | None:
    if channel != NAME:
        return None
    mail = build(message, settings)
    send(mail, settings)
    return SendResult(external_id=str(mail["Message-ID"]))
