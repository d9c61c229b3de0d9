"""Write-back: the comment Jira hears when billing acts on a milestone, and
the comments queued when a milestone's invoice is issued and paid."""

from __future__ import annotations

import base64
import json

import pytest
import requests
import responses
from sqlalchemy import select

from jalon.connector.outbox import notify
from jalon.connector.app import create_app
from jalon.connector.net.http import RestClient
from jalon.connector.plugin.types import Comment, IntegrationView, PermanentFailure, RetryLater, SendResult
from jalon.core import invoicing, tokens
from jalon.core.db import unit_of_work
from jalon.core.models import Invoice, OutboxMessage
from jalon.core.rules import apply_event
from jalon.connector.outbox.dispatcher import decided
from jalon.plugins.jira import jalon_source_comment
from tests import factories

SITE = "https://atelier.atlassian.net"
CLOUD = IntegrationView(key="jira-atelier", source="jira", name="Jira", base_url=SITE, settings={},
                        credentials={"email": "bot@atelier.example", "api_token": "tok-123"})
DATACENTER = IntegrationView(key="jira-dc", source="jira", name="Jira DC", base_url="https://jira.atelier.test",
                             settings={"flavour": "datacenter"}, credentials={"pat": "pat-456"})
COMMENT = Comment(task_ref="WEB-1", text="jalon: milestone done\nA draft invoice exists.",
                  idempotency_key="comment:milestone.done:1")


def http(base_url: str = SITE) -> RestClient:
    return RestClient(base_url, timeout=2.0, max_retries=0, allow_private_network=True, sleep=lambda _: None)


def send(integration: IntegrationView = CLOUD, comment: Comment = COMMENT) -> SendResult | None:
    """The plugin's send as the dispatcher makes it: Jira's answers become its decisions."""
    return decided(lambda: jalon_source_comment(source="jira", integration=integration, comment=comment,
                                                http=http(integration.base_url)), allow="allow_private_network")


@responses.activate
def test_cloud_posts_an_adf_comment_with_basic_auth_and_returns_its_id() -> None:
    responses.post(f"{SITE}/rest/api/3/issue/WEB-1/comment", json={"id": "10042"}, status=201)

    assert send() == SendResult(external_id="10042")

    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"bot@atelier.example:tok-123").decode()
    assert json.loads(request.body) == {"body": {"type": "doc", "version": 1, "content": [
        {"type": "paragraph", "content": [{"type": "text", "text": "jalon: milestone done"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "A draft invoice exists."}]}]}}


@responses.activate
def test_data_center_posts_a_plain_v2_comment_with_a_personal_access_token() -> None:
    responses.post("https://jira.atelier.test/rest/api/2/issue/WEB-1/comment", json={"id": 7}, status=201)

    assert send(DATACENTER) == SendResult(external_id="7")

    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Bearer pat-456"
    assert json.loads(request.body) == {"body": COMMENT.text}


@pytest.mark.parametrize("status", [401, 403, 404, 400])
@responses.activate
def test_refused_credentials_missing_issue_or_refused_body_give_up(status: int) -> None:
    responses.post(f"{SITE}/rest/api/3/issue/WEB-1/comment", json={"errorMessages": ["no"]}, status=status)

    with pytest.raises(PermanentFailure):
        send()


@responses.activate
def test_rate_limit_retries_after_what_jira_said() -> None:
    responses.post(f"{SITE}/rest/api/3/issue/WEB-1/comment", status=429, headers={"Retry-After": "120"})

    with pytest.raises(RetryLater) as raised:
        send()
    assert raised.value.after == 120.0


@pytest.mark.parametrize("answer", [
    {"status": 500}, {"status": 503}, {"body": requests.ConnectTimeout("slow")},
    {"body": requests.ConnectionError("refused")},
])
@responses.activate
def test_server_errors_and_timeouts_retry_later(answer: dict) -> None:
    responses.post(f"{SITE}/rest/api/3/issue/WEB-1/comment", **answer)

    with pytest.raises(RetryLater):
        send()


@responses.activate
def test_a_2xx_that_is_not_json_counts_as_sent_so_it_is_never_posted_twice() -> None:
    responses.post(f"{SITE}/rest/api/3/issue/WEB-1/comment", body="<html>ok</html>", status=201)

    assert send() == SendResult(external_id=None)


@pytest.mark.parametrize("integration, comment", [
    (IntegrationView(key="k", source="jira", name="n", base_url=SITE, settings={}), COMMENT),
    (IntegrationView(key="k", source="jira", name="n", base_url=SITE, settings={"flavour": "datacenter"},
                     credentials={"email": "a@b.example"}), COMMENT),
    (IntegrationView(key="k", source="jira", name="n", base_url=None, settings={}, credentials=CLOUD.credentials),
     COMMENT),
    (CLOUD, Comment(task_ref="", text="x", idempotency_key="k")),
])
def test_missing_credentials_site_or_issue_fail_without_calling_jira(integration, comment) -> None:  # type: ignore[no-untyped-def]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(PermanentFailure):
            send(integration, comment)
        assert len(mock.calls) == 0


