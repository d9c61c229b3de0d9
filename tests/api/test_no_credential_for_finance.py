"""A finance token reads everything it may read, and finds no credential in
any answer: no webhook secret, no PM-tool credential, no channel URL (a chat
webhook's URL is its credential), no channel secret, no header that carried
one, no approval token. The audit trail shows ``(secret)`` where one changed."""

from __future__ import annotations

import json
import re
import socket
from dataclasses import replace
from typing import Any

import pytest
import responses
from sqlalchemy import select

from jalon.connector.app import create_app
from jalon.connector.net import ssrf
from jalon.connector.outbox.dispatcher import claim, dispatch_once, outcome_of, record_results
from jalon.connector.settings import Settings
from jalon.core import tokens
from jalon.core.db import unit_of_work
from jalon.core.models import OutboxMessage
from jalon.plugins.jira import verify
from tests import factories
from tests.api.conftest import Client
from tests.outbox.conftest import complete_milestone

WEBHOOK_SECRET_1 = "int-SECRET-webhook-0001"
WEBHOOK_SECRET_2 = "int-SECRET-webhook-0003"
API_TOKEN = "tok-SECRET-api-0002"
CHAT_URL_1 = "https://hooks.chat.test/services/T0/B0/CHAT-SECRET-0004"
CHAT_URL_2 = "https://hooks.chat.test/services/T0/B0/CHAT-SECRET-0005"
BOOKS_URL = "https://books.accounting.test/hooks/BOOKS-SECRET-0006"
BOOKS_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HEADER_TOKEN = "hdr-SECRET-0007"
SECRETS = (WEBHOOK_SECRET_1, WEBHOOK_SECRET_2, API_TOKEN, CHAT_URL_1, CHAT_URL_2, BOOKS_URL, BOOKS_SECRET,
           HEADER_TOKEN, "CHAT-SECRET", "BOOKS-SECRET", "SECRET-webhook", "SECRET-api", "MfKQ9r8GKYqrTwjUPD8I")
PUBLIC_NAMES = ("hooks.chat.test", "books.accounting.test", "atelier.atlassian.test")


@pytest.fixture
def public_dns(monkeypatch):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host in PUBLIC_NAMES:
            return ["93.184.215.14"]
        raise socket.gaierror(socket.EAI_NONAME, "not a test name")

    monkeypatch.setattr(ssrf, "resolve_host", resolve)


@pytest.fixture
def app(db_url, public_dns):  # type: ignore[no-untyped-def]
    app = create_app(db_url, settings=Settings(public_url="https://jalon.atelier.example", max_attempts=3),
                     TESTING=True)
    try:
        yield app
    finally:
        app.extensions["jalon"].dispose()


@pytest.fixture
def uow(app):  # type: ignore[no-untyped-def]
    return lambda: unit_of_work(app.extensions["jalon"].sessionmaker)


def _client(app, uow, scope: str) -> Client:  # type: ignore[no-untyped-def]
    with uow() as session:
        return Client(app.test_client(), tokens.create_token(session, name=scope, scope=scope, actor="test")[1])


@pytest.fixture
def admin(app, uow) -> Client:  # type: ignore[no-untyped-def]
    return _client(app, uow, "admin")


@pytest.fixture
def finance(app, uow) -> Client:  # type: ignore[no-untyped-def]
    return _client(app, uow, "finance")


def _put(admin: Client, path: str, body: dict[str, Any]) -> None:
    response = admin.put(path, json=body)
    assert response.status_code in (200, 201), response.get_data(as_text=True)


