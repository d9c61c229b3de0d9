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

import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jalon.connector.net.http import BadResponse, RestClient
from jalon.connector.plugin.types import IntegrationView

CLOUD = "cloud"
DATACENTER = "datacenter"
API_ROOT = {CLOUD: "rest/api/3", DATACENTER: "rest/api/2"}

ISSUE_URL = "{api}/issue/{issue}"
PROJECT_URL = "{api}/project/{project}"

ISSUE_FIELDS: tuple[str, ...] = ("project", "issuetype", "labels", "fixVersions", "status", "summary")

# a worklog burst on one issue costs one GET, not one per worklog; short
# enough that a relabelled issue is seen again within minutes
CACHE_TTL_SECONDS = 300.0
CACHE_MAX_ENTRIES = 2048


def flavour(integration: IntegrationView) -> str:
    value = str(integration.settings.get("flavour") or CLOUD).lower()
    return DATACENTER if value in (DATACENTER, "server", "dc") else CLOUD


def api_root(integration: IntegrationView) -> str:
    return API_ROOT[flavour(integration)]


def auth_headers(integration: IntegrationView) -> dict[str, str]:
    """The Authorization header for REST calls (the connector's client carries none)."""
    credentials = integration.credentials or {}
    if flavour(integration) == DATACENTER and credentials.get("pat"):
        return {"Authorization": f"Bearer {credentials['pat']}"}
    email, token = credentials.get("email"), credentials.get("api_token")
    if email and token:
        raw = f"{email}:{token}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
    if credentials.get("pat"):
        return {"Authorization": f"Bearer {credentials['pat']}"}
    return {}


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


class TtlCache:
    """A small thread-safe in-process cache with a time to live and a size bound."""

    def __init__(self, ttl: float = CACHE_TTL_SECONDS, max_entries: int = CACHE_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            expires, value = found
            if expires <= self.clock():
                del self._items[key]
                return None
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = (self.clock() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


ISSUE_CACHE = TtlCache()
PROJECT_CACHE = TtlCache(ttl=3600.0)


class JiraClient:
    """One integration's Jira, through the connector's REST client."""

    def __init__(self, http: RestClient, integration: IntegrationView, *, issue_cache: TtlCache = ISSUE_CACHE,
                 project_cache: TtlCache = PROJECT_CACHE):
        self.http = http
        self.integration = integration
        self.api = api_root(integration)
        self.headers = auth_headers(integration)
        self.issue_cache = issue_cache
        self.project_cache = project_cache

    def _cache_key(self, kind: str, ref: str) -> tuple[str, str, str, str]:
        return (self.integration.key, self.integration.base_url or "", kind, ref)

    def get_issue(self, issue_id_or_key: str, fields: Sequence[str] = ISSUE_FIELDS) -> Issue:
        """``GET /rest/api/{3|2}/issue/{id}?fields=...``, cached per integration and issue."""
        cache_key = self._cache_key("issue:" + ",".join(fields), str(issue_id_or_key))
        cached = self.issue_cache.get(cache_key)
        if cached is not None:
            return cached
        url = ISSUE_URL.format(api=self.api, issue=quote(str(issue_id_or_key), safe=""))
        data = self.http.get_json(url, params={"fields": ",".join(fields)}, headers=self.headers)
        issue = issue_from_json(data)
        self.issue_cache.put(cache_key, issue)
        return issue

    def get_project_key(self, project_id: str) -> str:
        """``GET /rest/api/{3|2}/project/{id}`` -> the project's key, cached."""
        cache_key = self._cache_key("project", str(project_id))
        cached = self.project_cache.get(cache_key)
        if cached is not None:
            return cached
        url = PROJECT_URL.format(api=self.api, project=quote(str(project_id), safe=""))
        data = self.http.get_json(url, headers=self.headers)
        if not isinstance(data, Mapping) or not data.get("key"):
            raise BadResponse("the project has no key")
        key = str(data["key"])
        self.project_cache.put(cache_key, key)
        return key


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


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format body: one paragraph per line."""
    lines = [line for line in text.splitlines() if line.strip()] or [text]
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in lines]}


def post_comment(jira: JiraClient, issue_key: str, text: str) -> Mapping[str, Any]:
    """``POST /rest/api/3/issue/{key}/comment`` with an ADF body on Cloud; v2 with a plain body on Data Center."""
    body: Any = adf(text) if flavour(jira.integration) == CLOUD else text
    url = COMMENT_URL.format(api=jira.api, issue=quote(issue_key, safe=""))
    answer = jira.http.post_json(url, {"body": body}, headers=jira.headers)
    if not isinstance(answer, Mapping):
        raise BadResponse("the comment answer is not a JSON object", status=201)
    return answer


def search_issues(jira: JiraClient, jql: str, fields: Sequence[str] = SEARCH_FIELDS,
                  page_size: int = 100) -> list[Mapping[str, Any]]:
    """Every issue matching ``jql`` (``GET /rest/api/3/search/jql`` on Cloud, ``/rest/api/2/search`` on DC)."""
    cloud = flavour(jira.integration) == CLOUD
    params: dict[str, Any] = {"jql": jql, "fields": ",".join(fields), "maxResults": page_size}
    issues: list[Mapping[str, Any]] = []
    for _ in range(MAX_PAGES):
        if cloud:
            page = jira.http.get_json(SEARCH_JQL_CLOUD, params=params, headers=jira.headers)
        else:
            page = jira.http.get_json(SEARCH_DATACENTER, params={**params, "startAt": len(issues)},
                                      headers=jira.headers)
        if not isinstance(page, Mapping) or not isinstance(page.get("issues"), list):
            raise BadResponse("the search answer has no list of issues")
        issues.extend(page["issues"])
        if cloud:
            if page.get("isLast", True) or not page.get("nextPageToken"):
                break
            params["nextPageToken"] = page["nextPageToken"]
        elif not page["issues"] or len(issues) >= int(page.get("total") or 0):
            break
    return issues


def _worklog_changes(jira: JiraClient, template: str, since_ms: int) -> list[Mapping[str, Any]]:
    values: list[Mapping[str, Any]] = []
    since = since_ms
    for _ in range(MAX_PAGES):
        page = jira.http.get_json(template.format(api=jira.api), params={"since": since}, headers=jira.headers)
        if not isinstance(page, Mapping) or not isinstance(page.get("values"), list):
            raise BadResponse("the worklog changes answer has no list of values")
        values.extend(page["values"])
        until = page.get("until")
        if page.get("lastPage", True) or until is None or int(until) <= since:
            break
        since = int(until)
    return values


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
                                     {"ids": list(ids[start:start + WORKLOG_LIST_MAX_IDS])}, headers=jira.headers)
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
    answer = jira.http.post_json(ADMIN_WEBHOOKS_URL, body, headers=jira.headers)
    return answer if isinstance(answer, Mapping) else {}
