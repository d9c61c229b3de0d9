"""A source plugin written the way a third party would, with nothing but the
plugin kit (``jalon.connector.plugin``) and the event types from the core.

Its tool signs deliveries with ``X-Fake-Signature: sha256=<hex HMAC of the raw
body>``, names them with ``X-Fake-Delivery``, and sends tiny JSON payloads::

    {"event": "task.done", "project": "WEB", "task": "WEB-1", "at": "2026-11-02T10:00:00+00:00"}
    {"event": "worklog.created", "project": "WEB", "task": "WEB-5", "worklog": "WL-1", "seconds": 3600, ...}
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime

from jalon.connector.plugin import Comment, SendResult, SourceSpec, Translation, Unreadable, hookimpl
from jalon.core.events import TaskCompleted, TimeLogged


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class FakeSource:
    name = "fake"

    def __init__(self) -> None:
        # version 1 of the plugin cannot read payloads of "version": 2; the "fix" sets this
        self.reads_version_2 = False
        self.translate_error: Exception | None = None
        self.verify_error: Exception | None = None
        # called as verification starts: stands for what another process does meanwhile
        self.while_verifying: Callable[[], None] | None = None
        self.translated: list[int] = []
        self.processed: list[tuple[int, list]] = []
        self.comments: list[Comment] = []
        # what reconciliation finds, by integration key; an exception there is raised instead
        self.changes: dict[str, object] = {}
        self.reconciled: list[tuple[str, list[str], datetime, datetime]] = []
        self.http_seen: list[object] = []

    @hookimpl
    def jalon_source_register(self) -> SourceSpec:
        return SourceSpec(name=self.name, title="Fake PM tool")

    @hookimpl
    def jalon_source_verify(self, source, integration, headers, body, now):  # type: ignore[no-untyped-def]
        if self.while_verifying is not None:
            self.while_verifying()
        if self.verify_error is not None:
            raise self.verify_error
        presented = headers.get("x-fake-signature", "")
        if not presented:
            return False
        return any(hmac.compare_digest(presented, signature(body, secret)) for secret in integration.secrets)

    @hookimpl
    def jalon_source_idempotency_key(self, source, integration, headers, body):  # type: ignore[no-untyped-def]
        return headers.get("x-fake-delivery") or None

    @hookimpl
    def jalon_source_translate(self, source, integration, delivery, http):  # type: ignore[no-untyped-def]
        self.translated.append(delivery.id)
        self.http_seen.append(http)
        if self.translate_error is not None:
            raise self.translate_error
        try:
            payload = json.loads(delivery.body)
        except ValueError as error:
            raise Unreadable(f"not JSON: {error}") from None
        if payload.get("version", 1) == 2 and not self.reads_version_2:
            raise Unreadable("payload version 2 is not supported")
        event = payload.get("event")
        common = {
            "integration": integration.key,
            "project_ref": payload.get("project", ""),
            "task_ref": payload.get("task", ""),
            "occurred_at": datetime.fromisoformat(payload.get("at", "2026-11-02T10:00:00+00:00")),
            "actor": payload.get("actor", "alice"),
        }
        if event == "task.done":
            return Translation(event, [TaskCompleted(status="Done", **common)])
        if event == "worklog.created":
            return Translation(event, [TimeLogged(worklog_ref=payload["worklog"], seconds=payload["seconds"],
                                                  person_ref=payload.get("person", "bob"), **common)])
        return Translation(str(event), ignored=f"event {event!r} is not one jalon acts on")

    @hookimpl
    def jalon_source_comment(self, source, integration, comment, http):  # type: ignore[no-untyped-def]
        self.comments.append(comment)
        return SendResult(external_id=f"comment-{len(self.comments)}")

    @hookimpl
    def jalon_delivery_processed(self, delivery, outcomes):  # type: ignore[no-untyped-def]
        self.processed.append((delivery.id, list(outcomes)))

    @hookimpl
    def jalon_source_reconcile(self, source, integration, projects, since, now, http):  # type: ignore[no-untyped-def]
        self.reconciled.append((integration.key, list(projects), since, now))
        found = self.changes.get(integration.key, [])
        if isinstance(found, Exception):
            raise found
        return found


class OtherSource(FakeSource):
    """A second tool, to show that source hooks answer only for their own source."""

    name = "other"