@pytest.fixture
def world(app, uow, admin) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Every credential set through the admin API, changed once, used by the
    dispatcher and the intake, so that each may have left a trace."""
    with uow() as session:
        factories.seed(session)
    jira = {"source": "jira", "base_url": "https://atelier.atlassian.test", "secret": WEBHOOK_SECRET_1,
            "credentials": {"email": "bot@atelier.example", "api_token": API_TOKEN}}
    _put(admin, "/api/v1/integrations/jira-atelier", jira)
    _put(admin, "/api/v1/integrations/jira-atelier", {**jira, "secret": WEBHOOK_SECRET_2})  # rotated
    _put(admin, "/api/v1/channels/chat", {"kind": "chat", "target": {"url": CHAT_URL_1}})
    _put(admin, "/api/v1/channels/chat", {"kind": "chat", "target": {"url": CHAT_URL_2}})
    _put(admin, "/api/v1/channels/books", {"kind": "webhook", "secret": BOOKS_SECRET, "target": {"url": BOOKS_URL}})
    _put(admin, "/api/v1/channels/finance", {"kind": "email", "target": {"to": ["finance@atelier.example"]}})
    runtime = app.extensions["jalon"]
    complete_milestone(uow, runtime.settings)
    tokens_sent = _send_everything(runtime)
    body = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": "WEB-9"}}).encode()
    delivered = app.test_client().post("/hooks/jira/jira-atelier", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature": verify.hub_signature(WEBHOOK_SECRET_2, body),
        "X-Atlassian-Webhook-Identifier": "d-1", "Authorization": f"Bearer {HEADER_TOKEN}",
        "X-Echo": f"signed with {WEBHOOK_SECRET_2}"})
    assert delivered.status_code == 202, delivered.get_data(as_text=True)
    with uow() as session:
        invoice_id = session.execute(select(OutboxMessage.invoice_id).where(
            OutboxMessage.invoice_id.is_not(None))).scalars().first()
    return {"invoice_id": invoice_id, "approval_tokens": tokens_sent}


@responses.activate
def _send_everything(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    """The chat refuses (404), the books callback is down (500), the mail goes nowhere; the
    Jira comment is refused (401). Returns the approval tokens the messages were sent with."""
    responses.post(CHAT_URL_2, status=404, body=f"no_service at {CHAT_URL_2}")
    responses.post(BOOKS_URL, status=500, body=f"signed with {BOOKS_SECRET}")
    responses.post(re.compile(r"https://atelier\.atlassian\.test/.*"), status=401, body=f"bad token {API_TOKEN}")
    runtime.settings = replace(runtime.settings, smtp_port=1)  # nothing listens there: pending, with its error
    sent: list[str] = []
    claims = claim(runtime, owner="test", limit=50)
    for item in claims:
        link = (item.view.payload.get("links") or {}).get("approve") if item.view is not None else None
        if link:
            sent.append(link.rsplit("/", 1)[1])
    record_results(runtime, [outcome_of(runtime, item) for item in claims])
    dispatch_once(runtime, owner="test")
    return sent


def _concrete(path: str, world: dict[str, Any], finance: Client) -> list[str]:
    """The URLs of a GET path of the OpenAPI document, with every list's items."""
    listing = {"/api/v1/outbox/{message_id}": ("/api/v1/outbox", "id"),
               "/api/v1/deliveries/{delivery_id}": ("/api/v1/deliveries", "id"),
               "/api/v1/payments/{payment_id}": ("/api/v1/payments", "id"),
               "/api/v1/jobs/{name}": ("/api/v1/jobs", "name"),
               "/api/v1/integrations/{key}": ("/api/v1/integrations", "key"),
               "/api/v1/channels/{key}": (None, "chat")}
    fixed = {
        "/api/v1/entities/{code}": ["/api/v1/entities/atelier"],
        "/api/v1/clients/{code}": ["/api/v1/clients/lumiere"],
        "/api/v1/clients/{code}/balance": ["/api/v1/clients/lumiere/balance"],
        "/api/v1/contracts/{reference}": ["/api/v1/contracts/LUM-2026-01"],
        "/api/v1/contracts/{reference}/milestones": ["/api/v1/contracts/LUM-2026-01/milestones"],
        "/api/v1/mappings/{integration}/{project}": ["/api/v1/mappings/jira-atelier/WEB"],
        "/api/v1/invoices/{invoice_id}": [f"/api/v1/invoices/{world['invoice_id']}"],
        "/api/v1/invoices/{invoice_id}/pdf": [f"/api/v1/invoices/{world['invoice_id']}/pdf"],
        "/api/v1/invoices/{invoice_id}/facturx.xml": [f"/api/v1/invoices/{world['invoice_id']}/facturx.xml"],
    }
    if "{" not in path:
        return [path + ("?page_size=100" if path.startswith("/api/v1/") else "")]
    if path in fixed:
        return fixed[path]
    assert path in listing, f"{path}: a new GET operation; say here which of its URLs finance reads"
    source, field = listing[path]
    if source is None:
        return [path.replace("{key}", field)]
    items = finance.get(f"{source}?page_size=100").get_json()["items"]
    name = path.rsplit("{", 1)[1].rstrip("}")
    return [path.replace("{" + name + "}", str(item[field])) for item in items]


