"""The demo's stand-in for Jira: the deliveries Jira Cloud would send (signed as
an admin webhook with a secret signs them), and a tiny local Jira REST API
that answers the one question the plugin asks (which issue a worklog is on).

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
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?")[0].rstrip("/") in (f"/rest/api/3/issue/{WORKLOG_ISSUE['id']}",
                                                   f"/rest/api/3/issue/{WORKLOG_ISSUE['key']}"):
            self._answer(200, {**WORKLOG_ISSUE, "self": f"{self.server.site}/rest/api/3/issue/20007"})  # type: ignore[attr-defined]
        else:
            self._answer(404, {"errorMessages": ["Issue does not exist"]})

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:  # quiet
        pass


@contextmanager
def jira_api() -> Iterator[str]:
    """A local Jira REST API on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JiraApi)
    server.site = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, name="demo-jira", daemon=True)
    thread.start()
    try:
        yield server.site  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


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
