"""Real ClickUp deliveries (../shared/pm-payloads/clickup/, from ClickUp's docs
and public captures) go through verification, keying and translation: each is
signed here with a secret and verified, then translated as its name says or
ignored; none raises. ClickUp's REST API is answered by ``responses``.
The files are read where they are, never copied into the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jalon.core.events import TaskCompleted, TaskDeleted, TimeLogged
from jalon.plugins.clickup import translate, verify

from .support import (
    API,
    NOW,
    SHARED_PAYLOADS,
    TEAM,
    delivery,
    integration,
    rest_client,
    rest_fixture,
    signed_headers,
)

PAYLOADS = sorted(SHARED_PAYLOADS.glob("*.json")) if SHARED_PAYLOADS.is_dir() else []
pytestmark = pytest.mark.skipif(
    not PAYLOADS, reason=f"the shared ClickUp deliveries are not here ({SHARED_PAYLOADS}): conformance not checked"
)

# what each file gives, by a part of its name (None: ignored); the first match wins
EXPECTED: list[tuple[str, type | None]] = [
    ("-IGNORE", None),
    ("taskUpdated-time_spent", TimeLogged),  # the generic event, read as its granular twin
    ("taskStatusUpdated-to-closed", TaskCompleted),
    ("taskStatusUpdated-to-in-progress", None),  # not a done status
    ("taskTimeTrackedUpdated", TimeLogged),
    ("taskDeleted", TaskDeleted),
]


def expected(path: Path) -> type | None:
    for part, kind in EXPECTED:
        if part in path.name:
            return kind
    raise AssertionError(f"{path.name}: add what it should give to EXPECTED")


def clickup_answers_any_task(api) -> None:  # type: ignore[no-untyped-def]
    """``GET /task/{id}`` for whatever task a delivery names: a task of the fixture's shape."""
    def answer(request):  # type: ignore[no-untyped-def]
        task_id = request.url.split("/task/", 1)[1].split("?")[0]
        return 200, {"content-type": "application/json"}, json.dumps(rest_fixture("task__milestone") | {"id": task_id})

    api.add_callback("GET", re.compile(re.escape(f"{API}/task/") + r"[^/?]+"), callback=answer)


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_a_real_delivery_is_verified_keyed_then_translated_as_its_name_says(api, path):
    body = path.read_bytes()
    payload = json.loads(body)
    view = integration(settings={"team_id": TEAM})
    assert verify.verify(view, signed_headers(body), body, NOW) is True
    assert verify.verify(view, signed_headers(body, secret="wrong"), body, NOW) is False
    assert verify.verify(view, signed_headers(body), body + b" ", NOW) is False
    assert verify.idempotency_key({}, body), f"{path.name}: no key from its webhook and history items"
    clickup_answers_any_task(api)

    translation = translate.translate(view, delivery(body), rest_client())

    kind = expected(path)
    assert translation.event_name == payload["event"]
    if kind is None:
        assert translation.events == () and translation.ignored, path.name
    else:
        assert [type(event) for event in translation.events] == [kind], path.name
        (event,) = translation.events
        assert event.task_ref == payload["task_id"]
    if kind is TimeLogged:
        (item,) = payload["history_items"]
        assert translation.events[0].seconds * 1000 == int(item["after"]["time"])  # whole minutes: exact
        assert translation.events[0].worklog_ref == payload["data"]["interval_id"]


@pytest.mark.parametrize("path", [p for p in PAYLOADS if json.loads(p.read_bytes())["event"] in
                                  ("taskStatusUpdated", "taskTimeTrackedUpdated")], ids=lambda p: p.name)
def test_the_task_updated_clickup_sends_beside_a_real_granular_event_is_its_duplicate(api, path):
    """ClickUp sends the generic ``taskUpdated`` with the same history items as
    the granular event (Zulip's captured ``task_updated_status.json`` carries
    the ids of the docs' ``taskStatusUpdated`` sample): one key for both, and
    whichever arrives first gives the same events."""
    granular = path.read_bytes()
    generic = json.dumps(json.loads(granular) | {"event": "taskUpdated"}).encode()
    assert verify.idempotency_key({}, generic) == verify.idempotency_key({}, granular)
    clickup_answers_any_task(api)
    first = translate.translate(integration(), delivery(generic), rest_client())
    assert first.events == translate.translate(integration(), delivery(granular), rest_client()).events
    assert first.event_name == "taskUpdated"


def test_the_status_update_sent_with_a_real_task_creation_is_never_a_completion(api):
    created = SHARED_PAYLOADS / "taskCreated-IGNORE.json"
    if not created.is_file():
        pytest.skip(f"{created.name} is not among the shared ClickUp deliveries")
    payload = json.loads(created.read_bytes())
    status_item = next(item for item in payload["history_items"] if item["field"] == "status")
    status_item["after"] = {"status": "complete", "type": "closed"}  # created directly in a closed status
    body = json.dumps(payload | {"event": "taskStatusUpdated", "history_items": [status_item]}).encode()
    translation = translate.translate(integration(), delivery(body), rest_client())
    assert translation.events == () and "created" in translation.ignored
    assert len(api.calls) == 0
