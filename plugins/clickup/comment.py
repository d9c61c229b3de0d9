"""Write-back: a comment on the ClickUp task when billing acts on its
milestone (draft invoice, invoice issued, invoice paid), posted by the outbox
dispatcher through ``jalon_source_comment``.

``POST /api/v2/task/{id}/comment`` with the text and ``notify_all: false``,
with the integration's token. ClickUp's answers (401, 403, 404, 429, 5xx...)
become the dispatcher's decisions in the connector (401, 403, 404, another
4xx: failed; 429, 5xx, timeouts: later, after the wait ClickUp asked); only
what ClickUp cannot be asked without is checked here. ClickUp has no
idempotency key for comments: a 2xx whose body is unreadable counts as sent.
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


def targets(task_ref: str) -> Sequence[str]:
    """Every ClickUp reference jalon bills on is a task: the comment goes on it."""
    return [task_ref] if task_ref else []


def post(integration: IntegrationView, comment: Comment, http: RestClient) -> SendResult:
    """Post one comment and return its id."""
    if not comment.task_ref:
        raise PermanentFailure("the comment names no ClickUp task")
    clickup = client.ClickUpClient(http, integration)
    if clickup.http.auth is None:
        raise PermanentFailure(f"integration {integration.key} has no credentials.api_token (or "
                               "credentials.access_token) to write to ClickUp")
    answer = clickup.post_comment(comment.task_ref, comment.text)
    comment_id = answer.get("id")
    return SendResult(external_id=str(comment_id) if comment_id not in (None, "") else None)
