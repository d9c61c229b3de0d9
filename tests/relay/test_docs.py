"""docs/plugins.md documents every hook with its exact signature, and every
hook has a test (as datasette's tests/test_docs.py does for its hooks)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from jalon.connector.plugin import hookspecs

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "plugins.md"
HOOKS = sorted(name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("jalon_"))


def signature(name: str) -> str:
    """``def jalon_x(a: T, ...) -> R:`` exactly as hookspecs.py declares it."""
    sig = inspect.signature(getattr(hookspecs, name))
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {name}({params}) -> {sig.return_annotation}:"


def doc_section(name: str) -> str:
    text = DOCS.read_text()
    match = re.search(rf"^### {name}\n(.*?)(?=^#{{2,3}} |\Z)", text, flags=re.S | re.M)
    assert match, f"docs/plugins.md has no '### {name}' section"
    return match.group(1)


def test_there_are_hooks_to_check():  # type: ignore[no-untyped-def]
    assert len(HOOKS) >= 9 and "jalon_source_verify" in HOOKS


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented_with_its_exact_signature(name):  # type: ignore[no-untyped-def]
    section = doc_section(name)
    assert signature(name) in section, f"docs/plugins.md: {name} must show `{signature(name)}`"


@pytest.mark.parametrize("name", HOOKS)
def test_the_docs_say_whether_a_hook_stops_at_the_first_answer(name):  # type: ignore[no-untyped-def]
    firstresult = getattr(hookspecs, name).jalon_spec["firstresult"]
    section = doc_section(name)
    assert ("**firstresult.**" in section) == firstresult, name


def _test_sources() -> dict[Path, str]:
    return {path: path.read_text() for path in (ROOT / "tests").rglob("*.py") if path.name != "test_docs.py"}


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_test(name):  # type: ignore[no-untyped-def]
    # honest: a test file must implement the hook or call it, not merely name it
    used = re.compile(rf"(def {name}\(|\.hook\.{name}\(|\)\.{name}\()")  # implemented, called, or called routed
    assert any(used.search(text) for text in _test_sources().values()), f"no test implements or calls {name}"
