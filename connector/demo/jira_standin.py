"""The demo's stand-in for Jira: the deliveries Jira Cloud would send (signed as
an admin webhook with a secret signs them), and a tiny local Jira REST API
that answers what the plugin asks: which issue a worklog is on, which issues
changed status lately and which worklogs changed (reconciliation), and the
registration of an admin webhook (``jalon integrations connect jira``).

This plays the PM tool's part over real HTTP; it imports nothing of the Jira
plugin, which is found, as always, through the ``jalon`` entry points.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from jalon.connector.demo.standin import serving

# the T&M project's issue that the demo's worklog is on
WORKLOG_ISSUE = {
    "id": "20007",
    "key": "DATA-7",
    "fields": {
        "summary": "Pipeline de facturation",
        "issuetype": {"name": "Task"},
        "project": {"id": "10002", "key": "DATA", "name": "Data platform"},
        "labels": [],
        "fixVersions": [],
        "status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}},
    },
}


def signed(secret: str, delivery_id: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {
        "Content-Type": "application/json; charset=utf-8",
        "X-Hub-Signature": f"sha256={signature}",
        "X-Atlassian-Webhook-Identifier": delivery_id,
    }


def issue_done(site: str, when: datetime) -> dict[str, Any]:
    """``jira:issue_updated``: WEB-1 moved from In Review to Done."""
    return {
        "timestamp": int(when.timestamp() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "alice", "displayName": "Alice Martin"},
        "issue": {
            "id": "10001",
            "self": f"{site}/rest/api/2/issue/10001",
            "key": "WEB-1",
            "fields": {
                "summary": "Maquettes validées par le client",
                "issuetype": {"name": "Story"},
                "project": {"id": "10000", "key": "WEB", "name": "Site lumiere.fr"},
                "labels": [],
                "status": {"name": "Done", "statusCategory": {"key": "done", "name": "Done"}},
            },
        },
        "changelog": {"id": "30001", "items": [
            {"field": "status", "fieldtype": "jira", "fromString": "In Review", "toString": "Done"},
        ]},
    }


def worklog_created(when: datetime, seconds: int) -> dict[str, Any]:
    """``worklog_created``: only the issue id, as Jira sends it."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    return {
        "timestamp": int(when.timestamp() * 1000),
        "webhookEvent": "worklog_created",
        "worklog": {
            "id": "40001",
            "issueId": WORKLOG_ISSUE["id"],
            "author": {"accountId": "bob", "displayName": "Bob Durand"},
            "timeSpent": "1h 30m",
            "timeSpentSeconds": seconds,
            "started": stamp,
            "created": stamp,
            "updated": stamp,
            "comment": "Revue du schéma de données",
        },
    }


class _JiraApi(BaseHTTPRequestHandler):
    server: JiraSite  # type: ignore[assignment]

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?")[0].rstrip("/")
        site = self.server
        with site.lock:
            if path.startswith("/rest/api/3/issue/"):
                issue = site.issue(path.rsplit("/", 1)[1])
                if issue is None:
                    self._answer(404, {"errorMessages": ["Issue does not exist"]})
                else:
                    self._answer(200, issue)
            elif path == "/rest/api/3/search/jql":  # the JQL is not read: every issue whose status changed
                self._answer(200, {"issues": [site.issue(key) for key in site.changed], "isLast": True})
            elif path in ("/rest/api/3/worklog/updated", "/rest/api/3/worklog/deleted"):
                values = [] if path.endswith("deleted") else [
                    {"worklogId": int(w["id"]), "updatedTime": 0} for w in site.worklogs.values()]
                self._answer(200, {"values": values, "since": 0, "until": 0, "lastPage": True})
            else:
                self._answer(404, {"errorMessages": ["Not found"]})

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._answer(400, {"errorMessages": ["not JSON"]})
            return
        site = self.server
        with site.lock:
            if path == "/rest/webhooks/1.0/webhook" and isinstance(body, dict):
                site.webhooks.append(body)
                self._answer(201, {"self": f"{site.site}/rest/webhooks/1.0/webhook/{len(site.webhooks)}",
                                   "name": body.get("name")})
            elif path == "/rest/api/3/worklog/list" and isinstance(body, dict):
                ids = {str(i) for i in body.get("ids") or []}
                self._answer(200, [w for key, w in site.worklogs.items() if key in ids])
            elif path.startswith("/rest/api/3/issue/") and path.endswith("/comment"):
                site.comments.append((path.split("/")[5], body))
                self._answer(201, {"id": str(10000 + len(site.comments))})
            else:
                self._answer(404, {"errorMessages": ["Not found"]})

    def _answer(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:  # quiet
        pass


class JiraSite(ThreadingHTTPServer):
    """A local Jira on a free loopback port, with a little state: its issues,
    those whose status changed (what a JQL ``status changed`` search finds),
    its worklogs, the webhooks registered and the comments posted."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _JiraApi)
        self.site = f"http://127.0.0.1:{self.server_address[1]}"
        self.lock = threading.Lock()
        self.issues: dict[str, dict[str, Any]] = {WORKLOG_ISSUE["key"]: json.loads(json.dumps(WORKLOG_ISSUE))}
        self.changed: list[str] = []
        self.worklogs: dict[str, dict[str, Any]] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.comments: list[tuple[str, Any]] = []

    def issue(self, ref: str) -> dict[str, Any] | None:
        found = self.issues.get(ref) or next((i for i in self.issues.values() if i["id"] == ref), None)
        return {**found, "self": f"{self.site}/rest/api/3/issue/{found['id']}"} if found else None

    def complete(self, when: datetime, *, key: str = "WEB-1", summary: str | None = None,
                 labels: tuple[str, ...] = ()) -> None:
        """An issue of the WEB project moves to Done in Jira, and no webhook tells anyone."""
        with self.lock:
            issue = issue_done(self.site, when)["issue"]
            stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
            if key != issue["key"]:
                issue.update({"key": key, "id": str(10000 + int(key.rsplit("-", 1)[1]))})
            issue["fields"].update({"fixVersions": [], "statuscategorychangedate": stamp, "updated": stamp,
                                    "labels": list(labels), "summary": summary or issue["fields"]["summary"]})
            self.issues[issue["key"]] = issue
            if issue["key"] not in self.changed:
                self.changed.append(issue["key"])


@contextmanager
def jira_site() -> Iterator[JiraSite]:
    """A :class:`JiraSite` served in a thread, shut down afterwards."""
    with serving(JiraSite(), "demo-jira") as server:
        yield server


@contextmanager
def jira_api() -> Iterator[str]:
    """A local Jira REST API on a free loopback port; yields its base URL."""
    with jira_site() as server:
        yield server.site


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *_args: Any) -> None:  # the demo prints its own story
        pass


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """The jalon app over real HTTP on a free loopback port; yields its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="demo-jalon", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
