"""The fixture guard: every event the plugin acts on has a fixture, every
fixture is named ``<event>__<variant>.<form|json>`` after the event it
carries, and every fixture is used by some test (none rots unread)."""

from __future__ import annotations

import pytest
from jalon.plugins.bitrix24 import form
from jalon.plugins.bitrix24.translate import HANDLERS

from .support import FIXTURES, HERE

DELIVERY_FIXTURES = sorted(path for path in FIXTURES.glob("*") if path.is_file())
ALL_FIXTURES = sorted(path for path in FIXTURES.rglob("*") if path.is_file())


@pytest.mark.parametrize("event", sorted(HANDLERS))
def test_every_supported_event_has_a_fixture(event):
    assert list(FIXTURES.glob(f"{event}__*")), \
        f"tests/plugins/bitrix24/fixtures has no {event}__<variant>.form for the supported event {event!r}"


def test_every_supported_event_has_a_form_urlencoded_fixture_as_bitrix24_sends_it():
    for event in HANDLERS:
        assert list(FIXTURES.glob(f"{event}__*.form")), f"{event}: add a form-urlencoded fixture"


@pytest.mark.parametrize("path", DELIVERY_FIXTURES, ids=lambda p: p.name)
def test_every_fixture_is_named_event__variant_after_its_event(path):
    event, _, variant = path.stem.partition("__")
    assert variant, f"{path.name}: name it <event>__<variant>.form"
    assert path.suffix in (".form", ".json"), f"{path.name}: .form (form-urlencoded) or .json"
    assert form.parse(path.read_bytes())["event"] == event


@pytest.mark.parametrize("path", ALL_FIXTURES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_every_fixture_is_used_by_some_test(path):
    tests = "\n".join(test.read_text(encoding="utf-8") for test in sorted(HERE.glob("test_*.py"))
                      if test.name != "test_fixtures.py")
    assert f'"{path.stem}"' in tests, f"{path.relative_to(FIXTURES)} is used by no test: use it or remove it"
