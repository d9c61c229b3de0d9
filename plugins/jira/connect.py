"""Connecting in minutes: ``jalon integrations connect jira ...`` creates the
integration, then this module registers the admin webhook in Jira through
``jalon_source_connect``: the events billing needs, a JQL filter on the mapped
projects, and the integration's generated secret (Jira signs every delivery
with it: ``X-Hub-Signature: sha256=...``)."""

from __future__ import annotations

from collections.abc import Sequence

from jalon.connector.plugin import IntegrationView, PermanentFailure, RemoteError, RestClient

from . import client

EVENTS: tuple[str, ...] = (
    "jira:issue_updated", "worklog_created", "worklog_updated", "worklog_deleted",
    "jira:version_released", "jira:issue_deleted",
)


def projects_jql(projects: Sequence[str]) -> str | None:
    """``project in (P1, P2)``, each key quoted; None (every project) when there are none."""
    if not projects:
        return None
    quoted = ", ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in projects)
    return f"project in ({quoted})"


def register(integration: IntegrationView, webhook_url: str, projects: Sequence[str], http: RestClient) -> list[str]:
    if not integration.secrets:
        raise PermanentFailure(f"integration {integration.key} has no secret to give Jira")
    jira = client.JiraClient(http, integration)
    if jira.http.auth is None:
        raise PermanentFailure("admin credentials are needed to register the webhook (--email and --api-token)")
    jql = projects_jql(projects)
    secret = integration.secrets[0]
    try:
        answer = client.register_webhook(jira, name=f"jalon {integration.key}", url=webhook_url, events=EVENTS,
                                         jql=jql, secret=secret)
    except RemoteError as error:
        raise PermanentFailure(_refusal(error, secret)) from None
    where = answer.get("self") or answer.get("id")
    lines = [f"webhook registered in Jira{f' ({where})' if where else ''}: {webhook_url}",
             f"events: {', '.join(EVENTS)}",
             f"filter: {jql}" if jql else "filter: none (every project: map projects to narrow it)",
             "signed with the integration's secret (X-Hub-Signature: sha256=...)"]
    return lines


def _refusal(error: RemoteError, secret: str) -> str:
    """Why Jira refused, with its own messages, never the secret."""
    reasons = {401: "Jira refused the credentials (an administrator's e-mail and API token are needed)",
               403: "these credentials may not manage webhooks (Jira administrator permission needed)",
               409: "Jira already has a conflicting webhook"}
    text = reasons.get(error.status or 0, f"Jira refused the webhook ({error})")
    details: list[str] = []
    response = error.response
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            details += [str(m) for m in body.get("errorMessages") or []]
            details += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()] \
                if isinstance(body.get("errors"), dict) else []
            if body.get("message"):
                details.append(str(body["message"]))
    if details:
        text += ": " + "; ".join(details)
    return text.replace(secret, "********") if secret else text
