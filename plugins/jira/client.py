"""Jira's REST API, thin: URL constants and one small method per endpoint, on
top of the connector's :class:`~jalon.connector.net.http.RestClient` (timeouts,
retries on 429/5xx honouring Retry-After, typed errors).

Cloud speaks REST v3, Data Center v2 (``integration.settings['flavour']``,
``cloud`` by default). Cloud authenticates with the e-mail and API token of
``integration.credentials`` (``email``, ``api_token``), Data Center with a
personal access token (``pat``).

Errors are the connector's: ``Unauthorized`` (401/403), ``NotFound`` (404),
``RateLimited`` (429, ``retry_after``), ``Unavailable`` (5xx, timeouts),
``BadResponse`` (not the JSON expected).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jalon.connector.plugin import Auth, BadResponse, BasicAuth, BearerAuth, IntegrationView, RestClient

CLOUD = "cloud"
DATACENTER = "datacenter"
API_ROOT = {CLOUD: "rest/api/3", DATACENTER: "rest/api/2"}

ISSUE_URL = "{api}/issue/{issue}"
PROJECT_URL = "{api}/project/{project}"

ISSUE_FIELDS: tuple[str, ...] = ("project", "issuetype", "labels", "fixVersions", "status", "summary")


def flavour(integration: IntegrationView) -> str:
    value = str(integration.settings.get("flavour") or CLOUD).lower()
    return DATACENTER if value in (DATACENTER, "server", "dc") else CLOUD


def api_root(integration: IntegrationView) -> str:
    return API_ROOT[flavour(integration)]


def auth_for(integration: IntegrationView) -> Auth | None:
    """How REST calls authenticate: a personal access token on Data Center,
    the e-mail and API token on Cloud; None without credentials."""
    credentials = integration.credentials or {}
    if flavour(integration) == DATACENTER and credentials.get("pat"):
        return BearerAuth(str(credentials["pat"]))
    email, token = credentials.get("email"), credentials.get("api_token")
    if email and token:
        return BasicAuth(str(email), str(token))
    if credentials.get("pat"):
        return BearerAuth(str(credentials["pat"]))
    return None


@dataclass(frozen=True, slots=True)
class Issue:
    """What billing needs of an issue."""

    id: str
    key: str
    project_key: str
    issue_type: str | None
    labels: tuple[str, ...]
    fix_versions: tuple[str, ...]
    status: str | None
    status_category: str | None
    summary: str | None
    self_url: str | None


def issue_from_json(data: Any) -> Issue:
    """An :class:`Issue` from a REST answer or a webhook's ``issue`` object."""
    if not isinstance(data, Mapping):
        raise BadResponse("the issue is not a JSON object")
    fields = data.get("fields")
    if not isinstance(fields, Mapping):
        raise BadResponse("the issue has no fields")
    project = fields.get("project")
    if not isinstance(project, Mapping) or not project.get("key") or not data.get("key"):
        raise BadResponse("the issue has no key or no project key")
    status = fields.get("status") if isinstance(fields.get("status"), Mapping) else {}
    category = status.get("statusCategory") if isinstance(status.get("statusCategory"), Mapping) else {}
    issuetype = fields.get("issuetype") if isinstance(fields.get("issuetype"), Mapping) else {}
    versions = fields.get("fixVersions") or []
    return Issue(
        id=str(data.get("id") or ""),
        key=str(data["key"]),
        project_key=str(project["key"]),
        issue_type=issuetype.get("name"),
        labels=tuple(str(label) for label in (fields.get("labels") or [])),
        fix_versions=tuple(str(v.get("name")) for v in versions if isinstance(v, Mapping) and v.get("name")),
        status=status.get("name"),
        status_category=category.get("key"),
        summary=fields.get("summary"),
        self_url=data.get("self"),
    )


class JiraClient:
    """One integration's Jira, through the connector's REST client (which
    caches look-ups for a few minutes: a worklog burst on one issue costs one
    GET, and a relabelled issue is seen again within minutes)."""

    def __init__(self, http: RestClient, integration: IntegrationView):
        self.http = http.using(auth_for(integration))
        self.integration = integration
        self.api = api_root(integration)

    def get_issue(self, issue_id_or_key: str, fields: Sequence[str] = ISSUE_FIELDS) -> Issue:
        """``GET /rest/api/{3|2}/issue/{id}?fields=...``, cached."""
        url = ISSUE_URL.format(api=self.api, issue=quote(str(issue_id_or_key), safe=""))
        return self.http.get_cached(url, params={"fields": ",".join(fields)}, parse=issue_from_json)

    def get_project_key(self, project_id: str) -> str:
        """``GET /rest/api/{3|2}/project/{id}`` -> the project's key, cached."""
        url = PROJECT_URL.format(api=self.api, project=quote(str(project_id), safe=""))
        return self.http.get_cached(url, parse=_project_key)


def _project_key(data: Any) -> str:
    if not isinstance(data, Mapping) or not data.get("key"):
        raise BadResponse("the project has no key")
    return str(data["key"])


