"""The core knows no HTTP and no PM tool: no module under core/ imports Flask,
requests, werkzeug, the connector or a plugin, absolutely or relatively."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
CORE_PACKAGE = "jalon.core"
FORBIDDEN = ("flask", "requests", "werkzeug", "jalon.connector", "jalon.plugins")


def _package_of(path: Path) -> str:
    parts = list(path.relative_to(CORE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    else:
        parts = parts[:-1]
    return ".".join([CORE_PACKAGE, *parts])


def imported_modules(source: str, package: str) -> set[str]:
    """Every module an import statement of ``source`` names, resolved to its
    absolute name (``from .. import connector`` in jalon.core -> jalon.connector)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def forbidden_imports(source: str, package: str) -> list[str]:
    return sorted(
        name for name in imported_modules(source, package)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    )


CORE_FILES = sorted(CORE.rglob("*.py"))


def test_the_core_has_python_files_to_check():
    assert len(CORE_FILES) > 10
    assert CORE / "invoicing.py" in CORE_FILES


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_no_core_module_imports_http_or_pm_tool_code(path):
    assert forbidden_imports(path.read_text(encoding="utf-8"), _package_of(path)) == []


@pytest.mark.parametrize("source, package", [
    ("import flask", "jalon.core"),
    ("from requests.adapters import HTTPAdapter", "jalon.core"),
    ("import werkzeug.exceptions as wz", "jalon.core"),
    ("from jalon.connector import app", "jalon.core"),
    ("from ..connector import app", "jalon.core"),
    ("from .. import plugins", "jalon.core"),
    ("from ...plugins.jira import hooks", "jalon.core.migrations"),
    ("def f():\n    import jalon.plugins.clickup\n", "jalon.core"),
])
def test_the_layering_check_catches_each_kind_of_forbidden_import(source, package):
    assert forbidden_imports(source, package) != []


@pytest.mark.parametrize("source", [
    "from . import audit", "from .money import Money", "import sqlalchemy", "from jalon.core import events",
    "import requests_toolbelt_is_not_requests",
])
def test_the_layering_check_lets_the_core_own_imports_through(source):
    assert forbidden_imports(source, "jalon.core") == []
