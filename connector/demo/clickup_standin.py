"""The demo's stand-in for ClickUp: the deliveries a ClickUp webhook sends
(signed with the secret ClickUp returned when the webhook was created), and a
tiny local ClickUp REST API (v2) that answers what the plugin asks: a task
(its list, folder, space, status and type), a time entry, the tasks of a list
that changed lately, a space's folders and lists and a Workspace's time
entries (reconciliation), the comment posted back, and the registration of a
webhook (``jalon integrations connect clickup``).

It records every request (method, path, query) so that tests can say what
jalon asked, and can answer 429 when told to, as ClickUp does when a token's
quota is spent (``X-RateLimit-Reset``: the Unix time its window resets).

This plays the PM tool's part over real HTTP; it imports nothing of the
ClickUp plugin, which is found, as always, through the ``jalon`` entry points.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import math
import secrets
import string
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from jalon.connector.demo.standin import serving

TEAM_ID = "9012345"  # the Workspace (team_id in API v2)
WEBHOOK_ID = "4b1f0c9e-2d7a-4a53-9a55-0c1c2d3e4f50"
SPACE_ID = "9"
FOLDER_ID = "55"
APP_LIST_ID = "901"  # the mobile app's list, in folder 55: its milestones are a fixed price
SUPPORT_LIST_ID = "902"  # a list of space 9 outside any folder: the time tracked there is T&M
HIDDEN_FOLDER_ID = "90090"  # what ClickUp calls the folder of a folderless list
MILESTONE_TASK_ID = "86c0app01"
SECOND_MILESTONE_TASK_ID = "86c0app02"
SUPPORT_TASK_ID = "86c0sup07"
MILESTONE_ITEM_ID = 1  # custom_item_id of ClickUp's built-in "Milestone" task type
PAGE_SIZE = 100  # tasks per page, as ClickUp pages them

ALICE = {"id": 81941, "username": "Alice Martin", "email": "alice@atelier.example", "color": "#7b68ee",
         "initials": "AM", "profilePicture": None}
BOB = {"id": 81942, "username": "Bob Durand", "email": "bob@atelier.example", "color": "#5f7c8a",
       "initials": "BD", "profilePicture": None}

IN_REVIEW = {"status": "en recette", "color": "#7C4DFF", "type": "custom", "orderindex": 2}
DELIVERED = {"status": "Livré", "color": "#6bc950", "type": "closed", "orderindex": 3}
IN_PROGRESS = {"status": "en cours", "color": "#f9d900", "type": "custom", "orderindex": 1}

FOLDER = {"id": FOLDER_ID, "name": "Lumière", "hidden": False, "access": True}
HIDDEN_FOLDER = {"id": HIDDEN_FOLDER_ID, "name": "hidden", "hidden": True, "access": True}
LISTS = {
    APP_LIST_ID: {"id": APP_LIST_ID, "name": "Application mobile", "folder": FOLDER},
    SUPPORT_LIST_ID: {"id": SUPPORT_LIST_ID, "name": "Support data", "folder": HIDDEN_FOLDER},
}
TimeKind = Literal["created", "edited", "deleted"]


def millis(when: datetime) -> str:
    """Unix milliseconds as ClickUp sends them: a string."""
    return str(int(when.timestamp() * 1000))


def signed(secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery: ``X-Signature`` is the hex
    HMAC-SHA256 of the raw body, keyed with the webhook's secret."""
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json",
                  "X-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


# --- deliveries ------------------------------------------------------------------------------


def status_updated(when: datetime, *, task_id: str = MILESTONE_TASK_ID, history_id: str = "4212000000000000001",
                   before: dict[str, Any] = IN_REVIEW, after: dict[str, Any] = DELIVERED,
                   list_id: str = APP_LIST_ID, user: dict[str, Any] = ALICE) -> dict[str, Any]:
    """``taskStatusUpdated``: the milestone task moved from « en recette » to
    the custom closed status « Livré ». Only ids: no list, no task type."""
    return {
        "event": "taskStatusUpdated",
        "history_items": [{
            "id": history_id, "type": 1, "date": millis(when), "field": "status", "parent_id": list_id,
            "data": {"status_type": after["type"]}, "source": None, "user": dict(user),
            "before": dict(before), "after": dict(after),
        }],
        "task_id": task_id,
        "team_id": TEAM_ID,
        "webhook_id": WEBHOOK_ID,
    }


def as_task_updated(payload: dict[str, Any]) -> dict[str, Any]:
    """The generic ``taskUpdated`` ClickUp sends beside a granular event for the
    same change: the same history items."""
    return {**copy.deepcopy(payload), "event": "taskUpdated"}


