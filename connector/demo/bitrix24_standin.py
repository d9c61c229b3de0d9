"""The demo's stand-in for Bitrix24: the deliveries an outgoing webhook sends
(form-encoded, PHP bracket keys, the application token in
``auth[application_token]``, no signature and no delivery id), and a small
local portal REST API that answers what the plugin asks through an inbound
webhook (``https://<portal>/rest/<user>/<code>/<method>.json``): a task
(``tasks.task.get``), the tasks of groups that changed (``tasks.task.list``),
a task's elapsed time (``task.elapseditem.getlist``, positional
parameters), ``batch`` (up to 50 sub-queries written as query strings with
PHP brackets), the comment posted back (``task.commentitem.add``), the
binding of events (``event.bind``) and a few look-ups (``user.get``,
``user.current``, ``profile``, ``scope``, ``tasks.task.history.list``).

It enforces Bitrix24's limits (``limits.md``): a **leaky bucket** per portal,
whose counter grows by one per request (a ``batch`` is one request) and
drains ``drain`` per second (2, 50 before blocking, for every plan but
Enterprise): past it the request is answered 503
``{"error": "QUERY_LIMIT_EXCEEDED"}`` and does nothing. Optionally the
**resource limit**: each call of a method costs ``method_seconds`` of
execution time, summed per method over ten minutes; past ``operating_limit``
the method is answered 429 ``{"error": "OPERATION_TIME_LIMIT"}`` (a
``batch``'s sub-queries count for their own methods). Every response carries
Bitrix24's ``time`` block. Empty PHP arrays travel as ``[]`` (an empty
``result_error`` of a batch, a task not found), as Bitrix24 sends them.

Every request is recorded (:class:`Call`: method, status, error), with the
rejections counted (``rejected``), so that tests and the bench can say what
jalon asked and that no rejection was left unhandled.

This plays the PM tool's part over real HTTP; it imports nothing of the
Bitrix24 plugin, which is found, as always, through the ``jalon`` entry points.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from jalon.connector.demo.standin import serving

DOMAIN = "atelier.bitrix24.fr"
MEMBER_ID = "d897063e1ce7c5eb9f04b9751eef5915"
APP_TOKEN = "change-me-application-token"  # the outgoing webhook's application token
WEBHOOK_USER = "1"
WEBHOOK_CODE = "k3y5b1tr1x24demo"  # the inbound webhook's secret code
EVENT_HANDLER_ID = "7"
PORTAL_TZ = timezone(timedelta(hours=3))  # the portal's time zone: dates carry its offset

ERP_GROUP_ID = "12"  # the ERP project (a workgroup): its milestone tasks are a fixed price
SUPPORT_GROUP_ID = "14"  # the data support project: its elapsed time is T&M
MILESTONE_TASK_ID = "123"
SECOND_MILESTONE_TASK_ID = "124"
SUPPORT_TASK_ID = "241"

# status codes (tasks/fields.md)
PENDING, IN_PROGRESS, AWAITING_CONTROL, COMPLETED, DEFERRED = "2", "3", "4", "5", "6"

ALICE = {"ID": "1", "NAME": "Alice", "LAST_NAME": "Martin", "EMAIL": "alice@atelier.example", "ACTIVE": True}
BOB = {"ID": "7", "NAME": "Bob", "LAST_NAME": "Durand", "EMAIL": "bob@atelier.example", "ACTIVE": True}
USERS = {user["ID"]: user for user in (ALICE, BOB)}

GROUPS = {ERP_GROUP_ID: "ERP Lumière", SUPPORT_GROUP_ID: "Support data"}

BUCKET_CAPACITY = 50  # requests before the portal blocks (X)
BUCKET_DRAIN = 2.0  # requests a second the counter drops by (Y)
BATCH_LIMIT = 50  # sub-queries in one batch
PAGE_SIZE = 50  # items per page of every list method
OPERATING_WINDOW = 600.0  # the resource limit's ten one-minute baskets

QUERY_LIMIT_EXCEEDED = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
OPERATION_TIME_LIMIT = {"error": "OPERATION_TIME_LIMIT",
                        "error_description": "Method is blocked due to operation time limit."}


def bitrix_date(when: datetime) -> str:
    """A date as the tasks API writes it: ISO 8601 in the portal's time zone, with its offset."""
    return when.astimezone(PORTAL_TZ).replace(microsecond=0).isoformat()


# --- deliveries ------------------------------------------------------------------------------


