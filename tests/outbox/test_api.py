"""The admin API of the outbox and the channels, and their problem shapes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jalon.connector.app import create_app
from jalon.connector.outbox.dispatcher import dispatch_once
from jalon.core import tokens
from jalon.core.db import unit_of_work
from jalon.core.models import AuditRecord
from tests import factories
from tests.api.conftest import Client
from tests.api.support import assert_problem

from .conftest import WEBHOOK_SECRET, complete_milestone, outbox


@pytest.fixture
def app(db_url, settings):  # type: ignore[no-untyped-def]
    app = create_app(db_url, settings=settings, TESTING=True)
    try:
        yield app
    finally:
        app.extensions["jalon"].dispose()


@pytest.fixture
def uow(app):  # type: ignore[no-untyped-def]
    return lambda: unit_of_work(app.extensions["jalon"].sessionmaker)


def _token(uow, scope: str) -> str:  # type: ignore[no-untyped-def]
    with uow() as session:
        return tokens.create_token(session, name=scope, scope=scope, actor="test")[1]


@pytest.fixture
def admin(app, uow) -> Client:  # type: ignore[no-untyped-def]
    return Client(app.test_client(), _token(uow, "admin"))


@pytest.fixture
def finance(app, uow) -> Client:  # type: ignore[no-untyped-def]
    return Client(app.test_client(), _token(uow, "finance"))


@pytest.fixture
def failed(app, uow, admin, settings):  # type: ignore[no-untyped-def]
    """A milestone done with a finance e-mail that ends failed (SMTP 5xx impossible here: no plugin)."""
    with uow() as session:
        factories.seed(session)
    response = admin.put("/api/v1/channels/finance", json={"kind": "email", "target": {"to": ["f@atelier.example"]}})
    assert response.status_code == 201
    complete_milestone(uow, settings)
    with uow() as session:
        for message in outbox(uow):
            row = session.get(type(message), message.id)
            row.status, row.attempts, row.last_error = "failed", settings.max_attempts, "SMTP 550: no such user"
    return outbox(uow, channel="email")[0]


def test_failed_messages_are_listed_for_finance_with_filters(failed, finance) -> None:  # type: ignore[no-untyped-def]
    body = finance.get("/api/v1/outbox?status=failed&channel=email").get_json()
    assert body["total"] == 1 and body["page"] == 1
    [item] = body["items"]
    assert item["id"] == failed.id and item["channel_key"] == "finance" and item["status"] == "failed"
    assert item["last_error"] == "SMTP 550: no such user" and item["attempts"] == 3
    assert item["payload"]["data"]["invoice"]["total_net"] == "7200.00"
    assert finance.get("/api/v1/outbox?kind=comment").get_json()["items"][0]["integration"] == "jira-atelier"
    assert finance.get("/api/v1/outbox?status=sent").get_json()["total"] == 0
    assert finance.get(f"/api/v1/outbox/{failed.id}").get_json()["idempotency_key"] == failed.idempotency_key


def test_retry_puts_a_failed_message_back_and_audits_it(failed, finance, uow, app) -> None:  # type: ignore[no-untyped-def]
    response = finance.post(f"/api/v1/outbox/{failed.id}/retry")
    assert response.status_code == 200
    assert response.get_json()["status"] == "pending" and response.get_json()["attempts"] == 0
    assert app.extensions["jalon"].wake_dispatcher.is_set()
    with uow() as session:
        record = session.execute(select(AuditRecord).where(AuditRecord.action == "outbox_message.retried")).scalar_one()
        assert record.actor == "token:finance" and record.subject_id == str(failed.id)
        assert record.details["last_error"] == "SMTP 550: no such user"
    assert_problem(finance.post(f"/api/v1/outbox/{failed.id}/retry"), 409, "outbox_message_not_failed")


def test_a_message_that_keeps_failing_is_visible_in_the_api(app, admin, uow, settings, smtp) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    mailbox, port = smtp
    mailbox.reply = "451 4.3.0 try later"
    runtime = app.extensions["jalon"]
    runtime.settings = replace(runtime.settings, smtp_port=port)
    with uow() as session:
        factories.seed(session)
    admin.put("/api/v1/channels/finance", json={"kind": "email", "target": {"to": ["f@atelier.example"]}})
    complete_milestone(uow, runtime.settings)
    from jalon.core.types import utcnow

    for _ in range(settings.max_attempts):
        with uow() as session:
            for message in outbox(uow, channel="email"):
                session.get(type(message), message.id).next_attempt_at = utcnow()
        dispatch_once(runtime, owner="test")
    [item] = admin.get("/api/v1/outbox?status=failed&channel=email").get_json()["items"]
    assert item["attempts"] == settings.max_attempts and "SMTP 451" in item["last_error"]


def test_the_outbox_shows_where_the_approval_link_goes_never_a_token(app, admin, finance, uow, settings, smtp) -> None:  # type: ignore[no-untyped-def]
    import email
    import json
    import re
    from dataclasses import replace
    from email import policy

    mailbox, port = smtp
    runtime = app.extensions["jalon"]
    runtime.settings = replace(runtime.settings, smtp_port=port)
    with uow() as session:
        factories.seed(session)
    admin.put("/api/v1/channels/finance", json={"kind": "email", "target": {"to": ["f@atelier.example"]}})
    complete_milestone(uow, runtime.settings)
    dispatch_once(runtime, owner="test")
    [envelope] = mailbox.messages
    mail = email.message_from_bytes(envelope.original_content, policy=policy.default)
    token = re.search(r"/approve/([A-Za-z0-9_-]{43})", mail.get_body(("plain",)).get_content()).group(1)
    for reader in (admin, finance):
        [item] = reader.get("/api/v1/outbox?channel=email").get_json()["items"]
        assert item["status"] == "sent" and item["payload"]["links"]["approve"] == \
            "https://jalon.atelier.example/approve/…"
        shown = json.dumps([item, reader.get(f"/api/v1/outbox/{item['id']}").get_json()])
        assert token not in shown


def test_a_message_stored_with_its_approval_link_in_clear_is_shown_without_the_token(failed, finance, uow) -> None:  # type: ignore[no-untyped-def]
    import json

    url = "https://jalon.atelier.example/approve/Bh3kT0ken0fAnOlderJal0n_Stored1nClear-abcdefg"
    with uow() as session:  # as jalon stored them before the link was made at send time
        row = session.get(type(failed), failed.id)
        row.payload = {**row.payload, "links": {"approve": url, "task": None}, "text": f"Approuver : {url}\n"}
        row.last_error = f"refused {url}"
    body = finance.get(f"/api/v1/outbox/{failed.id}").get_json()
    assert body["payload"]["links"]["approve"] == "https://jalon.atelier.example/approve/(secret)"
    assert body["payload"]["text"] == "Approuver : https://jalon.atelier.example/approve/(secret)\n"
    assert body["last_error"] == "refused https://jalon.atelier.example/approve/(secret)"
    assert "Bh3kT0ken" not in json.dumps(finance.get("/api/v1/outbox").get_json())


def test_outbox_problems(failed, admin, app) -> None:  # type: ignore[no-untyped-def]
    assert_problem(admin.get("/api/v1/outbox/999999"), 404, "outbox_message_not_found")
    assert_problem(admin.post("/api/v1/outbox/999999/retry"), 404, "outbox_message_not_found")
    assert_problem(admin.get("/api/v1/outbox?status=lost"), 422, "validation_failed")
    assert_problem(admin.get("/api/v1/outbox?page_size=1000"), 422, "validation_failed")
    assert_problem(admin.get("/api/v1/outbox?colour=red"), 422, "validation_failed")
    assert_problem(admin.as_token(None).get("/api/v1/outbox"), 401, "unauthorized")


def test_a_channel_is_created_updated_and_its_secret_never_shown(admin, uow) -> None:  # type: ignore[no-untyped-def]
    body = {"kind": "webhook", "name": "Compta", "target": {"url": "https://93.184.215.14/hooks"},
            "secret": WEBHOOK_SECRET, "events": ["milestone.done"]}
    created = admin.put("/api/v1/channels/books", json=body)
    assert created.status_code == 201
    shown = created.get_json()
    assert shown["has_secret"] is True and "secret" not in shown
    assert WEBHOOK_SECRET not in created.get_data(as_text=True)
    again = admin.put("/api/v1/channels/books", json={k: v for k, v in body.items() if k != "secret"})
    assert again.status_code == 200 and again.get_json()["has_secret"] is True
    assert admin.get("/api/v1/channels/books").get_json()["events"] == ["milestone.done"]
    assert admin.get("/api/v1/channels").get_json()["total"] == 1
    with uow() as session:
        details = [r.details for r in session.execute(select(AuditRecord).where(
            AuditRecord.subject_type == "notification_channels")).scalars()]
    assert details and all(WEBHOOK_SECRET not in str(d) for d in details)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/x", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]/x", "http://2130706433/", "file:///etc/passwd",
                                 "https://user:pw@93.184.215.14/x", "http://localhost/hook"])
def test_a_channel_url_to_a_private_address_is_refused(admin, url: str) -> None:  # type: ignore[no-untyped-def]
    response = admin.put("/api/v1/channels/chat", json={"kind": "chat", "target": {"url": url}})
    assert_problem(response, 422, "url_not_allowed")
    assert admin.get("/api/v1/channels/chat").status_code == 404


def test_allow_private_network_lets_an_intranet_url_through(admin) -> None:  # type: ignore[no-untyped-def]
    response = admin.put("/api/v1/channels/intranet", json={
        "kind": "chat", "target": {"url": "http://10.0.0.12/hooks/billing"}, "allow_private_network": True})
    assert response.status_code == 201 and response.get_json()["allow_private_network"] is True


@pytest.mark.parametrize("body, status, code", [
    ({"kind": "pigeon", "target": {}}, 422, "unknown_channel_kind"),
    ({"kind": "email", "target": {"to": ["not-an-address"]}}, 422, "invalid_channel_target"),
    ({"kind": "email", "target": {}}, 422, "invalid_channel_target"),
    ({"kind": "chat", "target": {"url": "https://93.184.215.14/x"}, "events": ["invoice.paid"]}, 422,
     "invalid_channel_events"),
    ({"kind": "webhook", "target": {"url": "https://93.184.215.14/x"}}, 422, "webhook_secret_required"),
    ({"kind": "webhook", "target": {"url": "https://93.184.215.14/x"}, "secret": "plain"}, 422,
     "invalid_webhook_secret"),
    ({"target": {"to": ["f@atelier.example"]}}, 422, "validation_failed"),
    ({"kind": "email", "target": "finance@atelier.example"}, 422, "validation_failed"),
    ({"kind": "email", "target": {"to": ["f@atelier.example"]}, "colour": "red"}, 422, "validation_failed"),
])
def test_channel_problems(admin, body, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert_problem(admin.put("/api/v1/channels/c1", json=body), status, code)


def test_a_bad_channel_key_is_refused(admin) -> None:  # type: ignore[no-untyped-def]
    response = admin.put("/api/v1/channels/bad%20key", json={"kind": "email", "target": {"to": ["f@x.example"]}})
    assert_problem(response, 422, "invalid_channel_key")


def test_channels_are_for_admin_tokens_only(finance, admin) -> None:  # type: ignore[no-untyped-def]
    admin.put("/api/v1/channels/finance", json={"kind": "email", "target": {"to": ["f@atelier.example"]}})
    assert_problem(finance.get("/api/v1/channels/finance"), 403, "insufficient_scope")
    assert_problem(finance.put("/api/v1/channels/finance", json={"kind": "email", "target": {"to": ["x@y.example"]}}),
                   403, "insufficient_scope")
    assert_problem(admin.get("/api/v1/channels/nope"), 404, "channel_not_found")


def test_the_openapi_document_describes_outbox_and_channels(admin) -> None:  # type: ignore[no-untyped-def]
    paths = admin.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"/api/v1/outbox", "/api/v1/outbox/{message_id}", "/api/v1/outbox/{message_id}/retry",
            "/api/v1/channels", "/api/v1/channels/{key}"} <= set(paths)
