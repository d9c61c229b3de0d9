"""Write-back: a comment on the Bitrix24 task when billing acts on its
milestone (draft invoice, invoice issued, invoice paid), posted by the outbox
dispatcher through ``jalon_source_comment``.

``task.commentitem.add`` with the integration's inbound webhook or app token,
and the comment's idempotency key as ``Idempotency-Key``: Bitrix24's REST 3.0
replays the stored answer of a repeated call instead of posting twice;
elsewhere the header is ignored, and a 2xx whose body is unreadable counts as
sent (posting again would double the comment).

Bitrix24's answers become the dispatcher's decisions in the connector:
``QUERY_LIMIT_EXCEEDED`` (503) and ``OPERATION_TIME_LIMIT`` (429) are
``RateLimited`` (later, after the wait Bitrix24 asked), other 5xx and
timeouts ``Unavailable`` (later); 401, 403 (a token or webhook refused,
``ACCESS_DENIED``), 404 and other 4xx fail the message. Only what Bitrix24
cannot be asked without is checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from jalon.connector.plugin import (
    Comment,
    IntegrationView,
    PermanentFailure,
    RestClient,
    SendResult,
)

from . import client

TASK_PREFIX = "task:"


def task_id(task_ref: str) -> str:
    """A task reference (``123``, or ``task:123``) -> Bitrix24's task id."""
    ref = str(task_ref or "").strip()
    return ref.removeprefix(TASK_PREFIX)


def targets(task_ref: str) -> Sequence[str]:
    """Every Bitrix24 reference jalon bills on is a task (a group cannot take a comment)."""
    ref = str(task_ref or "").strip()
    return [ref] if ref and task_id(ref).isdigit() else []


def post(integration: IntegrationView, comment: Comment, http: RestClient) -> SendResult:
    """Post one comment and return its id."""
    target = task_id(comment.task_ref)
    if not target.isdigit():
        raise PermanentFailure("the comment names no Bitrix24 task")
    bitrix = client.Bitrix24Client(http, integration)
    if not bitrix.can_call:
        raise PermanentFailure(f"integration {integration.key} has no Bitrix24 credentials to write with: give an "
                               "inbound webhook (credentials.webhook_url) or an app's tokens")
    answer = bitrix.comment(target, comment.text, idempotency_key=comment.idempotency_key)
    comment_id = answer.get("id")
    return SendResult(external_id=str(comment_id) if comment_id not in (None, "", False) else None)