def _interval(interval_id: str, start: datetime, spent_ms: int, added: datetime) -> dict[str, Any]:
    return {"id": interval_id, "start": millis(start), "end": str(int(millis(start)) + spent_ms),
            "time": str(spent_ms), "source": "clickup", "date_added": millis(added)}


def time_tracked(kind: TimeKind, when: datetime, *, interval_id: str, spent_ms: int, history_id: str,
                 start: datetime | None = None, previous_ms: int | None = None, task_id: str = SUPPORT_TASK_ID,
                 list_id: str = SUPPORT_LIST_ID, user: dict[str, Any] = BOB) -> dict[str, Any]:
    """``taskTimeTrackedUpdated``: a time entry created, edited (``previous_ms``
    before) or deleted, durations and instants in milliseconds, as strings."""
    start = start or when - timedelta(milliseconds=spent_ms)
    now = _interval(interval_id, start, spent_ms, when)
    before = None if kind == "created" else _interval(interval_id, start, previous_ms or spent_ms, start)
    after = None if kind == "deleted" else now
    return {
        "event": "taskTimeTrackedUpdated",
        "history_items": [{
            "id": history_id, "type": 1, "date": millis(when), "field": "time_spent", "parent_id": list_id,
            "data": {"total_time": str(spent_ms if after else 0), "rollup_time": str(spent_ms if after else 0)},
            "source": None, "user": dict(user), "before": before, "after": after,
        }],
        "task_id": task_id,
        "team_id": TEAM_ID,
        "data": {"description": f"Time Tracking {kind.capitalize()}", "interval_id": interval_id},
        "webhook_id": WEBHOOK_ID,
    }


# --- the REST API ----------------------------------------------------------------------------


