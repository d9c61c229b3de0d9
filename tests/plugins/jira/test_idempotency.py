"""A redelivery of the same Jira event gets the same key; two changes never do."""

from __future__ import annotations

import json

from jalon.plugins.jira import verify

from .support import fixture, fixture_bytes


def key(payload: dict, headers: dict | None = None) -> str | None:
    return verify.idempotency_key(headers or {}, json.dumps(payload).encode())


def test_cloud_deliveries_are_keyed_by_the_webhook_identifier():
    body = fixture_bytes("jira_issue_updated__cloud_done")
    assert verify.idempotency_key({"X-Atlassian-Webhook-Identifier": "abc-123"}, body) == "jira-delivery:abc-123"


def test_a_cloud_retry_with_the_same_identifier_is_a_duplicate_even_if_the_body_differs():
    one = verify.idempotency_key({"x-atlassian-webhook-identifier": "abc-123"}, b'{"timestamp": 1}')
    two = verify.idempotency_key({"x-atlassian-webhook-identifier": "abc-123"}, b'{"timestamp": 2}')
    assert one == two


def test_a_very_long_identifier_still_fits_in_200_characters():
    assert len(verify.idempotency_key({"x-atlassian-webhook-identifier": "x" * 500}, b"{}")) <= 200


def test_a_data_center_redelivery_of_a_status_change_is_a_duplicate():
    payload = fixture("jira_issue_updated__dc_issue_closed")
    again = dict(payload, timestamp=payload["timestamp"] + 5000)  # sent again later, same change
    assert key(payload) == key(again) == "jira:jira:issue_updated:issue:10300:changelog:30010"


def test_two_status_changes_of_one_issue_have_two_keys():
    assert key(fixture("jira_issue_updated__dc_issue_closed")) != key(fixture("jira_issue_updated__dc_issue_reopened"))


def test_a_worklog_created_then_updated_then_deleted_has_three_keys():
    keys = {key(fixture(f"worklog_{kind}__cloud")) for kind in ("created", "updated", "deleted")}
    assert len(keys) == 3


def test_a_worklog_updated_twice_has_two_keys_and_a_redelivery_one():
    first = fixture("worklog_updated__cloud")
    second = json.loads(json.dumps(first))
    second["worklog"]["updated"] = "2026-11-02T11:00:00.000+0100"
    assert key(first) != key(second)
    assert key(first) == key(json.loads(json.dumps(first)))


def test_a_released_version_is_keyed_by_the_version():
    assert key(fixture("jira_version_released__cloud")) == "jira:jira:version_released:version:10010"


def test_an_event_without_a_change_id_is_keyed_by_its_timestamp():
    payload = fixture("jira_issue_deleted__cloud")
    assert key(payload) != key(dict(payload, timestamp=payload["timestamp"] + 1))


def test_a_body_that_is_not_a_json_object_leaves_the_key_to_the_connector():
    assert verify.idempotency_key({}, b"not json") is None
    assert verify.idempotency_key({}, b"[1]") is None
