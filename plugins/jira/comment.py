"""Write-back: a comment on the Jira issue when billing acts on its milestone
(draft invoice, invoice issued, invoice paid), posted by the outbox
dispatcher through ``jalon_source_comment``.

Cloud: REST API v3 with an Atlassian Document Format body, basic auth with
``credentials.email`` + ``credentials.api_token``. Data Center: REST API v2
with a plain body and a personal access token (``credentials.pat``). Jira's
answers (401, 404, 429, 5xx...) become the dispatcher's decisions in the
connector; only what Jira cannot be asked without is checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from jalon.connector.plugin import Comment, IntegrationView, PermanentFailure, RestClient, SendResult

from . import client

VERSION_PREFIX = "version:"


def targets(task_ref: str) -> Sequence[str] | None:
    """A released version completes milestones but is no issue: nothing to comment on."""
    return [] if task_ref.startswith(VERSION_PREFIX) else None


def post(integration: IntegrationView, comment: Comment, http: RestClient) -> SendResult:
    """Post one comment and return its id."""
    if not comment.task_ref:
        raise PermanentFailure("the comment names no Jira issue")
    if not integration.base_url:
        raise PermanentFailure(f"integration {integration.key} has no base_url (the Jira site)")
    jira = client.JiraClient(http, integration)
    if jira.http.auth is None:
        needed = ("credentials.pat" if client.flavour(integration) == client.DATACENTER
                  else "credentials.email and credentials.api_token")
        raise PermanentFailure(f"integration {integration.key} has no {needed} to write to Jira")
    answer = client.post_comment(jira, comment.task_ref, comment.text)
    comment_id = answer.get("id")
    return SendResult(external_id=str(comment_id) if comment_id is not None else None)
