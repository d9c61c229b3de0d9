"""Real Jira deliveries (../shared/pm-payloads/jira/, gathered from public
captures) go through verification and translation: ``-IGNORE`` files are
ignored, the others give the event their name announces; none raises.
The files are read where they are, never copied into the repository."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from jalon.core.events import TaskCompleted, TaskDeleted, TaskReopened, TimeLogChanged, TimeLogDeleted, TimeLogged
from jalon.plugins.jira import translate, verify

from .support import NOW, SHARED_PAYLOADS, delivery, integration, rest_client, signed_headers

PAYLOADS = sorted(SHARED_PAYLOADS.glob("*.json")) if SHARED_PAYLOADS.is_dir() else []
pytestmark = pytest.mark.skipif(
    not PAYLOADS, reason=f"the shared Jira deliveries are not here ({SHARED_PAYLOADS}): conformance not checked"
)

EXPECTED = {
    "status-to-done": TaskCompleted,
    "issue_closed": TaskCompleted,
    "reopened": TaskReopened,
    "worklog_created": TimeLogged,
    "worklog_updated": TimeLogChanged,
    "worklog_deleted": TimeLogDeleted,
    "issue_deleted": TaskDeleted,  # billing data is never deleted; finance is told
}


def expected(path: Path) -> type | None:
    if "-IGNORE" in path.name:
        return None
    matches = [kind for part, kind in EXPECTED.items() if part in path.stem]
    assert matches, f"{path.name}: add what it should give to EXPECTED"
    return matches[0]


def serve_the_issue(payload: dict) -> None:
    """Worklog payloads name only the issue id: Jira answers with the issue."""
    worklog = payload.get("worklog") or {}
    if not worklog.get("issueId"):
        return
    site = worklog["self"].split("/rest/")[0]
    responses.get(f"{site}/rest/api/3/issue/{worklog['issueId']}", json={
        "id": worklog["issueId"], "key": "ZUL-1", "self": f"{site}/rest/api/2/issue/{worklog['issueId']}",
        "fields": {"project": {"key": "ZUL"}, "issuetype": {"name": "Task"}, "labels": [], "fixVersions": [],
                   "status": {"name": "In Progress", "statusCategory": {"key": "indeterminate"}}}})


@responses.activate
@pytest.mark.parametrize("path", PAYLOADS, ids=lambda p: p.name)
def test_a_real_delivery_is_verified_then_translated_as_its_name_says(path):
    body = path.read_bytes()
    payload = json.loads(body)
    view = integration(base_url=None)
    assert verify.verify(view, signed_headers(body), body, NOW) is True
    assert verify.verify(view, signed_headers(body, secret="wrong"), body, NOW) is False
    assert verify.idempotency_key({}, body)
    serve_the_issue(payload)
    site = (payload.get("worklog") or {}).get("self", "").split("/rest/")[0] or None
    translation = translate.translate(view, delivery(body), rest_client(site) if site else rest_client())

    kind = expected(path)
    if kind is None:
        assert translation.events == () and translation.ignored, path.name
    else:
        assert [type(event) for event in translation.events] == [kind], path.name
        if kind in (TimeLogged, TimeLogChanged):
            assert translation.events[0].seconds == payload["worklog"]["timeSpentSeconds"]