# --- endpoints added by the write-back and reconciliation parts go below ----------------

COMMENT_URL = "{api}/issue/{issue}/comment"
SEARCH_JQL_CLOUD = "rest/api/3/search/jql"  # Cloud: paged by nextPageToken
SEARCH_DATACENTER = "rest/api/2/search"  # Data Center: paged by startAt
WORKLOGS_UPDATED_URL = "{api}/worklog/updated"
WORKLOGS_DELETED_URL = "{api}/worklog/deleted"
WORKLOG_LIST_URL = "{api}/worklog/list"
ADMIN_WEBHOOKS_URL = "rest/webhooks/1.0/webhook"
SEARCH_FIELDS: tuple[str, ...] = ("status", "labels", "issuetype", "project", "statuscategorychangedate", "updated")
WORKLOG_LIST_MAX_IDS = 1000
MAX_PAGES = 50
PAGE_SIZE = 100


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format body: one paragraph per line."""
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in lines]}


def post_comment(jira: JiraClient, issue_key: str, text: str) -> Mapping[str, Any]:
    """``POST /rest/api/3/issue/{key}/comment`` with an ADF body on Cloud; v2 with a plain body on Data Center."""
    body: Any = adf(text) if flavour(jira.integration) == CLOUD else text
    url = COMMENT_URL.format(api=jira.api, issue=quote(issue_key, safe=""))
    answer = jira.http.post_json(url, {"body": body})
    if not isinstance(answer, Mapping):
        raise BadResponse("the comment answer is not a JSON object", status=201)
    return answer


def search_issues(jira: JiraClient, jql: str, fields: Sequence[str] = SEARCH_FIELDS,
                  page_size: int = PAGE_SIZE) -> list[Mapping[str, Any]]:
    """Every issue matching ``jql`` (``GET /rest/api/3/search/jql`` on Cloud,
    paged by ``nextPageToken``; ``/rest/api/2/search`` on DC, by ``startAt``)."""
    params: dict[str, Any] = {"jql": jql, "fields": ",".join(fields)}
    if flavour(jira.integration) == CLOUD:
        return list(jira.http.paginate_cursor(
            SEARCH_JQL_CLOUD, items="issues", params={**params, "maxResults": page_size}, max_pages=MAX_PAGES,
            next_page=lambda page: None if page.get("isLast", True) or not page.get("nextPageToken")
            else {"nextPageToken": page["nextPageToken"]}))
    return list(jira.http.paginate_offset(SEARCH_DATACENTER, items="issues", params=params, page_size=page_size,
                                          max_pages=MAX_PAGES))


def _worklog_changes(jira: JiraClient, template: str, since_ms: int) -> list[Mapping[str, Any]]:
    asked = [since_ms]

    def following(page: Mapping[str, Any]) -> dict[str, Any] | None:
        until = page.get("until")
        if page.get("lastPage", True) or until is None or int(until) <= asked[-1]:
            return None
        asked.append(int(until))
        return {"since": int(until)}

    return list(jira.http.paginate_cursor(template.format(api=jira.api), items="values", params={"since": since_ms},
                                          next_page=following, max_pages=MAX_PAGES))


def updated_worklogs(jira: JiraClient, since_ms: int) -> list[Mapping[str, Any]]:
    """``GET /worklog/updated?since=<ms>``: ``[{"worklogId", "updatedTime"}, ...]``."""
    return _worklog_changes(jira, WORKLOGS_UPDATED_URL, since_ms)


def deleted_worklogs(jira: JiraClient, since_ms: int) -> list[Mapping[str, Any]]:
    """``GET /worklog/deleted?since=<ms>``: ``[{"worklogId", "updatedTime"}, ...]``."""
    return _worklog_changes(jira, WORKLOGS_DELETED_URL, since_ms)


def list_worklogs(jira: JiraClient, ids: Sequence[int]) -> list[Mapping[str, Any]]:
    """``POST /worklog/list {"ids": [...]}`` (1000 ids a call): the worklogs themselves."""
    worklogs: list[Mapping[str, Any]] = []
    for start in range(0, len(ids), WORKLOG_LIST_MAX_IDS):
        answer = jira.http.post_json(WORKLOG_LIST_URL.format(api=jira.api),
                                     {"ids": list(ids[start:start + WORKLOG_LIST_MAX_IDS])})
        if not isinstance(answer, list):
            raise BadResponse("the worklog list answer is not a JSON list")
        worklogs.extend(w for w in answer if isinstance(w, Mapping))
    return worklogs


def register_webhook(jira: JiraClient, *, name: str, url: str, events: Sequence[str], jql: str | None,
                     secret: str) -> Mapping[str, Any]:
    """``POST /rest/webhooks/1.0/webhook``: an admin webhook signed with ``secret``."""
    body: dict[str, Any] = {"name": name, "url": url, "events": list(events), "excludeBody": False, "secret": secret}
    if jql:
        body["filters"] = {"issue-related-events-section": jql}
    answer = jira.http.post_json(ADMIN_WEBHOOKS_URL, body)
    return answer if isinstance(answer, Mapping) else {}
