"""Every event the plugin supports has a fixture, and every fixture is valid JSON
of the event its name says."""

from __future__ import annotations

import json

import pytest

from jalon.plugins.jira.translate import HANDLERS

from .support import FIXTURES


def stem(event: str) -> str:
    return event.replace(":", "_")


@pytest.mark.parametrize("event", sorted(HANDLERS))
def test_every_supported_event_has_a_fixture(event):
    assert list(FIXTURES.glob(f"{stem(event)}__*.json")), \
        f"tests/fixtures/jira has no {stem(event)}__<variant>.json for the supported event {event!r}"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_every_fixture_is_named_event__variant_after_its_webhook_event(path):
    event, _, variant = path.stem.partition("__")
    assert variant, f"{path.name}: name it <event>__<variant>.json"
    assert stem(json.loads(path.read_text())["webhookEvent"]) == event
