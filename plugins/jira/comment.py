"""Write-back: a comment on the Jira issue when billing acts on its milestone
(draft invoice, invoice issued, invoice paid), posted by the outbox
dispatcher through ``jalon_source_comment``.

Cloud: REST API v3 with an Atlassian Document Format body, basic auth with
``credentials.email`` + ``credentials.api_token``. Data Center: REST API v2
with a plain body and a personal access token (``credentials.pat``).
"""

from __future__ import annotations

from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.net.http import BadResponse, NotFound, RateLimited, RemoteError, RestClient, Unauthorized, Unavailable
from jalon.connector.plugin.types import Comment, IntegrationView, PermanentFailure, RetryLater, SendResult

from . import client

SOURCE = "jira"


@hookimpl
def jalon_source_comment(source: str, integration: IntegrationView, comment: Comment,
                         http: RestClient) -> SendResult | None:
    if source != SOURCE:
        return None
    return post(integration, comment, http)


def post(integration: IntegrationView, comment: Comment, http: RestClient) -> SendResult:
    """Post one comment; map Jira's answers to the dispatcher's decisions."""
    if not comment.task_ref:
        raise PermanentFailure("the comment names no Jira issue")
    if not integration.base_url:
        raise PermanentFailure(f"integration {integration.key} has no base_url (the Jira site)")
    jira = client.JiraClient(http, integration)
    if not jira.headers:
        needed = ("credentials.pat" if client.flavour(integration) == client.DATACENTER
                  else "credentials.email and credentials.api_token")
        raise PermanentFailure(f"integration {integration.key} has no {needed} to write to Jira")
    try:
        answer = client.post_comment(jira, comment.task_ref, comment.text)
    except Unauthorized as error:  # 401, 403: the token or its permissions must be fixed first
        raise PermanentFailure(f"Jira refused the credentials: {error}") from None
    except NotFound as error:
        raise PermanentFailure(f"issue {comment.task_ref} not found: {error}") from None
    except RateLimited as error:
        raise RetryLater(f"Jira rate limit: {error}", after=error.retry_after) from None
    except Unavailable as error:  # 5xx, timeouts, connection errors
        raise RetryLater(str(error), after=error.retry_after) from None
    except BadResponse:  # Jira said 2xx, so the comment exists: posting again would duplicate it
        return SendResult(external_id=None)
    except RemoteError as error:  # another 4xx (400: a body Jira refuses) will not get better
        raise PermanentFailure(str(error)) from None
    comment_id = answer.get("id")
    return SendResult(external_id=str(comment_id) if comment_id is not None else None)

