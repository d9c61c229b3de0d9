"""Authenticity (ClickUp's X-Signature) and the key that makes a redelivery a duplicate."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from jalon.plugins.clickup import verify

from .support import NOW, SECRET, fixture, fixture_bytes, integration, signed_headers

BODY = fixture_bytes("taskStatusUpdated__closed")


def key(payload: dict) -> str | None:
    return verify.idempotency_key({}, json.dumps(payload).encode())


# --- X-Signature ---------------------------------------------------------------------------------


def test_a_body_signed_with_the_webhook_secret_is_authentic():
    assert verify.verify(integration(), signed_headers(BODY), BODY, NOW) is True


def test_the_signature_is_the_lowercase_hex_hmac_sha256_of_the_raw_body():
    assert verify.signature(SECRET, BODY) == hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


def test_a_body_signed_with_another_secret_is_refused():
    assert verify.verify(integration(), signed_headers(BODY, secret="guess"), BODY, NOW) is False


def test_the_previous_secret_still_works_during_a_rotation_overlap():
    rotating = integration(secrets=("new-secret", SECRET))
    assert verify.verify(rotating, signed_headers(BODY, secret=SECRET), BODY, NOW) is True
    assert verify.verify(rotating, signed_headers(BODY, secret="new-secret"), BODY, NOW) is True
    assert verify.verify(integration(secrets=("new-secret",)), signed_headers(BODY), BODY, NOW) is False


def test_an_upper_case_hex_signature_is_the_same_signature():
    headers = {"X-Signature": verify.signature(SECRET, BODY).upper()}
    assert verify.verify(integration(), headers, BODY, NOW) is True


def test_the_header_name_is_matched_whatever_its_case_and_surrounding_blanks_are_ignored():
    headers = {"X-SIGNATURE": f"  {verify.signature(SECRET, BODY)} "}
    assert verify.verify(integration(), headers, BODY, NOW) is True


def test_a_delivery_without_signature_is_refused():
    assert verify.verify(integration(), {"content-type": "application/json"}, BODY, NOW) is False


@pytest.mark.parametrize("value", ["", "sha256=" + "0" * 64, "z" * 64, "abc", "é" * 64,
                                   hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()])
def test_a_garbled_signature_is_refused(value):
    assert verify.verify(integration(), {"x-signature": value}, BODY, NOW) is False


def test_a_body_altered_by_one_byte_is_refused():
    altered = bytearray(BODY)
    altered[len(altered) // 2] ^= 0x01
    assert bytes(altered) != BODY
    assert verify.verify(integration(), signed_headers(BODY), bytes(altered), NOW) is False


def test_nothing_is_authentic_for_an_integration_without_secrets():
    assert verify.verify(integration(secrets=()), signed_headers(BODY), BODY, NOW) is False
    assert verify.verify(integration(secrets=("",)), signed_headers(BODY, secret=""), BODY, NOW) is False


# --- idempotency keys ------------------------------------------------------------------------------


def test_a_change_is_keyed_by_its_webhook_and_history_items():
    assert verify.idempotency_key({}, BODY) == \
        "clickup:4b67ac88-9d3e-4f1a-b2c5-0e1f2a3b4c5d:4215567000000000101"


def test_a_retry_of_the_same_delivery_is_a_duplicate():
    assert verify.idempotency_key({}, BODY) == verify.idempotency_key({}, bytes(BODY))
    reformatted = json.dumps(json.loads(BODY)).encode()  # same change, other bytes
    assert verify.idempotency_key({}, reformatted) == verify.idempotency_key({}, BODY)


def test_task_updated_and_task_status_updated_of_one_change_have_one_key():
    assert key(fixture("taskUpdated__status_same_change")) == key(fixture("taskStatusUpdated__closed"))


def test_task_updated_and_task_time_tracked_updated_of_one_change_have_one_key():
    assert key(fixture("taskUpdated__time_spent_same_change")) == \
        key(fixture("taskTimeTrackedUpdated__created"))


def test_ids_sent_as_numbers_or_as_strings_give_one_key():
    assert key(fixture("taskStatusUpdated__closed_numbers")) == key(fixture("taskStatusUpdated__closed"))
    assert key(fixture("taskTimeTrackedUpdated__created_numbers")) == key(fixture("taskTimeTrackedUpdated__created"))


def test_two_changes_of_one_task_have_two_keys():
    assert key(fixture("taskStatusUpdated__closed")) != key(fixture("taskStatusUpdated__reopened"))


def test_a_time_entry_created_edited_then_deleted_has_three_keys():
    keys = {key(fixture(f"taskTimeTrackedUpdated__{kind}")) for kind in ("created", "edited", "deleted")}
    assert len(keys) == 3


def test_a_time_change_carries_its_time_entry_id_in_the_key():
    assert key(fixture("taskTimeTrackedUpdated__created")).endswith(":4215567000000009001")


def test_the_history_item_ids_are_sorted_so_their_order_does_not_matter():
    payload = fixture("taskCreated__ignored")
    swapped = dict(payload, history_items=list(reversed(payload["history_items"])))
    assert key(payload) == key(swapped)
    assert key(payload).endswith(":4215567000000000301,4215567000000000302")


def test_a_deleted_task_is_keyed_by_webhook_event_and_task():
    assert key(fixture("taskDeleted__task")) == "clickup:4b67ac88-9d3e-4f1a-b2c5-0e1f2a3b4c5d:taskDeleted:86c0m1l5t"


def test_a_key_never_exceeds_200_characters():
    payload = fixture("taskStatusUpdated__closed")
    payload["history_items"] = [{"id": str(10**30 + n)} for n in range(20)]
    long_key = key(payload)
    assert len(long_key) <= 200 and long_key.startswith("clickup:")
    assert long_key == key(payload)


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe", b"[1, 2]", b"{}",
                                  b'{"event": "taskStatusUpdated", "history_items": [{"id": "1"}]}',
                                  b'{"event": "taskUpdated", "history_items": [], "task_id": "x", "webhook_id": "w"}',
                                  b'{"event": "taskUpdated", "history_items": [{"field": "status"}], "webhook_id": "w"}'])
def test_a_body_without_what_identifies_the_change_leaves_the_key_to_the_connector(body):
    assert verify.idempotency_key({}, body) is None