def task(task_id: str, name: str, *, list_id: str, status: dict[str, Any], updated: datetime,
         milestone: bool = False, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    """A task as ``GET /task/{id}`` gives it (the parts jalon reads, and some others)."""
    lst = LISTS[list_id]
    stamp = millis(updated)
    return {
        "id": task_id, "custom_id": None, "custom_item_id": MILESTONE_ITEM_ID if milestone else 0, "name": name,
        "text_content": "", "description": "", "status": dict(status), "orderindex": "1.00000000000000000000",
        "date_created": stamp, "date_updated": stamp, "date_closed": None, "date_done": None, "archived": False,
        "creator": dict(ALICE), "assignees": [], "watchers": [], "checklists": [], "custom_fields": [],
        "tags": [{"name": tag, "tag_fg": "#fff", "tag_bg": "#7b68ee", "creator": ALICE["id"]} for tag in tags],
        "parent": None, "priority": None, "due_date": None, "start_date": None, "points": None,
        "time_estimate": None, "time_spent": 0,
        "list": {"id": list_id, "name": lst["name"], "access": True},
        "project": dict(lst["folder"]), "folder": dict(lst["folder"]),
        "space": {"id": SPACE_ID}, "team_id": TEAM_ID, "url": f"https://app.clickup.com/t/{task_id}",
        "sharing": {"public": False}, "permission_level": "create",
    }


@dataclass(frozen=True)
class Call:
    """A request the stand-in received."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None


class _ClickUpApi(BaseHTTPRequestHandler):
    server: ClickUpSite  # type: ignore[assignment]

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        site = self.server
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        authorization = self.headers.get("Authorization")
        with site.lock:
            site.requests.append(Call(method, path, query, authorization))
            if site.limited > 0:
                site.limited -= 1
                self._answer(429, {"err": "Rate limit reached", "ECODE": "APP_002"}, headers={
                    "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                    # whole Unix seconds, as ClickUp sends it: the window resets in one to two seconds
                    "X-RateLimit-Reset": str(math.ceil(time.time()) + 1)})
                return
            if not authorization or (site.token is not None and authorization != site.token):
                self._answer(401, {"err": "Token invalid", "ECODE": "OAUTH_025"})
                return
            if not path.startswith("/api/v2/"):
                self._answer(404, {"err": "Route not found", "ECODE": "APP_001"})
                return
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                self._answer(400, {"err": "Body is not JSON", "ECODE": "INPUT_001"})
                return
            status, payload = site.route(method, path.removeprefix("/api/v2/").split("/"), query, body)
        self._answer(status, payload)

    def _answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:  # quiet
        pass


_NOT_FOUND = (404, {"err": "Route not found", "ECODE": "APP_001"})
_TEAM_NOT_AUTHORIZED = (401, {"err": "Team not authorized", "ECODE": "OAUTH_027"})


class ClickUpSite(ThreadingHTTPServer):
    """A local ClickUp on a free loopback port, with a little state: its tasks
    (two Milestone tasks of the app's list, a task of the support list, none
    changed lately),
    time entries, the comments posted, the webhooks created, and every request
    received (``requests``). ``token``, when set, is the only ``Authorization``
    accepted (otherwise any). ``rate_limit(n)``: the next ``n`` requests are
    answered 429."""

    def __init__(self, *, token: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _ClickUpApi)
        self.site = f"http://127.0.0.1:{self.server_address[1]}"
        self.api = f"{self.site}/api/v2"  # an integration's base_url
        self.token = token
        self.lock = threading.Lock()
        self.tasks: dict[str, dict[str, Any]] = {}
        self.time_entries: dict[str, dict[str, Any]] = {}
        self.comments: list[tuple[str, dict[str, Any]]] = []
        self.webhooks: list[dict[str, Any]] = []
        self.requests: list[Call] = []
        self.limited = 0
        long_ago = datetime.now(UTC) - timedelta(days=30)
        for value in (
            task(MILESTONE_TASK_ID, "Lancement de l'application", list_id=APP_LIST_ID, status=IN_REVIEW,
                 updated=long_ago, milestone=True),
            task(SECOND_MILESTONE_TASK_ID, "Recette utilisateurs", list_id=APP_LIST_ID, status=IN_REVIEW,
                 updated=long_ago, milestone=True),
            task(SUPPORT_TASK_ID, "Pipeline de facturation", list_id=SUPPORT_LIST_ID, status=IN_PROGRESS,
                 updated=long_ago),
        ):
            self.tasks[value["id"]] = value

    # --- what happens in ClickUp ---

    def put_task(self, value: dict[str, Any]) -> None:
        with self.lock:
            self.tasks[value["id"]] = copy.deepcopy(value)

    def complete(self, task_id: str, when: datetime, status: dict[str, Any] = DELIVERED) -> None:
        """The task moves to a done or closed status (no webhook is sent by this)."""
        with self.lock:
            found = self.tasks[task_id]
            found["status"] = dict(status)
            found["date_updated"] = millis(when)
            found["date_done"] = millis(when)
            if status["type"] == "closed":
                found["date_closed"] = millis(when)

    def track(self, interval_id: str, task_id: str, *, start: datetime, spent_ms: int,
              user: dict[str, Any] = BOB, description: str = "") -> None:
        """A time entry created, or edited when it exists."""
        with self.lock:
            found = self.tasks[task_id]
            folder = found["folder"]
            self.time_entries[interval_id] = {
                "id": interval_id,
                "task": {"id": task_id, "name": found["name"], "status": dict(found["status"]), "custom_type": None},
                "wid": TEAM_ID, "user": dict(user), "billable": True,
                "start": millis(start), "end": str(int(millis(start)) + spent_ms), "duration": str(spent_ms),
                "description": description, "tags": [], "source": "clickup", "at": millis(start),
                "is_locked": False,
                "task_location": {"list_id": found["list"]["id"], "folder_id": folder["id"], "space_id": SPACE_ID},
                "task_url": found["url"],
            }

    def untrack(self, interval_id: str) -> None:
        with self.lock:
            self.time_entries.pop(interval_id, None)

    def rate_limit(self, times: int = 1) -> None:
        """The next ``times`` requests are answered 429 (X-RateLimit-Reset one to two seconds on)."""
        with self.lock:
            self.limited = times

    def calls(self, method: str | None = None, prefix: str = "") -> list[Call]:
        """The requests received, those of ``method`` whose path starts with ``/api/v2/<prefix>``."""
        with self.lock:
            return [call for call in self.requests if (method is None or call.method == method)
                    and call.path.startswith(f"/api/v2/{prefix}")]

    # --- the endpoints (called under the lock) ---

    def route(self, method: str, parts: list[str], query: dict[str, str], body: Any) -> tuple[int, Any]:
        match method, parts:
            case "GET", ["task", task_id]:
                found = self.tasks.get(task_id)
                return (200, copy.deepcopy(found)) if found else (404, {"err": "Task not found, deleted",
                                                                         "ECODE": "ITEM_013"})
            case "POST", ["task", task_id, "comment"]:
                return self._comment(task_id, body)
            case "GET", ["list", list_id, "task"]:
                return self._list_tasks(list_id, query)
            case "GET", ["folder", folder_id, "list"]:
                return 200, {"lists": [self._list(lst) for lst in LISTS.values() if lst["folder"]["id"] == folder_id]}
            case "GET", ["space", space_id, "list"]:  # the lists outside any folder
                return 200, {"lists": [self._list(lst) for lst in LISTS.values()
                                       if space_id == SPACE_ID and lst["folder"]["hidden"]]}
            case "GET", ["space", space_id, "folder"]:
                folders = [{**FOLDER, "override_statuses": False, "task_count": str(len(self.tasks)),
                            "space": {"id": SPACE_ID, "name": "Clients", "access": True},
                            "lists": [self._list(LISTS[APP_LIST_ID])]}] if space_id == SPACE_ID else []
                return 200, {"folders": folders}
            case _, ["team", team_id, *_rest] if team_id != TEAM_ID:
                return _TEAM_NOT_AUTHORIZED
            case "GET", ["team", _, "time_entries"]:
                return 200, {"data": self._entries(query)}
            case "GET", ["team", _, "time_entries", interval_id]:
                found = self.time_entries.get(interval_id)
                return (200, {"data": copy.deepcopy(found)}) if found else (404, {
                    "err": "Time entry not found", "ECODE": "TIMEENTRY_017"})
            case "GET", ["team", _, "webhook"]:
                return 200, {"webhooks": copy.deepcopy(self.webhooks)}
            case "POST", ["team", _, "webhook"]:
                return self._create_webhook(body)
            case "DELETE", ["webhook", webhook_id]:
                self.webhooks = [w for w in self.webhooks if w["id"] != webhook_id]
                return 200, {}
            case "GET", ["user"]:
                return 200, {"user": dict(ALICE)}
            case "GET", ["team"]:
                return 200, {"teams": [{"id": TEAM_ID, "name": "Atelier Numérique", "members": [
                    {"user": {**user, "role": 1 if user is ALICE else 3}} for user in (ALICE, BOB)]}]}
        return _NOT_FOUND

    @staticmethod
    def _list(lst: dict[str, Any]) -> dict[str, Any]:
        return {"id": lst["id"], "name": lst["name"], "folder": dict(lst["folder"]),
                "space": {"id": SPACE_ID, "name": "Clients", "access": True}, "archived": False}

    def _comment(self, task_id: str, body: Any) -> tuple[int, Any]:
        if task_id not in self.tasks:
            return 404, {"err": "Task not found, deleted", "ECODE": "ITEM_013"}
        if not isinstance(body, dict) or not isinstance(body.get("comment_text"), str):
            return 400, {"err": "Comment text required", "ECODE": "COMM_002"}
        self.comments.append((task_id, body))
        return 200, {"id": str(90120000000 + len(self.comments)), "hist_id": str(4212100000000000000
                                                                                 + len(self.comments)),
                     "date": int(time.time() * 1000)}

    def _list_tasks(self, list_id: str, query: dict[str, str]) -> tuple[int, Any]:
        if list_id not in LISTS:
            return 404, {"err": "List not found", "ECODE": "LIST_001"}
        since = int(query.get("date_updated_gt") or 0)
        with_closed = query.get("include_closed") == "true"
        found = [copy.deepcopy(t) for t in self.tasks.values()
                 if t["list"]["id"] == list_id and int(t["date_updated"]) > since
                 and (with_closed or t["status"]["type"] != "closed")]
        page = int(query.get("page") or 0)
        return 200, {"tasks": found[page * PAGE_SIZE:(page + 1) * PAGE_SIZE],
                     "last_page": (page + 1) * PAGE_SIZE >= len(found)}

    def _entries(self, query: dict[str, str]) -> list[dict[str, Any]]:
        """The entries started in the window, of the ``assignee`` users (without
        it, ClickUp answers the token owner's only), at one location if asked."""
        start = int(query.get("start_date") or 0)
        end = int(query.get("end_date") or 2**63)
        users = set(query["assignee"].split(",")) if query.get("assignee") else {str(ALICE["id"])}
        where = {name: query[f"{name}_id"] for name in ("space", "folder", "list") if query.get(f"{name}_id")}
        return [copy.deepcopy(e) for e in self.time_entries.values()
                if start <= int(e["start"]) <= end and str(e["user"]["id"]) in users
                and all(e["task_location"][f"{name}_id"] == value for name, value in where.items())
                and ("task_id" not in query or e["task"]["id"] == query["task_id"])]

    def _create_webhook(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("endpoint") or not isinstance(body.get("events"), list):
            return 400, {"err": "Webhook endpoint and events required", "ECODE": "WH_001"}
        webhook_id = str(uuid.uuid4())
        webhook = {
            "id": webhook_id, "userid": ALICE["id"], "team_id": int(TEAM_ID), "endpoint": body["endpoint"],
            "client_id": "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(32)),
            "events": list(body["events"]), "task_id": None,
            "list_id": body.get("list_id"), "folder_id": body.get("folder_id"), "space_id": body.get("space_id"),
            "health": {"status": "active", "fail_count": 0},
            "secret": "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(64)),
        }
        self.webhooks.append(webhook)
        return 200, {"id": webhook_id, "webhook": copy.deepcopy(webhook)}


@contextmanager
def clickup_site(*, token: str | None = None) -> Iterator[ClickUpSite]:
    """A :class:`ClickUpSite` served in a thread, shut down afterwards."""
    with serving(ClickUpSite(token=token), "demo-clickup") as server:
        yield server
