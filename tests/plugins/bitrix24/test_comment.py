"""Write-back: the comment a Bitrix24 task hears when billing acts on its
milestone, posted through the outbox dispatcher with the comment's
idempotency key, Bitrix24's answers becoming the dispatcher's decisions."""

from __future__ import annotations

import json

import pytest
import responses
from jalon.connector.net.http import RestClient
from jalon.connector.outbox.dispatcher import decided
from jalon.connector.plugin.types import (
    Comment,
    IntegrationView,
    PermanentFailure,
    RetryLater,
    SendResult,
)
from jalon.plugins.bitrix24 import comment as bitrix_comment

CODE = "c0mm3ntC0de"
WEBHOOK = f"https://atelier.bitrix24.eu/rest/1/{CODE}/"
URL = f"{WEBHOOK}task.commentitem.add.json"
NOW = 1_800_000_000.0
BITRIX = IntegrationView(key="b24-atelier", source="bitrix24", name="Bitrix24", base_url="https://atelier.bitrix24.eu",
                         settings={}, credentials={"webhook_url": WEBHOOK})
COMMENT = Comment(task_ref="4711", text="jalon : jalon terminé\nUne facture brouillon existe.",
                  idempotency_key="comment:milestone.done:1")


def http() -> RestClient:
    """The dispatcher's client: no retry in-process (the outbox retries), a fixed wall clock."""
    return RestClient(None, timeout=2.0, max_retries=0, allow_private_network=True, sleep=lambda _s: None,
                      clock=lambda: NOW)


def send(integration: IntegrationView = BITRIX, comment: Comment = COMMENT) -> SendResult | None:
    return decided(lambda: bitrix_comment.post(integration, comment, http()), allow="allow_private_network")


@responses.activate
def test_the_comment_is_posted_with_its_idempotency_key_and_its_id_returned() -> None:
    responses.post(URL, json={"result": 9051, "time": {}})

    assert send() == SendResult(external_id="9051")

    request = responses.calls[0].request
    assert request.headers["Idempotency-Key"] == "comment:milestone.done:1"
    assert json.loads(request.body) == {"TASKID": "4711", "FIELDS": {"POST_MESSAGE": COMMENT.text}}


@responses.activate
def test_the_same_comment_sent_again_carries_the_same_key() -> None:
    responses.post(URL, json={"result": 9051}, headers={"Idempotent-Replayed": "true"})

    send()
    send()

    assert {call.request.headers["Idempotency-Key"] for call in responses.calls} == {COMMENT.idempotency_key}


@pytest.mark.parametrize(("status", "body"), [
    (401, {"error": "invalid_token", "error_description": "Unable to authorize user"}),
    (403, {"error": "ACCESS_DENIED", "error_description": "Access denied"}),
    (400, {"error": "ERROR_CORE", "error_description": "Task not found or not accessible"}),
])
@responses.activate
def test_a_refusal_fails_the_message_without_showing_the_webhook(status, body) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, status=status, json=body)

    with pytest.raises(PermanentFailure) as raised:
        send()

    assert body["error"] in str(raised.value) and CODE not in str(raised.value)


@pytest.mark.parametrize(("status", "body", "after"), [
    (503, {"error": "QUERY_LIMIT_EXCEEDED"}, 1.0),
    (429, {"error": "OPERATION_TIME_LIMIT", "time": {"operating_reset_at": int(NOW) + 240}}, 240.0),
    (502, {}, None),
])
@responses.activate
def test_limits_and_outages_are_tried_again_later(status, body, after) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, status=status, json=body)

    with pytest.raises(RetryLater) as raised:
        send()

    assert raised.value.after == (pytest.approx(after) if after is not None else None)


@responses.activate
def test_an_unreadable_2xx_counts_as_sent_rather_than_posting_twice() -> None:
    responses.post(URL, body="<html>ok</html>", content_type="text/html")

    assert send() == SendResult(external_id=None)


def test_a_comment_on_no_task_or_without_credentials_fails_at_once() -> None:
    with pytest.raises(PermanentFailure):
        send(comment=Comment(task_ref="", text="x", idempotency_key="k"))
    with pytest.raises(PermanentFailure, match="no Bitrix24 credentials"):
        send(integration=IntegrationView(key="b24", source="bitrix24", name="B", base_url=None, settings={}))


def test_comments_go_on_the_task_itself() -> None:
    assert bitrix_comment.targets("4711") == ["4711"]
    assert bitrix_comment.targets("group:12") == []
    assert bitrix_comment.targets("") == []
