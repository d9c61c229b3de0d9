"""`jalon invoices send` as finance runs it: a real `jalon` process, a real SMTP
server (aiosmtpd), a real database. Each invoice leaves once, whatever the
interruptions."""

from __future__ import annotations

import asyncio
import email
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from email import policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import select

from jalon.connector.cli import main
from jalon.core import catalog
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Invoice, InvoiceDocument, OutboxMessage
from tests import factories
from tests.e2e.conftest import JALON
from tests.outbox.conftest import Mailbox, free_port

MAIL_FROM = "jalon@atelier.example"


class SlowMailbox(Mailbox):
    """A mailbox that takes ``delay`` seconds per message, and can hold the
    ``hold_at``-th message at MAIL FROM until released (a sender stuck between
    two messages)."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.started = 0
        self.hold_at: int | None = None
        self.release = threading.Event()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # type: ignore[no-untyped-def]  # noqa: N802
        self.started += 1
        if self.started == self.hold_at:
            for _ in range(600):  # bounded: 60 s
                if self.release.is_set():
                    break
                await asyncio.sleep(0.1)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def mailbox() -> Iterator[SlowMailbox]:
    box = SlowMailbox()
    box.port = free_port()  # type: ignore[attr-defined]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)  # type: ignore[attr-defined]
    controller.start()
    try:
        yield box
    finally:
        box.release.set()
        controller.stop()


@pytest.fixture
def uow(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    yield lambda: unit_of_work(make_sessionmaker(engine))
    engine.dispose()


def issue(uow, count: int, **seed: Any) -> list[int]:  # type: ignore[no-untyped-def]
    with uow() as session:
        factories.seed(session, **seed)
        return [factories.issued(session).id for _ in range(count)]


def environment(db_url: str, port: int, **extra: str) -> dict[str, str]:
    return {**os.environ, "JALON_DATABASE_URL": db_url, "JALON_SMTP_HOST": "127.0.0.1", "JALON_SMTP_PORT": str(port),
            "JALON_MAIL_FROM": MAIL_FROM, **extra}


def jalon(db_url: str, port: int, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([JALON, *args], env=environment(db_url, port, **extra), capture_output=True, text=True,
                          timeout=120)


def start(db_url: str, port: int, *args: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([JALON, *args], env=environment(db_url, port, **extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"jalon exited early ({process.returncode}): {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        time.sleep(0.02)


def received_ids(mailbox: Mailbox) -> list[str]:
    return [email.message_from_bytes(e.original_content, policy=policy.default)["Message-ID"]
            for e in mailbox.messages]


def assert_each_invoice_received_once(uow, mailbox: Mailbox, invoice_ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        messages = {m.invoice_id: m for m in session.execute(
            select(OutboxMessage).where(OutboxMessage.kind == "invoice.sent")).scalars()}
        pdfs = {d.invoice_id: d.content for d in session.execute(
            select(InvoiceDocument).where(InvoiceDocument.kind == "pdf")).scalars()}
    assert sorted(messages) == sorted(invoice_ids)
    assert all(m.status == "sent" for m in messages.values())
    received = received_ids(mailbox)
    assert sorted(received) == sorted(m.external_id for m in messages.values())  # each once, none missing
    for envelope in mailbox.messages:
        mail = email.message_from_bytes(envelope.original_content, policy=policy.default)
        [invoice_id] = [i for i, m in messages.items() if m.external_id == mail["Message-ID"]]
        [attachment] = list(mail.iter_attachments())
        assert attachment.get_content() == pdfs[invoice_id]


def test_all_issued_sends_every_invoice_once_and_a_second_run_sends_nothing(db_url, uow, mailbox):
    ids = issue(uow, 3)
    with uow() as session:
        factories.draft(session)  # never sent
    first = jalon(db_url, mailbox.port, "invoices", "send", "--all-issued")
    assert first.returncode == 0, first.stderr
    assert "sent 3, already sent 0, skipped without e-mail 0, failed 0, to retry later 0" in first.stdout
    assert "Sending invoices" in first.stderr
    again = jalon(db_url, mailbox.port, "invoices", "send", "--all-issued")
    assert again.returncode == 0, again.stderr
    assert "sent 0, already sent 3" in again.stdout
    assert_each_invoice_received_once(uow, mailbox, ids)


def test_sigint_finishes_the_message_in_flight_and_a_second_run_sends_the_rest_once(db_url, uow, mailbox):
    ids = issue(uow, 6)
    mailbox.delay = 0.3
    process = start(db_url, mailbox.port, "invoices", "send", "--all-issued")
    wait_until(lambda: len(mailbox.messages) >= 2, process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    done = len(mailbox.messages)
    assert 2 <= done < 6 and "Traceback" not in err
    assert f"sent {done}, already sent 0" in out and "interrupted" in err
    mailbox.delay = 0.0
    rest = jalon(db_url, mailbox.port, "invoices", "send", "--all-issued")
    assert rest.returncode == 0, rest.stderr
    assert f"sent {6 - done}, already sent {done}" in rest.stdout
    assert_each_invoice_received_once(uow, mailbox, ids)


def test_a_process_killed_between_two_messages_leaves_no_invoice_unsent_nor_sent_twice(db_url, uow, mailbox):
    ids = issue(uow, 5)
    mailbox.hold_at = 3  # the third e-mail's SMTP session stops at MAIL FROM
    process = start(db_url, mailbox.port, "invoices", "send", "--all-issued", JALON_LEASE_SECONDS="2")
    wait_until(lambda: mailbox.started >= 3, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    mailbox.release.set()
    assert len(mailbox.messages) == 2
    # the third was claimed by the dead process: the next run waits out its lease, then sends it
    rest = jalon(db_url, mailbox.port, "invoices", "send", "--all-issued", JALON_LEASE_SECONDS="2")
    assert rest.returncode == 0, rest.stderr
    assert "sent 3, already sent 2" in rest.stdout
    assert_each_invoice_received_once(uow, mailbox, ids)


def test_invoices_named_by_number_are_the_only_ones_sent(db_url, uow, mailbox):
    ids = issue(uow, 3)
    with uow() as session:
        numbers = [session.get(Invoice, i).number for i in ids]
    result = jalon(db_url, mailbox.port, "invoices", "send", numbers[0], numbers[2])
    assert result.returncode == 0, result.stderr
    assert "sent 2, already sent 0" in result.stdout
    assert_each_invoice_received_once(uow, mailbox, [ids[0], ids[2]])


# --- refusals and failures (the command in-process: same code, faster) ------------------


def cli(db_url: str, port: int, *args: str):  # type: ignore[no-untyped-def]
    env = {"JALON_SMTP_HOST": "127.0.0.1", "JALON_SMTP_PORT": str(port), "JALON_MAIL_FROM": MAIL_FROM}
    return CliRunner().invoke(main, ["--database-url", db_url, "invoices", "send", *args], env=env,
                              catch_exceptions=False)


def sends(uow) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    with uow() as session:
        return list(session.execute(select(OutboxMessage).where(OutboxMessage.kind == "invoice.sent")).scalars())


def test_an_unknown_number_refuses_the_whole_command(db_url, uow, mailbox):
    ids = issue(uow, 1)
    with uow() as session:
        number = session.get(Invoice, ids[0]).number
    result = cli(db_url, mailbox.port, number, "F1999-00042")
    assert result.exit_code == 1 and "error [invoice_not_found]: no invoice numbered F1999-00042" in result.output
    assert sends(uow) == [] and mailbox.messages == []


def test_a_number_two_entities_share_is_ambiguous_and_refuses_the_command(db_url, uow, mailbox):
    ids = issue(uow, 2)  # atelier: F2026-00001, F2026-00002
    with uow() as session:
        catalog.upsert_entity(session, {**factories.ENTITY, "code": "studio", "name": "Studio SAS"}, actor="test")
        studio = factories.issued(session, entity="studio")  # the same prefix: F2026-00001 again
        studio_id = studio.id
        shared, first, alone = studio.number, session.get(Invoice, ids[0]).number, session.get(Invoice, ids[1]).number
    assert shared == first == "F2026-00001"
    result = cli(db_url, mailbox.port, alone, shared)
    assert result.exit_code == 1
    assert (f"error [invoice_number_ambiguous]: 2 entities have an invoice numbered F2026-00001: name it by id "
            f"({ids[0]}, {studio_id}: --id on the command line, invoice_ids in the API)" in result.output)
    assert sends(uow) == [] and mailbox.messages == []  # not even the unambiguous one

    # named by id, as the error says; the one named both ways is sent once
    result = cli(db_url, mailbox.port, alone, "--id", str(studio_id), "--id", str(ids[1]))
    assert result.exit_code == 0, result.output
    assert_each_invoice_received_once(uow, mailbox, [ids[1], studio_id])


def test_an_unknown_id_refuses_the_whole_command(db_url, uow, mailbox):
    ids = issue(uow, 1)
    result = cli(db_url, mailbox.port, "--id", str(ids[0]), "--id", str(ids[0] + 1000))
    assert result.exit_code == 1 and f"error [invoice_not_found]: no invoice {ids[0] + 1000}" in result.output
    assert sends(uow) == [] and mailbox.messages == []


@pytest.mark.parametrize("value", ["0", "-3", "F2026-00001"])
def test_an_id_that_is_not_a_positive_integer_is_a_usage_error(db_url, mailbox, value):
    result = cli(db_url, mailbox.port, "--id", value)
    assert result.exit_code == 2 and "Invalid value for '--id'" in result.output


def test_a_named_invoice_whose_client_has_no_e_mail_refuses_the_command(db_url, uow, mailbox):
    ids = issue(uow, 1, clients=[{**factories.CLIENT, "billing_emails": []}])
    with uow() as session:
        number = session.get(Invoice, ids[0]).number
    result = cli(db_url, mailbox.port, number)
    assert result.exit_code == 1 and "error [client_has_no_billing_email]" in result.output
    assert sends(uow) == []


def test_all_issued_skips_the_clients_without_e_mail_and_says_so(db_url, uow, mailbox):
    ids = issue(uow, 1)
    with uow() as session:
        catalog.upsert_client(session, factories.OTHER_CLIENT, actor="test")
        skipped = factories.issued(session, client="horizon").number
    result = cli(db_url, mailbox.port, "--all-issued")
    assert result.exit_code == 0, result.output
    assert "sent 1, already sent 0, skipped without e-mail 1" in result.output
    assert f"skipped {skipped}: client horizon has no billing e-mail" in result.output
    assert_each_invoice_received_once(uow, mailbox, ids)


@pytest.mark.parametrize("args", [(), ("--all-issued", "F2026-00001"), ("--all-issued", "--id", "1")])
def test_the_command_needs_numbers_or_all_issued(db_url, mailbox, args):
    result = cli(db_url, mailbox.port, *args)
    assert result.exit_code == 1 and "error [send_target_required]" in result.output


def test_dry_run_lists_what_would_be_sent_and_sends_nothing(db_url, uow, mailbox):
    issue(uow, 2)
    result = cli(db_url, mailbox.port, "--all-issued", "--dry-run")
    assert result.exit_code == 0
    assert result.output.count("would send F") == 2 and "to compta@lumiere.example" in result.output
    assert "dry run: nothing was sent" in result.output
    assert sends(uow) == [] and mailbox.messages == []


def test_a_5xx_reply_fails_the_invoice_and_the_command_says_how_to_retry(db_url, uow, mailbox):
    issue(uow, 1)
    mailbox.reply = "554 5.7.1 Message rejected"
    result = cli(db_url, mailbox.port, "--all-issued")
    assert result.exit_code == 1
    assert "failed 1" in result.output and "SMTP 554" in result.output and "/retry" in result.output
    [message] = sends(uow)
    assert message.status == "failed"
    again = cli(db_url, mailbox.port, "--all-issued")  # a failed sending is not retried behind finance's back
    assert "sent 0, already sent 0, skipped without e-mail 0, failed 1" in again.output
    assert mailbox.messages == []


def test_an_unreachable_smtp_server_leaves_the_invoices_for_a_later_run(db_url, uow, mailbox):
    ids = issue(uow, 2)
    down = cli(db_url, free_port(), "--all-issued")
    assert down.exit_code == 1 and "to retry later 2" in down.output
    assert {m.status for m in sends(uow)} == {"pending"}
    up = cli(db_url, mailbox.port, "--all-issued")  # sent now, whatever the backoff said
    assert up.exit_code == 0 and "sent 2, already sent 0" in up.output
    assert_each_invoice_received_once(uow, mailbox, ids)