# --- the comments queued when the milestone's invoice moves on ------------------------------


@pytest.fixture
def app(db_url):  # type: ignore[no-untyped-def]
    app = create_app(db_url, TESTING=True)
    yield app
    app.extensions["jalon"].engine.dispose()


@pytest.fixture
def uow(app):  # type: ignore[no-untyped-def]
    return lambda: unit_of_work(app.extensions["jalon"].sessionmaker)


@pytest.fixture
def finance(app, uow):  # type: ignore[no-untyped-def]
    with uow() as session:
        _, token = tokens.create_token(session, name="compta", scope="finance", actor="test")
    client = app.test_client()
    return lambda method, path, body: client.open(path, method=method, json=body,
                                                  headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def draft_id(uow) -> int:  # type: ignore[no-untyped-def]
    """Milestone M1 done through Jira task WEB-1: its draft invoice."""
    with uow() as session:
        factories.seed(session)
        outcome = apply_event(session, factories.completed("WEB-1", task_url=f"{SITE}/browse/WEB-1"))
        assert outcome.effect == "milestone_done"
        return outcome.invoice_id


def comments(uow) -> list[tuple[str, dict, dict]]:  # type: ignore[no-untyped-def]
    with uow() as session:
        rows = session.execute(select(OutboxMessage).where(OutboxMessage.kind == "comment")
                               .order_by(OutboxMessage.id)).scalars().all()
        return [(m.idempotency_key, dict(m.destination), dict(m.payload)) for m in rows]


def test_issuing_a_milestone_invoice_queues_a_comment_on_its_task(finance, uow, draft_id) -> None:  # type: ignore[no-untyped-def]
    response = finance("POST", f"/api/v1/invoices/{draft_id}/issue", {"issue_date": "2026-11-20"})
    assert response.status_code == 200, response.json

    [(key, destination, payload)] = comments(uow)
    assert key == f"comment:invoice.issued:{draft_id}"
    assert destination == {"integration": "jira-atelier", "task_ref": "WEB-1"}
    assert response.json["number"] in payload["text"]
    assert payload["task_url"] == f"{SITE}/browse/WEB-1"


def test_paying_it_in_full_queues_one_more_comment_and_a_part_payment_none(finance, uow, draft_id) -> None:  # type: ignore[no-untyped-def]
    number = finance("POST", f"/api/v1/invoices/{draft_id}/issue", {"issue_date": "2026-11-20"}).json["number"]
    payment = {"currency": "EUR", "received_on": "2026-11-25", "allocations": [{"invoice_number": number}]}

    assert finance("POST", "/api/v1/payments", {**payment, "amount": "100.00"}).status_code == 201
    assert [key for key, _, _ in comments(uow)] == [f"comment:invoice.issued:{draft_id}"]

    with uow() as session:
        rest = session.get(Invoice, draft_id).total_gross - 100
    assert finance("POST", "/api/v1/payments", {**payment, "amount": format(rest, "f")}).status_code == 201

    keys = [key for key, _, _ in comments(uow)]
    assert keys == [f"comment:invoice.issued:{draft_id}", f"comment:invoice.paid:{draft_id}"]
    assert "payée" in comments(uow)[1][2]["text"]


def test_a_failed_issue_queues_nothing(finance, uow, draft_id) -> None:  # type: ignore[no-untyped-def]
    assert finance("POST", f"/api/v1/invoices/{draft_id}/issue", {"issue_date": "2026-11-20"}).status_code == 200
    # issuing again is refused (409): its transaction, and any comment, roll back
    assert finance("POST", f"/api/v1/invoices/{draft_id}/issue", {}).status_code == 409

    assert len(comments(uow)) == 1


def test_an_invoice_without_a_milestone_task_queues_no_comment(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        factories.seed(session)
        invoice = factories.issued(session, factories.line("100.00"))
        assert notify.on_invoice_issued(session, invoice) == 0
        invoice.status = "paid"
        assert notify.on_invoice_paid(session, invoice) == 0
    assert comments(uow) == []


def test_the_comment_is_queued_once_per_invoice_event(uow, draft_id) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        invoice = invoicing.issue(session, draft_id, actor="finance")
        assert notify.on_invoice_issued(session, invoice) == 1
        assert notify.on_invoice_issued(session, invoice) == 0
        assert notify.on_invoice_paid(session, invoice) == 0  # issued, not paid
    assert len(comments(uow)) == 1
