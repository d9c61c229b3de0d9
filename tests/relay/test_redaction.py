"""Secrets out of stored errors and shown messages: the one scrub."""

from __future__ import annotations

from jalon.connector.redaction import MASK, scrub


def test_every_occurrence_of_every_secret_is_masked():
    assert scrub("token abc123 then abc123 and s3cr3t", ["abc123", "s3cr3t"]) == f"token {MASK} then {MASK} and {MASK}"


def test_a_secret_containing_another_is_masked_whole():
    # the shorter first would leave "long-" showing
    assert scrub("key long-abc", ["abc", "long-abc"]) == f"key {MASK}"


def test_empty_secrets_are_ignored_and_text_without_secrets_is_unchanged():
    assert scrub("nothing to hide", ["", "absent"]) == "nothing to hide"
    assert scrub("nothing to hide", ()) == "nothing to hide"
