"""Connecting in minutes: ``jalon integrations connect clickup ...`` creates
the integration, then this module registers its webhook in the ClickUp
Workspace (``POST /api/v2/team/{team_id}/webhook``) through
``jalon_source_connect``: the events billing needs, narrowed to the mapped
location when there is exactly one.

ClickUp generates the secret it signs deliveries with (``X-Signature``) and
answers the registration with it: it is handed back to the connector
(:class:`~jalon.connector.plugin.Connected`), which stores it as the
integration's secret and never prints it.

``taskUpdated`` is left out on purpose: ClickUp sends it beside the granular
events for the same change, so it would only double the deliveries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jalon.connector.plugin import (
    Connected,
    IntegrationView,
    PermanentFailure,
    RemoteError,
    RestClient,
)

from . import client

EVENTS: tuple[str, ...] = ("taskStatusUpdated", "taskTimeTrackedUpdated", "taskDeleted")
# a mapped location -> the webhook's filter on it
FILTERS = {"space": "space_id", "folder": "folder_id", "list": "list_id"}


def parse_location(ref: str) -> tuple[str, str]:
    """``list:123`` -> ``("list", "123")``; PermanentFailure for anything else."""
    kind, sep, ident = str(ref).partition(":")
    if not sep or kind not in FILTERS or not ident.strip():
        raise PermanentFailure(f"{ref!r} is not a ClickUp location: projects are list:<id>, folder:<id> or "
                               "space:<id>")
    return kind, ident.strip()


def location_filter(projects: Sequence[str]) -> tuple[dict[str, Any], str]:
    """The webhook's location filter and the line that tells the admin about it.
    ClickUp filters a webhook on one location: with several, none."""
    refs = list(dict.fromkeys(projects))
    parsed = [parse_location(ref) for ref in refs]
    if not parsed:
        return {}, "filter: none (the whole Workspace: map a list, folder or space to narrow it)"
    if len(parsed) == 1:
        kind, ident = parsed[0]
        return {FILTERS[kind]: int(ident) if ident.isdigit() else ident}, f"filter: {kind} {ident}"
    return {}, (f"filter: none (ClickUp narrows a webhook to one location and {len(refs)} are mapped: "
                f"{', '.join(refs)}; deliveries about other locations are ignored)")


def register(integration: IntegrationView, webhook_url: str, projects: Sequence[str],
             http: RestClient) -> Connected:
    team_id = str(integration.settings.get("team_id") or "").strip()
    if not team_id:
        raise PermanentFailure("the ClickUp Workspace id is needed to register the webhook (--team-id)")
    filters, filter_line = location_filter(projects)
    clickup = client.ClickUpClient(http, integration)
    if clickup.http.auth is None:
        raise PermanentFailure("a ClickUp token is needed to register the webhook (--api-token pk_...)")
    try:
        answer = clickup.create_webhook(team_id, webhook_url, EVENTS, **filters)
    except RemoteError as error:
        raise PermanentFailure(_refusal(error, team_id, _hidden(integration))) from None
    webhook = answer.get("webhook") if isinstance(answer.get("webhook"), Mapping) else {}
    webhook_id = answer.get("id") or webhook.get("id")
    secret = webhook.get("secret") or answer.get("secret")
    if not isinstance(secret, str) or not secret:
        raise PermanentFailure(f"ClickUp registered webhook {webhook_id or '(no id)'} but gave no secret to verify "
                               "its deliveries with: delete it in ClickUp and run the command again")
    lines = [f"webhook registered in ClickUp{f' ({webhook_id})' if webhook_id else ''}: {webhook_url}",
             f"events: {', '.join(EVENTS)}",
             filter_line,
             "signed with the secret ClickUp generated for this webhook (X-Signature)",
             "each run registers a new webhook: delete older ones pointing at this URL in ClickUp"]
    return Connected(lines=lines, secret=secret)


def _hidden(integration: IntegrationView) -> tuple[str, ...]:
    credentials = integration.credentials or {}
    tokens = (str(credentials.get(name) or "") for name in ("api_token", "access_token"))
    return tuple(value for value in (*tokens, *integration.secrets) if value)


def _refusal(error: RemoteError, team_id: str, hidden: Sequence[str]) -> str:
    """Why ClickUp refused, with its own words (``err``, ``ECODE``), never a token or secret."""
    status = error.status
    if status == 401:
        text = (f"ClickUp refused the token, or it has no access to Workspace {team_id} (a personal token pk_... "
                "of a member of that Workspace is needed)")
    elif status == 403:
        text = f"this token may not manage the webhooks of Workspace {team_id}"
    elif status == 404:
        text = f"ClickUp knows no Workspace {team_id}"
    elif status is None or status == 429 or status >= 500:
        text = f"ClickUp could not be reached or is busy ({error}): run the command again later"
    else:
        text = f"ClickUp refused the webhook ({error})"
    response = error.response
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping) and body.get("err"):
            text += f": {body['err']}" + (f" ({body['ECODE']})" if body.get("ECODE") else "")
    for value in sorted(set(hidden), key=len, reverse=True):
        text = text.replace(value, "********")
    return text
