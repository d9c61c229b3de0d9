"""The one-click approval link is a capability: through a real ``jalon serve``
(its access log on standard output), finance's e-mail carries a working link,
and neither the server's log, nor the outbox's rows, nor the outbox API ever
hold its token."""

from __future__ import annotations

import email
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from email import policy

import pytest
import requests
from aiosmtpd.controller import Controller
from sqlalchemy import select

from jalon.connector.settings import Settings
from jalon.core import catalog, tokens
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import ApprovalLink, Invoice, OutboxMessage
from tests import factories
from tests.e2e.conftest import JALON, Server, free_port, stop, wait_until_up
from tests.outbox.conftest import EMAIL, Mailbox, complete_milestone

LINK = re.compile(r"Approuver : (http://127\.0\.0\.1:\d+/approve/([A-Za-z0-9_-]{43}))\r?\n")


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


@pytest.fixture
def uow(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    yield lambda: unit_of_work(make_sessionmaker(engine))
    engine.dispose()


@pytest.fixture
def server(db_url, tmp_path, mailbox, uow) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """``jalon serve`` as an operator starts it (access log on), sending mail to the loopback SMTP server."""
    with uow() as session:
        factories.seed(session)
        catalog.upsert_channel(session, dict(EMAIL), actor="test")
    port = free_port()
    env = {**os.environ, "JALON_PUBLIC_URL": f"http://127.0.0.1:{port}", "JALON_SMTP_PORT": str(mailbox[1]),
           "JALON_MAIL_FROM": "jalon@atelier.example", "JALON_WORKER_IDLE_SECONDS": "0.1"}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [JALON, "--database-url", db_url, "serve", "--host", "127.0.0.1", "--port", str(port), "--access-log"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
    served = Server(f"http://127.0.0.1:{port}", db_url, process, log)
    try:
        wait_until_up(served)
        yield served
    finally:
        stop(process)


def _wait(check, what: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def test_the_link_finance_receives_approves_and_its_token_is_in_no_log_no_outbox_row_no_api_answer(
        server, mailbox, uow):  # type: ignore[no-untyped-def]
    box, _ = mailbox
    complete_milestone(uow, Settings(public_url=server.url))  # what the worker does for a milestone done
    [envelope] = _wait(lambda: box.messages, "finance's e-mail sent by the server's dispatcher")
    mail = email.message_from_bytes(envelope.original_content, policy=policy.default)
    found = LINK.search(mail.get_body(("plain",)).get_content())
    assert found is not None
    url, token = found.groups()
    assert url.startswith(f"{server.url}/approve/")

    # the outbox's rows and the outbox API: no token
    with uow() as session:
        rows = session.execute(select(OutboxMessage)).scalars().all()
        stored = json.dumps([[m.payload, m.destination, m.last_error, m.idempotency_key] for m in rows],
                            ensure_ascii=False)
        finance_token = tokens.create_token(session, name="compta", scope="finance", actor="test")[1]
    assert token not in stored and "/approve/…" in stored
    finance = {"Authorization": f"Bearer {finance_token}"}
    listed = requests.get(f"{server.url}/api/v1/outbox", headers=finance, timeout=10)
    assert listed.status_code == 200 and listed.json()["total"] >= 1
    answers = [listed.text] + [requests.get(f"{server.url}/api/v1/outbox/{item['id']}", headers=finance,
                                            timeout=10).text for item in listed.json()["items"]]
    assert not [answer for answer in answers if token in answer]

    # finance opens the link, then clicks the button, as a browser would
    assert requests.get(url, timeout=10).status_code == 200
    clicked = requests.post(url, timeout=60, headers={"Origin": server.url, "Sec-Fetch-Site": "same-origin"})
    assert clicked.status_code == 200, clicked.text
    with uow() as session:
        link = session.execute(select(ApprovalLink)).scalar_one()
        assert link.used_at is not None
        assert session.get(Invoice, link.invoice_id).status == "issued"

    # the access log saw both requests, never the token
    log = _wait(lambda: (text := server.log.read_text(errors="replace")).count("/approve/(secret)") >= 2 and text,
                "the approval requests in the access log")
    assert re.search(r'"GET /approve/\(secret\) HTTP/1\.1" 200', log)
    assert re.search(r'"POST /approve/\(secret\) HTTP/1\.1" 200', log)
    assert token not in log


def test_the_access_log_redacts_any_approval_path_and_its_referer(server):  # type: ignore[no-untyped-def]
    response = requests.get(f"{server.url}/approve/not-a-real-token-but-kept-out?x=1", timeout=10,
                            headers={"Referer": f"{server.url}/approve/a-referring-token"})
    assert response.status_code == 404
    log = _wait(lambda: (text := server.log.read_text(errors="replace")).count("?x=1") and text,
                "the request in the access log")
    assert '"GET /approve/(secret)?x=1 HTTP/1.1" 404' in log
    assert f'"{server.url}/approve/(secret)"' in log  # the referer
    assert "not-a-real-token-but-kept-out" not in log and "a-referring-token" not in log


def test_an_operator_s_own_log_format_shows_no_credential_header_nor_token():  # type: ignore[no-untyped-def]
    from datetime import timedelta
    from types import SimpleNamespace

    from gunicorn.config import Config

    from jalon.connector.web.server import RedactingLogger

    cfg = Config()
    cfg.set("accesslog", None)
    logger = RedactingLogger(cfg)
    environ = {"REQUEST_METHOD": "POST", "RAW_URI": "/approve/TOKEN123", "PATH_INFO": "/approve/TOKEN123",
               "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
               "HTTP_AUTHORIZATION": "Bearer jalon_SECRET", "HTTP_COOKIE": "session=SECRET2"}
    request = SimpleNamespace(headers=[("AUTHORIZATION", "Bearer jalon_SECRET"), ("COOKIE", "session=SECRET2"),
                                       ("REFERER", "https://jalon.example/approve/TOKEN123")])
    response = SimpleNamespace(status="200 OK", headers=[("Set-Cookie", "s=SECRET3")], sent=10)
    atoms = logger.atoms(response, request, environ, timedelta(seconds=1))
    shown = json.dumps(atoms, default=str)
    assert atoms["r"] == "POST /approve/(secret) HTTP/1.1" and atoms["U"] == "/approve/(secret)"
    assert atoms["{authorization}i"] == atoms["{cookie}i"] == atoms["{set-cookie}o"] == "(secret)"
    assert atoms["{referer}i"] == "https://jalon.example/approve/(secret)"
    assert not [secret for secret in ("TOKEN123", "SECRET") if secret in shown]


def test_the_error_log_redacts_an_approval_path(capsys):  # type: ignore[no-untyped-def]
    from gunicorn.config import Config

    from jalon.connector.web.server import RedactingLogger

    logger = RedactingLogger(Config())
    logger.error("Error handling request %s %s", "POST", "/approve/TOKEN123")
    assert "Error handling request POST /approve/(secret)" in capsys.readouterr().err