def form(payload: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a delivery: a flat dict of bracket keys, form-encoded."""
    return urlencode(dict(payload)).encode(), {"Content-Type": "application/x-www-form-urlencoded"}


def _auth(token: str, domain: str, member_id: str) -> dict[str, str]:
    return {"auth[domain]": domain, "auth[client_endpoint]": f"https://{domain}/rest/",
            "auth[server_endpoint]": "https://oauth.bitrix.info/rest/", "auth[member_id]": member_id,
            "auth[application_token]": token}


def task_updated(task_id: str, *, token: str = APP_TOKEN, when: datetime | None = None, domain: str = DOMAIN,
                 member_id: str = MEMBER_ID) -> dict[str, str]:
    """``ONTASKUPDATE``: only the task's id (status, group, dates come from ``tasks.task.get``)."""
    return {"event": "ONTASKUPDATE", "event_handler_id": EVENT_HANDLER_ID,
            "data[FIELDS_BEFORE][ID]": str(task_id), "data[FIELDS_AFTER][ID]": str(task_id),
            "data[IS_ACCESSIBLE_BEFORE]": "undefined", "data[IS_ACCESSIBLE_AFTER]": "undefined",
            "ts": str(int((when or datetime.now(UTC)).timestamp())), **_auth(token, domain, member_id)}


def task_deleted(task_id: str, *, token: str = APP_TOKEN, when: datetime | None = None, domain: str = DOMAIN,
                 member_id: str = MEMBER_ID) -> dict[str, str]:
    """``ONTASKDELETE``: the id before, ``FIELDS_AFTER`` the literal string ``undefined``."""
    return {"event": "ONTASKDELETE", "event_handler_id": EVENT_HANDLER_ID,
            "data[FIELDS_BEFORE][ID]": str(task_id), "data[FIELDS_AFTER]": "undefined",
            "data[IS_ACCESSIBLE_BEFORE]": "undefined", "data[IS_ACCESSIBLE_AFTER]": "undefined",
            "ts": str(int((when or datetime.now(UTC)).timestamp())), **_auth(token, domain, member_id)}


# --- PHP brackets ----------------------------------------------------------------------------

_KEY = re.compile(r"^([^\[\]]*)((?:\[[^\[\]]*\])*)$")


def parse_brackets(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """What PHP's ``parse_str`` makes of decoded pairs: ``a[b][c]=1`` nests,
    ``a[]=1&a[]=2`` appends (a list while every index is ``[]``; ``a[0]=1`` keys
    an object by ``"0"``)."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        found = _KEY.match(name)
        if not found or not found.group(1):
            root[name] = value
            continue
        path = [found.group(1), *re.findall(r"\[([^\[\]]*)\]", found.group(2))]
        node: Any = root
        for part, following in zip(path, [*path[1:], None], strict=True):
            if isinstance(node, list):  # made for "[]" only: append
                node.append(value if following is None else [] if following == "" else {})
                node = node[-1]
                continue
            if part == "":
                part = str(len(node))
            if following is None:
                node[part] = value
                break
            child = node.get(part)
            if isinstance(child, list) and following != "":
                child = {str(i): v for i, v in enumerate(child)}
            if not isinstance(child, (dict, list)):
                child = [] if following == "" else {}
            node[part] = child
            node = child
    return root


def parse_query(query: str) -> dict[str, Any]:
    return parse_brackets(parse_qsl(query, keep_blank_values=True))


# --- the REST API ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A request the stand-in received (a batch's sub-queries are calls of their own, ``batched``)."""

    method: str  # the REST method, e.g. tasks.task.get
    params: Any
    status: int
    error: str | None = None
    batched: bool = False
    at: float = 0.0


class RestError(Exception):
    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class _Bitrix24Api(BaseHTTPRequestHandler):
    server: Bitrix24Portal  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"  # keep-alive: the plugin's session reuses its connection

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        portal = self.server
        started = time.time()
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        found = re.fullmatch(r"/rest/(?:(?P<user>[^/]+)/(?P<code>[^/]+)/)?(?P<method>[A-Za-z0-9_.]+?)(?:\.json)?/?",
                             unquote(parts.path))
        if found is None:
            self._answer(404, {"error": "NOT_FOUND", "error_description": "Not found"})
            return
        method = found.group("method").lower()
        try:
            params = self._params(parts.query, raw)
        except ValueError:
            self._answer(400, {"error": "INVALID_REQUEST", "error_description": "The body cannot be read"})
            return
        status, payload = portal.serve(method, params, user=found.group("user"), code=found.group("code"),
                                       started=started)
        self._answer(status, payload)

    def _params(self, query: str, raw: bytes) -> Any:
        params: Any = parse_query(query) if query else {}
        if not raw:
            return params
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if kind == "application/json":
            body = json.loads(raw)
            if isinstance(body, list):
                return body
            if not isinstance(body, dict):
                raise ValueError("not an object")
            return {**params, **body} if isinstance(params, dict) else body
        return {**params, **parse_query(raw.decode())}

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:  # quiet
        pass


_TASK_FIELDS = {  # the select names (upper case) and the keys tasks.task.* answer with (camelCase)
    "ID": "id", "TITLE": "title", "DESCRIPTION": "description", "STATUS": "status", "REAL_STATUS": "realStatus",
    "GROUP_ID": "groupId", "RESPONSIBLE_ID": "responsibleId", "CREATED_BY": "createdBy",
    "CREATED_DATE": "createdDate", "CHANGED_BY": "changedBy", "CHANGED_DATE": "changedDate",
    "STATUS_CHANGED_BY": "statusChangedBy", "STATUS_CHANGED_DATE": "statusChangedDate", "CLOSED_BY": "closedBy",
    "CLOSED_DATE": "closedDate", "DEADLINE": "deadline", "TIME_SPENT_IN_LOGS": "timeSpentInLogs",
    "TASK_CONTROL": "taskControl", "TAGS": "tags", "PARENT_ID": "parentId",
}
_DEFAULT_SELECT = ("ID", "TITLE", "STATUS", "GROUP_ID", "RESPONSIBLE_ID", "CREATED_BY", "CREATED_DATE",
                   "CHANGED_DATE", "STATUS_CHANGED_DATE", "CLOSED_BY", "CLOSED_DATE")
_DATE_FIELDS = {"CREATED_DATE", "CHANGED_DATE", "STATUS_CHANGED_DATE", "CLOSED_DATE", "DEADLINE",
                "DATE_START", "DATE_STOP"}
_ELAPSED_FIELDS = ("ID", "TASK_ID", "USER_ID", "COMMENT_TEXT", "SECONDS", "MINUTES", "SOURCE", "CREATED_DATE",
                   "DATE_START", "DATE_STOP")
_ELAPSED_PARAMS = ("TASKID", "ORDER", "FILTER", "SELECT", "PARAMS")
_COMMENT_PARAMS = ("TASKID", "FIELDS")


class Bitrix24Portal(ThreadingHTTPServer):
    """A local Bitrix24 portal on a free loopback port, with a little state:
    its groups, tasks (by id, upper-case fields), elapsed items (by id), the
    comments posted, the events bound, every request received (``requests``)
    and the rejections answered (``rejected``: 503 and 429 by status).

    ``limits=False`` turns the leaky bucket off (a demo that should never
    wait); ``capacity`` and ``drain`` set it. ``operating_limit`` (seconds,
    None: off) and ``method_seconds`` (per method, ``default_method_seconds``
    otherwise) set the resource limit. ``block(method, times)``: the next
    ``times`` calls of ``method`` are answered 429 OPERATION_TIME_LIMIT."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, *, user: str = WEBHOOK_USER, code: str = WEBHOOK_CODE, limits: bool = True,
                 capacity: int = BUCKET_CAPACITY, drain: float = BUCKET_DRAIN, operating_limit: float | None = None,
                 method_seconds: Mapping[str, float] | None = None, default_method_seconds: float = 0.0,
                 seed: bool = True) -> None:
        super().__init__(("127.0.0.1", 0), _Bitrix24Api)
        self.origin = f"http://127.0.0.1:{self.server_address[1]}"
        self.user, self.code = user, code
        self.webhook_url = f"{self.origin}/rest/{user}/{code}/"  # an integration's credentials.webhook_url
        self.lock = threading.Lock()
        self.limits = limits
        self.capacity, self.drain = capacity, drain
        self.operating_limit = operating_limit
        self.method_seconds = dict(method_seconds or {})
        self.default_method_seconds = default_method_seconds
        self.groups: dict[str, str] = dict(GROUPS)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.elapsed: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.comments: list[tuple[str, dict[str, Any]]] = []
        self.bound: list[dict[str, Any]] = []
        self.requests: list[Call] = []
        self.rejected: Counter[int] = Counter()
        self.level = 0.0  # the leaky bucket's counter
        self.peak_level = 0.0
        self._leaked_at = time.monotonic()
        self._operating: dict[str, deque[tuple[float, float]]] = {}
        self._blocked: Counter[str] = Counter()
        self._next_elapsed = 1000
        self._next_comment = 5000
        self._next_history = 100
        if seed:
            long_ago = datetime.now(UTC) - timedelta(days=30)
            self.add_task(MILESTONE_TASK_ID, "Recette de l'ERP", group_id=ERP_GROUP_ID, when=long_ago)
            self.add_task(SECOND_MILESTONE_TASK_ID, "Mise en production de l'ERP", group_id=ERP_GROUP_ID,
                          when=long_ago)
            self.add_task(SUPPORT_TASK_ID, "Pipeline de facturation", group_id=SUPPORT_GROUP_ID, when=long_ago,
                          responsible=BOB["ID"])

    # --- what happens in Bitrix24 (no event is sent by any of these) ---

    def add_task(self, task_id: str, title: str, *, group_id: str, when: datetime, status: str = IN_PROGRESS,
                 responsible: str = ALICE["ID"], tags: tuple[str, ...] = ()) -> dict[str, Any]:
        stamp = bitrix_date(when)
        value = {"ID": str(task_id), "TITLE": title, "DESCRIPTION": "", "STATUS": status, "REAL_STATUS": status,
                 "GROUP_ID": str(group_id), "RESPONSIBLE_ID": responsible, "CREATED_BY": ALICE["ID"],
                 "CREATED_DATE": stamp, "CHANGED_BY": ALICE["ID"], "CHANGED_DATE": stamp,
                 "STATUS_CHANGED_BY": ALICE["ID"], "STATUS_CHANGED_DATE": stamp, "CLOSED_BY": None,
                 "CLOSED_DATE": None, "DEADLINE": None, "TASK_CONTROL": "N", "PARENT_ID": None, "TAGS": list(tags)}
        with self.lock:
            self.tasks[str(task_id)] = value
        return value

    def complete(self, task_id: str, when: datetime, *, by: str = ALICE["ID"], status: str = COMPLETED) -> None:
        """The task is completed (5), or sent for control (4)."""
        self._set_status(task_id, status, when, by)

    def renew(self, task_id: str, when: datetime, *, by: str = ALICE["ID"]) -> None:
        """The task is reopened (back to pending)."""
        self._set_status(task_id, PENDING, when, by)

    def _set_status(self, task_id: str, status: str, when: datetime, by: str) -> None:
        with self.lock:
            task = self.tasks[str(task_id)]
            stamp = bitrix_date(when)
            self._next_history += 1
            self.history.append({"id": str(self._next_history), "taskId": task["ID"], "createdDate": stamp,
                                 "field": "STATUS", "value": {"from": task["STATUS"], "to": status},
                                 "user": {"id": by}})
            task.update({"STATUS": status, "REAL_STATUS": status, "CHANGED_DATE": stamp, "CHANGED_BY": by,
                         "STATUS_CHANGED_DATE": stamp, "STATUS_CHANGED_BY": by})
            if status == COMPLETED:
                task.update({"CLOSED_DATE": stamp, "CLOSED_BY": by})
            elif status in (PENDING, IN_PROGRESS):
                task.update({"CLOSED_DATE": None, "CLOSED_BY": None})

    def delete_task(self, task_id: str) -> None:
        with self.lock:
            self.tasks.pop(str(task_id), None)
            for item_id in [i for i, item in self.elapsed.items() if item["TASK_ID"] == str(task_id)]:
                del self.elapsed[item_id]

    def log_time(self, task_id: str, seconds: int, *, start: datetime, user: str = BOB["ID"], comment: str = "",
                 created: datetime | None = None, item_id: str | None = None) -> str:
        """An elapsed item added to the task; returns its id. Bitrix24 sends no event for it."""
        with self.lock:
            if str(task_id) not in self.tasks:
                raise KeyError(task_id)
            if item_id is None:
                self._next_elapsed += 1
                item_id = str(self._next_elapsed)
            self.elapsed[item_id] = {
                "ID": item_id, "TASK_ID": str(task_id), "USER_ID": str(user), "COMMENT_TEXT": comment,
                "SECONDS": str(seconds), "MINUTES": str(round(seconds / 60)), "SOURCE": "2",
                "CREATED_DATE": bitrix_date(created or datetime.now(UTC)), "DATE_START": bitrix_date(start),
                "DATE_STOP": bitrix_date(start + timedelta(seconds=seconds)),
            }
            return item_id

    def edit_time(self, item_id: str, seconds: int, *, comment: str | None = None) -> None:
        """An elapsed item's duration changed (its CREATED_DATE does not)."""
        with self.lock:
            item = self.elapsed[str(item_id)]
            start = datetime.fromisoformat(item["DATE_START"])
            item.update({"SECONDS": str(seconds), "MINUTES": str(round(seconds / 60)),
                         "DATE_STOP": bitrix_date(start + timedelta(seconds=seconds))})
            if comment is not None:
                item["COMMENT_TEXT"] = comment

    def delete_time(self, item_id: str) -> None:
        with self.lock:
            self.elapsed.pop(str(item_id), None)

    def block(self, method: str, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` are answered 429 OPERATION_TIME_LIMIT."""
        with self.lock:
            self._blocked[method.lower()] += times

    def calls(self, method: str | None = None, *, status: int | None = None, batched: bool | None = None) -> list[Call]:
        """The requests received, those of ``method`` (and ``status``; a batch's sub-queries when ``batched``)."""
        with self.lock:
            return [c for c in self.requests if (method is None or c.method == method)
                    and (status is None or c.status == status) and (batched is None or c.batched == batched)]

    def http_requests(self) -> int:
        """Requests received over HTTP (a batch is one, its sub-queries none)."""
        with self.lock:
            return sum(1 for c in self.requests if not c.batched)

    # --- serving ---

    def serve(self, method: str, params: Any, *, user: str | None, code: str | None,
              started: float) -> tuple[int, Any]:
        with self.lock:
            if user != self.user or code != self.code:
                return self._record(method, params, RestError(401, "INVALID_CREDENTIALS",
                                                              "Invalid request credentials"), started)
            if self.limits and not self._take():
                return self._record(method, params, RestError(503, **_split(QUERY_LIMIT_EXCEEDED)), started)
            try:
                if method == "batch":
                    result = self._batch(params, started)
                else:
                    result = self._call(method, params)
            except RestError as error:
                return self._record(method, params, error, started)
            self.requests.append(Call(method, params, 200, at=started))
            return 200, {**result, "time": self._time(method, started)}

    def _record(self, method: str, params: Any, error: RestError, started: float) -> tuple[int, Any]:
        self.requests.append(Call(method, params, error.status, error.error, at=started))
        if error.status in (429, 503):
            self.rejected[error.status] += 1
        if error.status == 401:
            return 401, error.body()
        return error.status, {**error.body(), "time": self._time(method, started)}

    def _take(self) -> bool:
        """One more request in the bucket, unless it is full (then the request is blocked, and not counted)."""
        now = time.monotonic()
        self.level = max(0.0, self.level - (now - self._leaked_at) * self.drain)
        self._leaked_at = now
        if self.level + 1 > self.capacity:
            return False
        self.level += 1
        self.peak_level = max(self.peak_level, self.level)
        return True

    def _spend(self, method: str) -> None:
        """The method's execution time, against its resource limit."""
        if self._blocked[method] > 0:
            self._blocked[method] -= 1
            raise RestError(429, **_split(OPERATION_TIME_LIMIT))
        if self.operating_limit is None:
            return
        now = time.monotonic()
        spent = self._operating.setdefault(method, deque())
        while spent and spent[0][0] < now - OPERATING_WINDOW:
            spent.popleft()
        if sum(cost for _, cost in spent) >= self.operating_limit:
            raise RestError(429, **_split(OPERATION_TIME_LIMIT))
        spent.append((now, self.method_seconds.get(method, self.default_method_seconds)))

    def _time(self, method: str, started: float) -> dict[str, Any]:
        finish = time.time()
        spent = self._operating.get(method) or ()
        operating = sum(cost for _, cost in spent)
        reset = (spent[0][0] - time.monotonic() + OPERATING_WINDOW + time.time()) if spent else finish
        return {"start": started, "finish": finish, "duration": finish - started, "processing": finish - started,
                "date_start": datetime.fromtimestamp(started, PORTAL_TZ).isoformat(timespec="seconds"),
                "date_finish": datetime.fromtimestamp(finish, PORTAL_TZ).isoformat(timespec="seconds"),
                "operating": operating, "operating_reset_at": int(reset)}

    def _batch(self, params: Any, started: float) -> dict[str, Any]:
        commands = params.get("cmd") if isinstance(params, dict) else None
        if not isinstance(commands, dict) or not commands:
            raise RestError(400, "INVALID_ARG_VALUE", "Commands are not set")
        if len(commands) > BATCH_LIMIT:
            raise RestError(400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
        halt = str(params.get("halt", "0")) not in ("0", "", "false")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for key, command in commands.items():
            method, _, query = str(command).partition("?")
            method = method.strip().lower()
            sub = parse_query(query)
            try:
                if method == "batch":
                    raise RestError(400, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage")
                answer = self._call(method, sub)
            except RestError as error:
                self.requests.append(Call(method, sub, error.status, error.error, batched=True, at=started))
                if error.status in (429, 503):
                    self.rejected[error.status] += 1
                errors[key] = error.body()
                if halt:
                    break
                continue
            self.requests.append(Call(method, sub, 200, batched=True, at=started))
            results[key] = answer["result"]
            if "total" in answer:
                totals[key] = answer["total"]
            if "next" in answer:
                nexts[key] = answer["next"]
            times[key] = self._time(method, started)
        return {"result": {"result": results or [], "result_error": errors or [], "result_total": totals or [],
                           "result_next": nexts or [], "result_time": times or []}}

    def _call(self, method: str, params: Any) -> dict[str, Any]:
        handler = _METHODS.get(method)
        if handler is None:
            raise RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        self._spend(method)
        return handler(self, params)

    # --- the methods (called under the lock) ---

    def _task_get(self, params: Any) -> dict[str, Any]:
        params = _named(params, ("taskId", "select"))
        task_id = str(params.get("taskId") or params.get("TASKID") or params.get("id") or "")
        if not task_id:
            raise RestError(400, "ERROR_CORE", "Wrong task ID")
        task = self.tasks.get(task_id)
        if task is None:  # no such task, or no access to it: an empty result, as an empty PHP array
            return {"result": []}
        return {"result": {"task": self._task_out(task, params.get("select"))}}

    def _task_list(self, params: Any) -> dict[str, Any]:
        params = params if isinstance(params, dict) else {}
        found = [t for t in self.tasks.values() if _matches(t, params.get("filter") or {})]
        _sort(found, params.get("order"))
        start = _int(params.get("start"), 0)
        if start < 0:  # start=-1: no count, no next (Bitrix24's fast paging)
            page = found[:PAGE_SIZE]
            return {"result": {"tasks": [self._task_out(t, params.get("select")) for t in page]}}
        page = found[start:start + PAGE_SIZE]
        answer: dict[str, Any] = {"result": {"tasks": [self._task_out(t, params.get("select")) for t in page]},
                                  "total": len(found)}
        if start + PAGE_SIZE < len(found):
            answer["next"] = start + PAGE_SIZE
        return answer

    def _task_out(self, task: dict[str, Any], select: Any) -> dict[str, Any]:
        names = [str(n).upper() for n in (select.values() if isinstance(select, dict) else select or ())]
        if not names or "*" in names:
            names = list(_DEFAULT_SELECT)
        names = ["ID", *[n for n in names if n != "ID"]]
        out: dict[str, Any] = {}
        for name in names:
            if name == "TIME_SPENT_IN_LOGS":
                out["timeSpentInLogs"] = str(sum(int(i["SECONDS"]) for i in self.elapsed.values()
                                                 if i["TASK_ID"] == task["ID"]))
            elif name == "TAGS":
                out["tags"] = {str(n): {"id": str(n), "title": tag} for n, tag in enumerate(task["TAGS"], 1)} or []
            elif name in _TASK_FIELDS:
                out[_TASK_FIELDS[name]] = task.get(name)
        if "groupId" in out:
            group = out["groupId"]
            out["group"] = {"id": group, "name": self.groups.get(group, "")} if group and group != "0" else []
        return out

    def _elapsed_list(self, params: Any) -> dict[str, Any]:
        args = _positional(params, _ELAPSED_PARAMS)
        if args.get("TASKID") is not None and not str(args["TASKID"]).lstrip("-").isdigit():
            # the variant without TASKID: (ORDER, FILTER, SELECT, PARAMS)
            shifted = [args.get(n) for n in _ELAPSED_PARAMS]
            args = dict(zip(_ELAPSED_PARAMS[1:], shifted, strict=False))
        task_id = str(args.get("TASKID") or "")
        if task_id and task_id != "0" and task_id not in self.tasks:
            raise RestError(400, "ERROR_CORE", "TASKS_ERROR_EXCEPTION_#8; Task not found or not accessible; "
                                               "8/TE/TASK_NOT_FOUND_OR_NOT_ACCESSIBLE<br>")
        filters = args.get("FILTER") or {}
        items = [i for i in self.elapsed.values()
                 if (not task_id or task_id == "0" or i["TASK_ID"] == task_id) and _matches(i, filters)]
        _sort(items, args.get("ORDER"))
        nav = ((args.get("PARAMS") or {}).get("NAV_PARAMS") or {}) if isinstance(args.get("PARAMS"), dict) else {}
        size = max(1, min(PAGE_SIZE, _int(nav.get("nPageSize"), PAGE_SIZE)))
        number = max(1, _int(nav.get("iNumPage"), 1))
        page = items[(number - 1) * size:number * size]
        select = [str(n).upper() for n in (args.get("SELECT") or ())] if isinstance(args.get("SELECT"), list) else []
        wanted = [n for n in _ELAPSED_FIELDS if not select or "*" in select or n in select or n == "ID"]
        answer: dict[str, Any] = {"result": [{n: item[n] for n in wanted} for item in page], "total": len(items)}
        if number * size < len(items):
            answer["next"] = number * size
        return answer

    def _comment_add(self, params: Any) -> dict[str, Any]:
        args = _positional(params, _COMMENT_PARAMS)
        task_id = str(args.get("TASKID") or "")
        fields = args.get("FIELDS") or {}
        if task_id not in self.tasks:
            raise RestError(400, "ERROR_CORE", "TASKS_ERROR_EXCEPTION_#8; Task not found or not accessible; "
                                               "8/TE/TASK_NOT_FOUND_OR_NOT_ACCESSIBLE<br>")
        if not isinstance(fields, dict) or not str(fields.get("POST_MESSAGE") or "").strip():
            raise RestError(400, "ERROR_CORE", "TASKS_ERROR_EXCEPTION_#256; POST_MESSAGE is empty<br>")
        self._next_comment += 1
        self.comments.append((task_id, dict(fields)))
        return {"result": self._next_comment}

    def _history(self, params: Any) -> dict[str, Any]:
        params = _named(params, ("taskId", "filter"))
        task_id = str(params.get("taskId") or "")
        wanted = (params.get("filter") or {}).get("FIELD") if isinstance(params.get("filter"), dict) else None
        rows = [copy.deepcopy(h) for h in self.history if h["taskId"] == task_id
                and (wanted is None or h["field"] == wanted)]
        for row in rows:
            del row["taskId"]
        return {"result": {"list": rows}}

    def _event_bind(self, params: Any) -> dict[str, Any]:
        params = params if isinstance(params, dict) else {}
        if not params.get("event") or not params.get("handler"):
            raise RestError(400, "ERROR_EVENT_NOT_FOUND" if not params.get("event") else "ERROR_ARGUMENT",
                            "Event or handler not set")
        binding = {"event": str(params["event"]).upper(), "handler": str(params["handler"]),
                   "auth_type": str(params.get("auth_type") or "0"),
                   "offline": 1 if str(params.get("event_type") or "online") == "offline" else 0}
        if any(b["event"] == binding["event"] and b["handler"] == binding["handler"] for b in self.bound):
            raise RestError(400, "ERROR_EVENT_EXISTS", "Handler already binded")
        self.bound.append(binding)
        return {"result": True}

    def _event_get(self, _params: Any) -> dict[str, Any]:
        return {"result": copy.deepcopy(self.bound)}

    def _event_unbind(self, params: Any) -> dict[str, Any]:
        params = params if isinstance(params, dict) else {}
        before = len(self.bound)
        self.bound = [b for b in self.bound if not (b["event"] == str(params.get("event", "")).upper()
                                                     and b["handler"] == params.get("handler"))]
        return {"result": {"count": before - len(self.bound)}}

    def _user_get(self, params: Any) -> dict[str, Any]:
        params = params if isinstance(params, dict) else {}
        ids = params.get("ID") or (params.get("FILTER") or params.get("filter") or {}).get("ID")
        ids = {str(i) for i in (ids if isinstance(ids, list) else [ids])} if ids else None
        return {"result": [dict(u) for u in USERS.values() if ids is None or u["ID"] in ids], "total": len(USERS)}

    def _user_current(self, _params: Any) -> dict[str, Any]:
        return {"result": dict(USERS.get(self.user, ALICE))}

    def _profile(self, _params: Any) -> dict[str, Any]:
        user = USERS.get(self.user, ALICE)
        return {"result": {"ID": user["ID"], "ADMIN": True, "NAME": user["NAME"], "LAST_NAME": user["LAST_NAME"]}}

    def _scope(self, _params: Any) -> dict[str, Any]:
        return {"result": ["task", "tasks", "user", "sonet_group"]}


_METHODS = {
    "tasks.task.get": Bitrix24Portal._task_get,
    "tasks.task.list": Bitrix24Portal._task_list,
    "tasks.task.history.list": Bitrix24Portal._history,
    "task.elapseditem.getlist": Bitrix24Portal._elapsed_list,
    "task.commentitem.add": Bitrix24Portal._comment_add,
    "event.bind": Bitrix24Portal._event_bind,
    "event.get": Bitrix24Portal._event_get,
    "event.unbind": Bitrix24Portal._event_unbind,
    "user.get": Bitrix24Portal._user_get,
    "user.current": Bitrix24Portal._user_current,
    "profile": Bitrix24Portal._profile,
    "scope": Bitrix24Portal._scope,
}


def _split(error: Mapping[str, str]) -> dict[str, str]:
    return {"error": error["error"], "description": error["error_description"]}


def _int(value: Any, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _named(params: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """Parameters by name, from an object or (positionally) a list."""
    if isinstance(params, list):
        return dict(zip(names, params, strict=False))
    return params if isinstance(params, dict) else {}


def _positional(params: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The legacy task.* methods' parameters: a JSON array in their order, an
    object with the indexes as keys (``0``, ``1``: what a query string of a
    batch gives), or an object with their names (any case)."""
    if isinstance(params, list):
        return dict(zip(names, params, strict=False))
    if not isinstance(params, dict):
        return {}
    if any(str(k).isdigit() for k in params):
        return {names[int(k)]: v for k, v in params.items() if str(k).isdigit() and int(k) < len(names)}
    upper = {str(k).upper(): v for k, v in params.items()}
    return {name: upper[name] for name in names if name in upper}


def _parse_date(value: Any) -> datetime | None:
    if value in (None, "", "undefined"):
        return None
    text = str(value).strip()
    for pattern in ("%d.%m.%Y %H:%M:%S", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=PORTAL_TZ)
        except ValueError:
            pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=PORTAL_TZ)


def _sortable(name: str, value: Any) -> Any:
    if name in _DATE_FIELDS:
        when = _parse_date(value)
        return (when is not None, when.timestamp() if when else 0.0)
    text = "" if value is None else str(value)
    return (True, int(text)) if text.lstrip("-").isdigit() else (True, text)


def _sort(rows: list[dict[str, Any]], order: Any) -> None:
    """In place, by ``{"FIELD": "asc"|"desc", ...}`` (by ID when none is given)."""
    order = order if isinstance(order, dict) and order else {"ID": "asc"}
    for name, direction in reversed(list(order.items())):
        upper = str(name).upper()
        rows.sort(key=lambda row: _sortable(upper, row.get(upper)), reverse=str(direction).lower() == "desc")


_OPERATOR = re.compile(r"^(>=|<=|!=|>|<|=|!|@|%)?(.+)$")


def _matches(row: Mapping[str, Any], filters: Any) -> bool:
    """Bitrix24's filter: ``{"GROUP_ID": 12, ">=CHANGED_DATE": "...", "@ID": [1, 2]}``;
    a list value is « one of »."""
    if not isinstance(filters, dict):
        return True
    for key, wanted in filters.items():
        found = _OPERATOR.match(str(key))
        assert found is not None
        operator, name = found.group(1) or "=", found.group(2).upper()
        if name not in row:
            continue  # a filter on a field the stand-in does not keep narrows nothing
        value = row[name]
        if name in _DATE_FIELDS:
            have, want = _parse_date(value), _parse_date(wanted)
            if operator in (">=", "<=", ">", "<"):
                if have is None or want is None:
                    return False
                if not {">=": have >= want, "<=": have <= want, ">": have > want, "<": have < want}[operator]:
                    return False
                continue
        values = wanted if isinstance(wanted, (list, dict)) else [wanted]
        values = list(values.values()) if isinstance(values, dict) else values
        text = "" if value is None else str(value)
        if operator in ("=", "@"):
            if text not in {str(v) for v in values}:
                return False
        elif operator in ("!", "!="):
            if text in {str(v) for v in values}:
                return False
        elif operator == "%":
            if str(wanted).lower() not in text.lower():
                return False
        else:
            have_n, want_n = _sortable(name, value), _sortable(name, wanted)
            if not {">=": have_n >= want_n, "<=": have_n <= want_n, ">": have_n > want_n,
                    "<": have_n < want_n}[operator]:
                return False
    return True


@contextmanager
def bitrix24_portal(**options: Any) -> Iterator[Bitrix24Portal]:
    """A :class:`Bitrix24Portal` served in a thread, shut down afterwards."""
    with serving(Bitrix24Portal(**options), "demo-bitrix24") as server:
        yield server


def expected_time(portal: Bitrix24Portal, group_ids: set[str] | None = None) -> dict[str, int]:
    """The elapsed items of the tasks of ``group_ids`` (all when None): {item id: seconds}."""
    with portal.lock:
        tasks = {t["ID"] for t in portal.tasks.values() if group_ids is None or t["GROUP_ID"] in group_ids}
        return {i["ID"]: int(i["SECONDS"]) for i in portal.elapsed.values() if i["TASK_ID"] in tasks}
