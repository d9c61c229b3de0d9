"""The fixture guard: every event the plugin acts on has a fixture, every
fixture is named ``<event>__<variant>.json`` after the event it carries, and
every fixture is used by some test (none rots unread)."""

from __future__ import annotations

import json

import pytest
from jalon.plugins.clickup.translate import HANDLERS

from .support import FIXTURES, HERE

WEBHOOK_FIXTURES = sorted(FIXTURES.glob("*.json"))
ALL_FIXTURES = sorted(FIXTURES.rglob("*.json"))


@pytest.mark.parametrize("event", sorted(HANDLERS))
def test_every_supported_event_has_a_fixture(event):
    assert list(FIXTURES.glob(f"{event}__*.json")), \
        f"tests/plugins/clickup/fixtures has no {event}__<variant>.json for the supported event {event!r}"


@pytest.mark.parametrize("path", WEBHOOK_FIXTURES, ids=lambda p: p.name)
def test_every_fixture_is_named_event__variant_after_its_event(path):
    event, _, variant = path.stem.partition("__")
    assert variant, f"{path.name}: name it <event>__<variant>.json"
    assert json.loads(path.read_text(encoding="utf-8"))["event"] == event


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_is_used_by_some_test(path):
    tests = "\n".join(test.read_text(encoding="utf-8") for test in sorted(HERE.glob("test_*.py"))
                      if test.name != "test_fixtures.py")
    assert f'"{path.stem}"' in tests, f"{path.relative_to(FIXTURES)} is used by no test: use it or remove it"
