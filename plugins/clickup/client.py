"""ClickUp's REST API v2, thin: URL constants and one small method per
endpoint, on top of the connector's :class:`~jalon.connector.plugin.RestClient`
(timeouts, retries on 429/5xx honouring ``Retry-After`` or ClickUp's
``X-RateLimit-Reset``, typed errors).

Authentication is ``integration.credentials``: a personal token (``api_token``,
``pk_...``) is sent as it is in ``Authorization``, with no scheme; an OAuth
access token (``access_token``) as ``Bearer ...``. ClickUp counts requests per
token (100 a minute on the Free Forever, Unlimited and Business plans): every
client of one token in the process shares one budget of :data:`PER_MINUTE`,
so a reconciliation over many lists spreads its calls instead of bursting.

The API's address is ``integration.base_url`` when it is set (a proxy, a test
double), else :data:`API`. Errors are the connector's: ``Unauthorized``
(401/403), ``NotFound`` (404), ``RateLimited`` (429), ``Unavailable`` (5xx,
timeouts), ``BadResponse`` (not the JSON expected).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from jalon.connector.plugin import (
    Auth,
    BadResponse,
    BearerAuth,
    IntegrationView,
    NotFound,
    RestClient,
)

API = "https://api.clickup.com/api/v2"
# the lowest plan's quota per token (Business Plus and Enterprise allow more)
PER_MINUTE = 100
# ClickUp's page of tasks
PAGE_SIZE = 100
MAX_PAGES = 100

TASK_URL = "{api}/task/{task}"
TASKS_OF_LIST_URL = "{api}/list/{list}/task"
LISTS_OF_FOLDER_URL = "{api}/folder/{folder}/list"
LISTS_OF_SPACE_URL = "{api}/space/{space}/list"  # the space's folderless lists
FOLDERS_OF_SPACE_URL = "{api}/space/{space}/folder"  # each with its lists
TIME_ENTRIES_URL = "{api}/team/{team}/time_entries"
TIME_ENTRY_URL = "{api}/team/{team}/time_entries/{entry}"
COMMENT_URL = "{api}/task/{task}/comment"
WEBHOOKS_URL = "{api}/team/{team}/webhook"
TEAMS_URL = "{api}/team"

LOCATION_FILTERS = ("space_id", "folder_id", "list_id", "task_id")


def auth_for(integration: IntegrationView) -> Auth | None:
    """An OAuth access token as ``Bearer``, a personal token (``pk_...``) bare; None without either."""
    credentials = integration.credentials or {}
    if credentials.get("access_token"):
        return BearerAuth(str(credentials["access_token"]))
    if credentials.get("api_token"):
        return BearerAuth(str(credentials["api_token"]), scheme=None)
    return None


def millis(when: datetime) -> int:
    """A datetime as ClickUp's Unix milliseconds."""
    return int(when.timestamp() * 1000)


def _segment(value: str) -> str:
    return quote(str(value), safe="")


def _task(data: Any) -> dict[str, Any]:
    if not isinstance(data, Mapping) or not data.get("id"):
        raise BadResponse("the task is not a JSON object with an id")
    return dict(data)


def _list_of(data: Any, name: str) -> list[dict[str, Any]]:
    if not isinstance(data, Mapping) or not isinstance(data.get(name), list):
        raise BadResponse(f"the answer has no list of {name!r}")
    return [dict(item) for item in data[name] if isinstance(item, Mapping)]


