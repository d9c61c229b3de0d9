"""Real Bitrix24 deliveries (../shared/pm-payloads/bitrix24/: the docs'
examples, a body derived from them as PHP's ``http_build_query`` writes it,
and one from the official PHP SDK's tests) go through verification, keying
and translation: each is verified with its own application token (and its
own portal), refused with another, keyed, then translated as its name says or
ignored; none raises. ``tasks.task.get`` is answered by ``responses``.
The files are read where they are, never copied into the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jalon.core.events import TaskCompleted, TaskDeleted
from jalon.plugins.bitrix24 import form, translate, verify

from .support import (
    NOW,
    SHARED_PAYLOADS,
    WEBHOOK,
    delivery,
    integration,
    rest_client,
    rest_fixture,
)

PAYLOADS = sorted(path for path in SHARED_PAYLOADS.glob("*") if path.is_file()
                  and not path.name.endswith((".source.txt", ".md"))) if SHARED_PAYLOADS.is_dir() else []
pytestmark = pytest.mark.skipif(
    not PAYLOADS, reason=f"the shared Bitrix24 deliveries are not here ({SHARED_PAYLOADS}): conformance not checked"
)

# what each file gives, by a part of its name (None: ignored); the first match wins
EXPECTED: list[tuple[str, type | None]] = [
    ("-IGNORE", None),
    ("ONTASKUPDATE", TaskCompleted),  # tasks.task.get answers a completed task here
    ("ONTASKDELETE", TaskDeleted),
]


def expected(path: Path) -> type | None:
    for part, kind in EXPECTED:
        if part in path.name:
            return kind
    raise AssertionError(f"{path.name}: add what it should give to EXPECTED")


def bitrix24_answers_any_task_as_completed(api) -> None:  # type: ignore[no-untyped-def]
    def answer(request):  # type: ignore[no-untyped-def]
        answer = rest_fixture("task__completed")
        answer["result"]["task"]["id"] = str(json.loads(request.body)["taskId"])
        return 200, {"content-type": "application/json"}, json.dumps(answer)

    api.add_callback("POST", re.compile(re.escape(f"{WEBHOOK}tasks.task.get.json")), callback=answer)


def test_the_shared_deliveries_include_both_body_formats():
    suffixes = {path.suffix for path in PAYLOADS}
    assert {".json", ".form-urlencoded"} <= suffixes, suffixes


@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_a_real_delivery_is_verified_keyed_then_translated_as_its_name_says(api, path):
    body = path.read_bytes()
    payload = form.parse(body)
    auth = payload["auth"]
    token = auth["application_token"]
    portal = {"member_id": auth["member_id"], "domain": auth["domain"]}
    assert verify.verify(integration(secrets=(token,), settings=portal), {}, body, NOW) is True
    assert verify.verify(integration(secrets=("another-token", token)), {}, body, NOW) is True  # rotation overlap
    assert verify.verify(integration(secrets=("another-token",)), {}, body, NOW) is False
    other_portal = {"member_id": "0" * 32, "domain": "intrus.bitrix24.com"}
    assert verify.verify(integration(secrets=(token,), settings=other_portal), {}, body, NOW) is False
    assert verify.idempotency_key({}, body), f"{path.name}: no key from its event, object and ts"
    bitrix24_answers_any_task_as_completed(api)

    translation = translate.translate(integration(secrets=(token,)), delivery(body), rest_client())

    kind = expected(path)
    assert translation.event_name == payload["event"]
    if kind is None:
        assert translation.events == () and translation.ignored, path.name
        assert len(api.calls) == 0
        return
    (event,) = translation.events
    assert type(event) is kind, path.name
    data = payload["data"]
    task_id = data["FIELDS_AFTER"]["ID"] if kind is TaskCompleted else data["FIELDS_BEFORE"]["ID"]
    assert event.task_ref == str(task_id)


def test_the_comment_delivery_of_the_new_task_card_is_never_read_as_an_update_of_task_0(api):
    """Its ``FIELDS_AFTER[ID]`` is 0 and the task is ``TASK_ID``: were it read
    as a task event, it would name a task that does not exist."""
    path = SHARED_PAYLOADS / "ONTASKCOMMENTADD-new-task-card-IGNORE.docs-example.json"
    if not path.is_file():
        pytest.skip(f"{path.name} is not among the shared Bitrix24 deliveries")
    assert verify.idempotency_key({}, path.read_bytes()).startswith("bitrix24:ONTASKCOMMENTADD:555/")
    translation = translate.translate(integration(), delivery(path.read_bytes()), rest_client())
    assert translation.events == () and translation.ignored


def test_the_derived_form_body_reads_exactly_like_the_docs_json_rendition():
    derived = SHARED_PAYLOADS / "ONTASKUPDATE-outgoing-webhook.DERIVED.form-urlencoded"
    documented = SHARED_PAYLOADS / "ONTASKUPDATE-app-handler.docs-example.json"
    if not (derived.is_file() and documented.is_file()):
        pytest.skip("the two ONTASKUPDATE renditions are not among the shared Bitrix24 deliveries")
    from_form, from_json = form.parse(derived.read_bytes()), form.parse(documented.read_bytes())
    assert from_form["data"]["FIELDS_AFTER"] == {"ID": "123"} and from_json["data"]["FIELDS_AFTER"] == {"ID": 123}
    assert from_form["data"]["IS_ACCESSIBLE_AFTER"] == from_json["data"]["IS_ACCESSIBLE_AFTER"] == "undefined"