def test_no_answer_a_finance_token_can_read_carries_a_credential(app, world, finance):  # type: ignore[no-untyped-def]
    assert len(world["approval_tokens"]) == 3  # chat, books and finance's mail: a link each, as sent
    document = finance.get("/api/v1/openapi.json").get_json()
    read: dict[str, int] = {}
    for path, operations in sorted(document["paths"].items()):
        if "get" not in operations:
            continue
        for url in _concrete(path, world, finance):
            response = finance.get(url)
            read[url] = response.status_code
            text = response.get_data(as_text=True)
            found = [secret for secret in (*SECRETS, *world["approval_tokens"]) if secret in text]
            assert not found, f"GET {url} ({response.status_code}) shows {found}"
    # the reading happened: finance saw the audit, the outbox and the inbox, not the channels
    assert read["/api/v1/audit?page_size=100"] == 200 and read["/api/v1/outbox?page_size=100"] == 200
    assert read["/api/v1/deliveries?page_size=100"] == 200
    assert read["/api/v1/channels?page_size=100"] == read["/api/v1/channels/chat"] == 403
    assert len([url for url in read if url.startswith("/api/v1/outbox/")]) >= 4


def test_the_audit_trail_shows_that_a_channel_target_or_secret_changed_never_what_it_is(world, finance, admin):  # type: ignore[no-untyped-def]
    for reader in (finance, admin):
        records = reader.get("/api/v1/audit?subject_type=notification_channels&page_size=100").get_json()["items"]
        actions = sorted((r["action"], json.dumps(r["details"].get("target"))) for r in records)
        assert actions == [("notification_channel.created", '"(secret)"')] * 3 + [
            ("notification_channel.updated", '"(secret)"')]
        assert [r["details"]["secret"] for r in records if "secret" in r["details"]] == ["(secret)"]
        integration = reader.get("/api/v1/audit?subject_type=integrations&page_size=100").get_json()["items"]
        assert all(r["details"].get(field) in (None, "(secret)") for r in integration
                   for field in ("secret", "previous_secret", "credentials"))


def test_an_audit_record_written_before_targets_were_hidden_is_shown_without_them(world, finance, uow):  # type: ignore[no-untyped-def]
    from jalon.core.models import AuditRecord, NotificationChannel

    with uow() as session:  # as an older jalon wrote them: the target and the secret in clear
        channel = session.execute(select(NotificationChannel).where(NotificationChannel.key == "books")).scalar_one()
        session.add(AuditRecord(at=channel.created_at, actor="token:admin", action="notification_channel.updated",
                                subject_type="notification_channels", subject_id=str(channel.id),
                                details={"target": {"url": BOOKS_URL}, "secret": BOOKS_SECRET, "name": "Books"}))
        session.add(AuditRecord(at=channel.created_at, actor="token:admin", action="outbox_message.retried",
                                subject_type="outbox_messages", subject_id="1",
                                details={"last_error": "posted https://jalon.atelier.example/approve/TOKEN1234"}))
    records = finance.get("/api/v1/audit?page_size=2").get_json()["items"]
    assert [r["details"] for r in records] == [
        {"last_error": "posted https://jalon.atelier.example/approve/(secret)"},
        {"target": "(secret)", "secret": "(secret)", "name": "Books"}]


def test_the_audit_trail_stores_no_channel_url(world, uow):  # type: ignore[no-untyped-def]
    from jalon.core.models import AuditRecord

    with uow() as session:
        stored = json.dumps([r.details for r in session.execute(select(AuditRecord)).scalars()])
    assert not [secret for secret in SECRETS if secret in stored]
