"""The chat channel (Slack/Teams incoming webhook), with `responses` as Slack."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import responses

from jalon.connector.outbox.dispatcher import dispatch_once
from jalon.core.types import utcnow

from .conftest import CHAT, add_channel, complete_milestone, outbox

URL = CHAT["target"]["url"]


@pytest.fixture
def chat(runtime, world, uow, public_dns):  # type: ignore[no-untyped-def]
    add_channel(uow, **CHAT)
    complete_milestone(uow, runtime.settings)
    return runtime


def _chat_message(uow):  # type: ignore[no-untyped-def]
    [message] = outbox(uow, channel="chat")
    return message


@responses.activate
def test_a_200_sends_text_and_blocks_with_an_approve_button(chat, uow) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, body="ok")
    dispatch_once(chat, owner="test")
    body = json.loads(responses.calls[0].request.body)
    assert "Lumière Industries SA" in body["text"] and "7\u202f200,00\u00a0€ HT" in body["text"]
    button = body["blocks"][1]["elements"][0]
    assert re.fullmatch(r"https://jalon\.atelier\.example/approve/[A-Za-z0-9_-]{43}", button["url"])
    message = _chat_message(uow)
    assert message.status == "sent"
    assert button["url"].rsplit("/", 1)[1] not in json.dumps(message.payload)  # made as it was sent


@responses.activate
def test_a_429_retry_after_sets_the_next_attempt(chat, uow) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, status=429, headers={"Retry-After": "120"})
    before = utcnow()
    dispatch_once(chat, owner="test")
    message = _chat_message(uow)
    assert message.status == "pending"
    assert before + timedelta(seconds=119) <= message.next_attempt_at <= utcnow() + timedelta(seconds=121)
    assert len(responses.calls) == 1


@responses.activate
def test_a_500_is_retried_with_backoff_then_sent(chat, uow) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, status=500)
    dispatch_once(chat, owner="test")
    message = _chat_message(uow)
    assert message.status == "pending" and "HTTP 500" in message.last_error
    assert message.next_attempt_at > utcnow()
    responses.replace(responses.POST, URL, body="ok")
    with uow() as session:
        session.get(type(message), message.id).next_attempt_at = utcnow()
    dispatch_once(chat, owner="test")
    assert _chat_message(uow).status == "sent"


@responses.activate
def test_a_404_fails_and_the_error_hides_the_webhook_path(chat, uow) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, status=404, body="no_service")
    dispatch_once(chat, owner="test")
    message = _chat_message(uow)
    assert message.status == "failed" and "HTTP 404" in message.last_error
    assert "SECRETPATH" not in message.last_error


@responses.activate
def test_a_url_that_now_resolves_to_a_private_address_fails_at_once_naming_the_setting(chat, uow, monkeypatch,
                                                                                       caplog) -> None:  # type: ignore[no-untyped-def]
    from jalon.connector.net import ssrf

    monkeypatch.setattr(ssrf, "resolve_host", lambda host, port: ["10.0.0.8"])
    dispatch_once(chat, owner="test")
    message = _chat_message(uow)
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error.startswith("url_not_allowed: the URL leads to a non-public address: 10.0.0.8")
    assert "allow_private_network: true on the channel" in message.last_error
    assert len(responses.calls) == 0
    assert not [r for r in caplog.records if r.exc_info], "a refusal is no crash: no traceback"


@pytest.mark.parametrize(("status", "location"), [
    (302, "http://10.0.0.8/hook"),  # towards the private network
    (301, "https://hooks.elsewhere.test/services/T0/B0/NEWPATH"),  # a public address: not followed either
    (307, "/other"),
])
@responses.activate
def test_a_redirect_is_not_followed_and_fails_the_message_with_its_reason(chat, uow, status, location) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, status=status, headers={"Location": location})
    responses.get(location if location.startswith("http") else "https://hooks.chat.test/other", body="ok")
    dispatch_once(chat, owner="test")
    message = _chat_message(uow)
    host = "hooks.chat.test" if location.startswith("/") else location.split("/")[2]
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error == f"POST hooks.chat.test: HTTP {status} redirect to {host} not followed " \
                                 "(configure the address it points to)"
    assert [call.request.method for call in responses.calls] == ["POST"]  # nothing sent elsewhere, no GET