class ClickUpClient:
    """One integration's ClickUp, through the connector's REST client."""

    def __init__(self, http: RestClient, integration: IntegrationView):
        self.http = http.using(auth_for(integration), per_minute=PER_MINUTE)
        self.integration = integration
        self.api = (integration.base_url or API).rstrip("/")

    def task(self, task_id: str) -> dict[str, Any]:
        """``GET /task/{id}``, remembered a few minutes: the deliveries of one
        change (a status, its time entries) fetch the task once."""
        return self.http.get_cached(TASK_URL.format(api=self.api, task=_segment(task_id)), parse=_task)

    def time_entry(self, team_id: str, entry_id: str) -> dict[str, Any] | None:
        """``GET /team/{team_id}/time_entries/{id}`` -> its ``data``; None when ClickUp has no such entry."""
        url = TIME_ENTRY_URL.format(api=self.api, team=_segment(team_id), entry=_segment(entry_id))
        try:
            answer = self.http.get_json(url, params={"include_location_names": "true"})
        except NotFound:
            return None
        data = answer.get("data") if isinstance(answer, Mapping) else None
        if isinstance(data, list):  # some answers wrap the one entry in a list
            data = next((item for item in data if isinstance(item, Mapping)), None)
            if data is None:
                return None
        if not isinstance(data, Mapping):
            raise BadResponse("the time entry answer has no data object")
        return dict(data)

    def time_entries(self, team_id: str, start: datetime, end: datetime, **filters: Any) -> list[dict[str, Any]]:
        """``GET /team/{team_id}/time_entries?start_date=<ms>&end_date=<ms>``
        with the locations' names, narrowed by ``space_id``, ``folder_id``,
        ``list_id`` or ``task_id`` (one at a time, as ClickUp wants) and by
        ``assignee`` (comma-separated user ids: without it ClickUp answers the
        token owner's entries only)."""
        unknown = set(filters) - {*LOCATION_FILTERS, "assignee"}
        if unknown:
            raise ValueError(f"unknown time entry filters: {', '.join(sorted(unknown))}")
        params: dict[str, Any] = {"start_date": millis(start), "end_date": millis(end),
                                  "include_location_names": "true"}
        params |= {name: value for name, value in filters.items() if value not in (None, "")}
        answer = self.http.get_json(TIME_ENTRIES_URL.format(api=self.api, team=_segment(team_id)), params=params)
        return _list_of(answer, "data")

    def tasks_updated(self, list_id: str, since: datetime) -> Iterator[dict[str, Any]]:
        """Every task of the list updated after ``since``, closed ones and
        subtasks included (``GET /list/{id}/task?date_updated_gt=<ms>&page=N``
        until the last page)."""
        asked = [0]

        def following(page: Mapping[str, Any]) -> dict[str, Any] | None:
            tasks = page.get("tasks") or []
            last = page.get("last_page")
            if last is True or (last is None and len(tasks) < PAGE_SIZE) or not tasks:
                return None
            asked.append(asked[-1] + 1)
            return {"page": asked[-1]}

        params = {"date_updated_gt": millis(since), "include_closed": "true", "subtasks": "true",
                  "archived": "false", "page": 0}
        url = TASKS_OF_LIST_URL.format(api=self.api, list=_segment(list_id))
        for task in self.http.paginate_cursor(url, items="tasks", params=params, next_page=following,
                                              max_pages=MAX_PAGES):
            if isinstance(task, Mapping):
                yield dict(task)

    def folder_lists(self, folder_id: str) -> list[dict[str, Any]]:
        """``GET /folder/{id}/list``: the folder's lists (not archived)."""
        url = LISTS_OF_FOLDER_URL.format(api=self.api, folder=_segment(folder_id))
        return _list_of(self.http.get_json(url, params={"archived": "false"}), "lists")

    def space_lists(self, space_id: str) -> list[dict[str, Any]]:
        """``GET /space/{id}/list``: the space's lists outside any folder."""
        url = LISTS_OF_SPACE_URL.format(api=self.api, space=_segment(space_id))
        return _list_of(self.http.get_json(url, params={"archived": "false"}), "lists")

    def space_folders(self, space_id: str) -> list[dict[str, Any]]:
        """``GET /space/{id}/folder``: the space's folders, each with its ``lists``."""
        url = FOLDERS_OF_SPACE_URL.format(api=self.api, space=_segment(space_id))
        return _list_of(self.http.get_json(url, params={"archived": "false"}), "folders")

    def team_members(self, team_id: str) -> list[str]:
        """The user ids of the Workspace's members (``GET /team``), for the
        time entries of everyone (``assignee``)."""
        for team in _list_of(self.http.get_json(TEAMS_URL.format(api=self.api)), "teams"):
            if str(team.get("id")) == str(team_id):
                members = team.get("members") if isinstance(team.get("members"), list) else []
                ids = (str(m["user"]["id"]) for m in members
                       if isinstance(m, Mapping) and isinstance(m.get("user"), Mapping)
                       and m["user"].get("id") is not None)
                return list(dict.fromkeys(ids))
        raise NotFound(f"GET {self.api.split('/')[2]}: the token has no access to Workspace {team_id}", status=404)

    def post_comment(self, task_id: str, text: str) -> dict[str, Any]:
        """``POST /task/{id}/comment`` without notifying everyone."""
        url = COMMENT_URL.format(api=self.api, task=_segment(task_id))
        answer = self.http.post_json(url, {"comment_text": text, "notify_all": False})
        if not isinstance(answer, Mapping):
            raise BadResponse("the comment answer is not a JSON object", status=200)
        return dict(answer)

    def create_webhook(self, team_id: str, endpoint: str, events: Sequence[str], **location: Any) -> dict[str, Any]:
        """``POST /team/{team_id}/webhook``: ``{"id", "webhook": {..., "secret"}}``
        (ClickUp generates the secret it signs with). ``location``: one of
        ``space_id``, ``folder_id``, ``list_id``, ``task_id``, to narrow it."""
        unknown = set(location) - set(LOCATION_FILTERS)
        if unknown:
            raise ValueError(f"unknown webhook location filters: {', '.join(sorted(unknown))}")
        body: dict[str, Any] = {"endpoint": endpoint, "events": list(events)}
        body |= {name: value for name, value in location.items() if value not in (None, "")}
        answer = self.http.post_json(WEBHOOKS_URL.format(api=self.api, team=_segment(team_id)), body)
        if not isinstance(answer, Mapping):
            raise BadResponse("the webhook answer is not a JSON object", status=200)
        return dict(answer)
