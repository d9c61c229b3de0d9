"""Write-back: the comment ClickUp's task hears when billing acts on its
milestone, posted through the outbox dispatcher, ClickUp's answers becoming
the dispatcher's decisions."""

from __future__ import annotations

import json

import pytest
import requests
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
from jalon.plugins.clickup import comment as clickup_comment
from jalon.plugins.clickup.client import API

TOKEN = "pk_81942_COMMENTTESTTOKEN"
TASK = "86c0m1l5t"
URL = f"{API}/task/{TASK}/comment"
NOW = 1_800_000_000.0
CLICKUP = IntegrationView(key="clickup-lumen", source="clickup", name="ClickUp", base_url=API,
                          settings={"team_id": "9012345678"}, credentials={"api_token": TOKEN})
COMMENT = Comment(task_ref=TASK, text="jalon : jalon terminé\nUne facture brouillon existe.",
                  idempotency_key="comment:milestone.done:1")


def http() -> RestClient:
    """The dispatcher's client: no retry in-process (the outbox retries), a fixed wall clock."""
    return RestClient(API, timeout=2.0, max_retries=0, allow_private_network=True, sleep=lambda _s: None,
                      clock=lambda: NOW)


def send(integration: IntegrationView = CLICKUP, comment: Comment = COMMENT) -> SendResult | None:
    """The plugin's send as the dispatcher makes it."""
    return decided(lambda: clickup_comment.post(integration, comment, http()), allow="allow_private_network")


@responses.activate
def test_the_comment_is_posted_on_the_task_with_the_bare_token_and_its_id_returned() -> None:
    responses.post(URL, json={"id": 458, "hist_id": "26508", "date": 1568036964079})

    assert send() == SendResult(external_id="458")

    request = responses.calls[0].request
    assert request.headers["Authorization"] == TOKEN
    assert json.loads(request.body) == {"comment_text": COMMENT.text, "notify_all": False}


@responses.activate
def test_the_hook_of_the_plugin_posts_it_too() -> None:
    from jalon.plugins.clickup import jalon_source_comment

    responses.post(URL, json={"id": "459"})

    assert jalon_source_comment(source="clickup", integration=CLICKUP, comment=COMMENT, http=http()) == \
        SendResult(external_id="459")


@pytest.mark.parametrize("status, err", [
    (401, {"err": "Token invalid", "ECODE": "OAUTH_025"}),
    (403, {"err": "You do not have access to this task", "ECODE": "ACCESS_083"}),
    (404, {"err": "Task not found", "ECODE": "ITEM_013"}),
    (400, {"err": "Comment text is required", "ECODE": "COMM_002"}),
])
@responses.activate
def test_refused_token_missing_task_or_refused_body_fail_for_good(status, err) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, json=err, status=status)

    with pytest.raises(PermanentFailure) as raised:
        send()

    assert str(status) in str(raised.value) and TOKEN not in str(raised.value)


@responses.activate
def test_429_retries_later_at_the_reset_clickup_gives() -> None:
    responses.post(URL, status=429, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 42)})

    with pytest.raises(RetryLater) as raised:
        send()

    assert raised.value.after == 42.0
    assert len(responses.calls) == 1  # never posted twice in-process


@pytest.mark.parametrize("answer", [
    {"status": 500}, {"status": 502}, {"status": 503},
    {"body": requests.ConnectTimeout("slow")}, {"body": requests.ConnectionError("refused")},
])
@responses.activate
def test_server_errors_and_timeouts_retry_later(answer) -> None:  # type: ignore[no-untyped-def]
    responses.post(URL, **answer)

    with pytest.raises(RetryLater):
        send()


@responses.activate
def test_a_2xx_that_is_not_json_counts_as_sent_so_it_is_never_posted_twice() -> None:
    responses.post(URL, body="<html>ok</html>", status=200)

    assert send() == SendResult(external_id=None)


@pytest.mark.parametrize("integration, comment", [
    (IntegrationView(key="k", source="clickup", name="n", base_url=API, settings={}), COMMENT),
    (CLICKUP, Comment(task_ref="", text="x", idempotency_key="k")),
])
def test_without_a_token_or_a_task_nothing_is_sent_and_it_fails_for_good(integration, comment) -> None:  # type: ignore[no-untyped-def]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        with pytest.raises(PermanentFailure, match="token|task"):
            send(integration, comment)
        assert len(mock.calls) == 0


def test_a_comment_about_a_task_goes_on_that_task() -> None:
    assert clickup_comment.targets(TASK) == [TASK]
    assert clickup_comment.targets("") == []
