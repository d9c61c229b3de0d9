"""A plugin imports the kit (``jalon.connector.plugin``) and the core's events,
nothing else of jalon: no model, no session, no rule, no other connector
module, no other plugin, absolutely or relatively, at module level or in a
function."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.core.test_layering import imported_modules

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
ALLOWED = ("jalon.connector.plugin", "jalon.core.events")


def _package_of(path: Path) -> str:
    parts = list(path.relative_to(PLUGINS).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    else:
        parts = parts[:-1]
    return ".".join(["jalon", "plugins", *parts])


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def forbidden_imports(source: str, package: str) -> list[str]:
    """The jalon modules ``source`` imports beyond the kit, the core's events
    and its own plugin's modules (names it imports from the kit are fine, the
    kit's submodules are not)."""
    own = ".".join(package.split(".")[:3])  # jalon.plugins.<name>
    bad = []
    for name in sorted(imported_modules(source, package)):
        if not (name == "jalon" or name.startswith("jalon.")) or name == own or name.startswith(own + "."):
            continue
        if name in ALLOWED or any(allowed.startswith(name + ".") for allowed in ALLOWED + (own,)):
            continue  # the kit, the events, or a package above them (`from jalon.core import events`)
        parent = name.rpartition(".")[0]
        if parent in ALLOWED and not _is_module(name):
            continue  # a name imported from the kit or the events
        bad.append(name)
    return bad


PLUGIN_FILES = sorted(PLUGINS.rglob("*.py"))


def test_there_are_plugin_files_to_check():
    assert PLUGINS / "jira" / "reconcile.py" in PLUGIN_FILES


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: str(p.relative_to(PLUGINS)))
def test_a_plugin_imports_only_the_kit_and_the_core_events(path):
    assert forbidden_imports(path.read_text(encoding="utf-8"), _package_of(path)) == []


@pytest.mark.parametrize("source", [
    "from jalon.core.models import Integration",
    "from jalon.core import models",
    "import jalon.core.db",
    "from jalon.core.rules import apply_event",
    "def f():\n    from jalon.core.db import unit_of_work\n",
    "from jalon.connector.relay.intake import integration_view",
    "from jalon.connector import notify",
    "from jalon.connector.plugin.types import Comment",
    "from jalon.connector.net.http import RestClient",
    "from jalon.plugins.clickup import client",
    "from ...connector.outbox import notify",
    "from .. import clickup",
])
def test_the_check_catches_each_kind_of_forbidden_import(source):
    assert forbidden_imports(source, "jalon.plugins.jira") != []


@pytest.mark.parametrize("source", [
    "from jalon.connector.plugin import RestClient, hookimpl, Translation",
    "from jalon.core.events import TaskCompleted, CoreEvent",
    "from . import client",
    "from .client import JiraClient",
    "import jwt",
    "from marshmallow import fields",
])
def test_the_check_lets_the_kit_the_events_and_the_plugins_own_modules_through(source):
    assert forbidden_imports(source, "jalon.plugins.jira") == []
