"""A tiny source plugin and a recording channel, loaded by a real ``jalon serve``
through ``JALON_EXTRA_PLUGINS=tests.reliability.fakesource:plugin`` (the
reliability tests and ``bench/intake.py`` use it; nothing is installed).

The ``fake`` source signs with ``X-Fake-Signature: hex(HMAC-SHA256(secret, body))``,
names each delivery with ``X-Fake-Delivery``, and sends small JSON bodies::

    {"type": "done", "project": "FIX", "task": "T-7"}                   -> TaskCompleted
    {"type": "time", "project": "TM", "task": "T-1", "worklog": "WL-3", "seconds": 3600}
                                                                         -> TimeLogged
    {"type": "noise"}                                                    -> ignored
    {"type": "done", ..., "requires": "ready"}   -> Unreadable until the integration's settings say ready

The ``record`` channel "sends" a message by appending one line to the file
named by ``JALON_FAKE_RECORD_FILE``: the message's idempotency key, the
wall-clock time of the hand-off, and the payload as JSON.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.types import (
    ChannelSpec,
    OutboxView,
    SendResult,
    SourceSpec,
    Translation,
    Unreadable,
)
from jalon.core.events import TaskCompleted, TimeLogged

SOURCE = "fake"
CHANNEL = "record"
RECORD_FILE_ENV = "JALON_FAKE_RECORD_FILE"
_write_lock = threading.Lock()


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers_for(secret: str, key: str, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Fake-Delivery": key, "X-Fake-Signature": sign(secret, body)}


def done_body(task: str, project: str = "FIX") -> bytes:
    return json.dumps({"type": "done", "project": project, "task": task}).encode()


def time_body(worklog: str, seconds: int, task: str = "T-TM", project: str = "TM") -> bytes:
    return json.dumps({"type": "time", "project": project, "task": task, "worklog": worklog,
                       "seconds": seconds}).encode()


class FakePlugin:
    @hookimpl
    def jalon_source_register(self) -> SourceSpec:
        return SourceSpec(name=SOURCE, title="Fake PM tool (tests and benchmark)")

    @hookimpl
    def jalon_source_verify(self, source: str, integration: Any, headers: Mapping[str, str], body: bytes,
                            now: datetime) -> bool | None:
        given = headers.get("x-fake-signature", "")
        return any(hmac.compare_digest(sign(secret, body), given) for secret in integration.secrets)

    @hookimpl
    def jalon_source_idempotency_key(self, source: str, integration: Any, headers: Mapping[str, str],
                                     body: bytes) -> str | None:
        return headers.get("x-fake-delivery") or None

    @hookimpl
    def jalon_source_translate(self, source: str, integration: Any, delivery: Any, http: Any) -> Translation | None:
        try:
            data = json.loads(delivery.body)
        except ValueError as error:
            raise Unreadable(f"not JSON: {error}") from None
        occurred = delivery.received_at.astimezone(timezone.utc)
        required = data.get("requires")
        if required and not integration.settings.get(required):
            # stands for a delivery the plugin cannot read until an admin fixes the integration
            raise Unreadable(f"the integration's setting {required!r} is missing")
        if data.get("type") == "done":
            return Translation("done", [TaskCompleted(
                integration=integration.key, project_ref=data["project"], task_ref=data["task"],
                occurred_at=occurred, status="Done", actor="fake", event_id=delivery.idempotency_key,
                task_url=f"https://pm.example/{data['task']}",
            )])
        if data.get("type") == "time":
            return Translation("time", [TimeLogged(
                integration=integration.key, project_ref=data["project"], task_ref=data["task"],
                worklog_ref=data["worklog"], seconds=int(data["seconds"]), person_ref="bob",
                occurred_at=occurred, actor="bob", event_id=delivery.idempotency_key,
            )])
        return Translation(str(data.get("type")), (), ignored="not an event the fake source acts on")

    @hookimpl
    def jalon_source_comment(self, source: str, integration: Any, comment: Any, http: Any) -> SendResult | None:
        _record(f"comment:{comment.idempotency_key}", {"task": comment.task_ref, "text": comment.text})
        return SendResult(external_id=f"comment-{comment.task_ref}")

    @hookimpl
    def jalon_channel_register(self) -> ChannelSpec:
        return ChannelSpec(name=CHANNEL, title="Records hand-offs in a file (tests and benchmark)")

    @hookimpl
    def jalon_channel_send(self, channel: str, message: OutboxView, settings: Mapping[str, Any]) -> SendResult | None:
        _record(message.idempotency_key, dict(message.payload))
        return SendResult(external_id=f"record-{message.id}")


def _record(key: str, payload: Mapping[str, Any]) -> None:
    path = os.environ.get(RECORD_FILE_ENV)
    if not path:
        return
    line = f"{key}\t{time.time():.6f}\t{json.dumps(payload, default=str)}\n"
    with _write_lock, open(path, "a", encoding="utf-8") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())


def read_records(path: str) -> list[tuple[str, float, dict[str, Any]]]:
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as source:
        for line in source:
            if line.endswith("\n"):
                key, at, payload = line.rstrip("\n").split("\t", 2)
                records.append((key, float(at), json.loads(payload)))
    return records


plugin = FakePlugin()


# --- the world these deliveries land in ------------------------------------------------

SECRET = "fake-s3cret"
INTEGRATION_KEY = "fake-1"


def world(milestones: int, *, channel: bool = True) -> dict[str, Any]:
    """Configuration for ``catalog.apply_config``: a fixed-price contract FIX
    with ``milestones`` milestones (task T-1 .. T-n, 10.00 each) and a time and
    materials contract TM, both reached through the ``fake`` integration."""
    from tests import factories

    return {
        "entities": [factories.ENTITY],
        "clients": [factories.CLIENT],
        "contracts": [
            {
                "reference": "FIX", "name": "Forfait", "kind": "fixed_price", "entity": "atelier",
                "client": "lumiere", "total_amount": f"{max(milestones, 1) * 10}.00",
                "milestones": [
                    {"reference": f"M{i}", "name": f"Jalon {i}", "amount": "10.00", "match": {"task_id": f"T-{i}"}}
                    for i in range(1, milestones + 1)
                ],
            },
            {"reference": "TM", "name": "Régie", "kind": "time_and_materials", "entity": "atelier",
             "client": "lumiere"},
        ],
        "integrations": [{"key": INTEGRATION_KEY, "source": SOURCE, "name": "Fake", "secret": SECRET}],
        "mappings": [
            {"integration": INTEGRATION_KEY, "project": "FIX", "contract": "FIX"},
            {"integration": INTEGRATION_KEY, "project": "TM", "contract": "TM"},
        ],
    }
