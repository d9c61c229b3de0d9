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


def _base(node: ast.ImportFrom, package: str) -> str:
    """The absolute module a ``from ... import`` statement takes names from."""
    if not node.level:
        return node.module or ""
    base_parts = package.split(".")
    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
    return ".".join(base_parts + ([node.module] if node.module else []))


def imported_modules(source: str, package: str) -> set[str]:
    """Every module an import statement of ``source`` names, resolved to its
    absolute name (``from .. import connector`` in jalon.core -> jalon.connector)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(node, package)
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


# -- no import cycle inside the core ------------------------------------------------

def _module_of(path: Path) -> str:
    package = _package_of(path)
    return package if path.name == "__init__.py" else f"{package}.{path.stem}"


def import_graph(sources: dict[str, tuple[str, str]]) -> dict[str, set[str]]:
    """{module: the modules of ``sources`` it imports}, from ``sources`` as
    {module: (source, package)}. Imports inside functions count as much as
    module-level ones: a deferred import is a cycle put off, not removed. Each
    name imported is taken for the most specific module it names: ``from .
    import audit`` -> jalon.core.audit, ``from .money import Money`` ->
    jalon.core.money, ``from . import render`` (a function of the package) ->
    the package."""

    def known(name: str) -> str:
        while name and name not in sources:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, (source, package) in sources.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _base(node, package)
                targets.update(known(f"{base}.{alias.name}") for alias in node.names)
        graph[module] = targets - {"", module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None when it has none."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path = [start], {start}
        stack = [(start, iter(sorted(graph[start])))]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return [*path[path.index(child):], child]
            elif child not in done:
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
                on_path.add(child)
    return None


def core_sources() -> dict[str, tuple[str, str]]:
    paths = sorted(CORE.glob("*.py")) + sorted((CORE / "documents").glob("*.py"))
    return {_module_of(path): (path.read_text(encoding="utf-8"), _package_of(path)) for path in paths}


def test_no_import_cycle_among_the_core_modules():
    graph = import_graph(core_sources())
    assert "jalon.core.balances" in graph["jalon.core.payments"]  # the graph is really built
    assert "jalon.core.documents.view" in graph["jalon.core.documents.cii"]
    assert find_cycle(graph) is None


def _graph_of(**modules: str) -> dict[str, set[str]]:
    return import_graph({f"jalon.core.{name}": (source, "jalon.core") for name, source in modules.items()})


@pytest.mark.parametrize("modules", [
    {"a": "from .b import x", "b": "from .a import y"},
    {"a": "from . import b", "b": "def f():\n    from . import a\n"},
    {"a": "import jalon.core.b", "b": "from jalon.core.c import z", "c": "from jalon.core import a"},
    {"a": "from .b import x", "b": "class C:\n    def m(self):\n        from .a import y\n"},
])
def test_the_cycle_check_catches_module_and_function_level_cycles(modules):
    cycle = find_cycle(_graph_of(**modules))
    assert cycle is not None and cycle[0] == cycle[-1]


@pytest.mark.parametrize("modules", [
    {"a": "from .b import x", "b": "from .c import y", "c": "import sqlalchemy"},
    {"a": "from . import b, c", "b": "from .c import y", "c": "from .money import Money"},
])
def test_the_cycle_check_lets_a_layered_graph_through(modules):
    assert find_cycle(_graph_of(**modules)) is None


def test_a_function_of_a_package_imported_by_its_own_module_is_a_cycle():
    # documents/store.py once took render() from the package that imports it
    sources = {
        "jalon.core.documents": ("from .store import ensure\n\ndef render(): ...", "jalon.core.documents"),
        "jalon.core.documents.store": ("def ensure():\n    from . import render\n", "jalon.core.documents"),
    }
    assert find_cycle(import_graph(sources)) == [
        "jalon.core.documents", "jalon.core.documents.store", "jalon.core.documents"]


def test_a_module_taking_a_sibling_from_its_package_does_not_depend_on_the_package():
    sources = {
        "jalon.core.documents": ("from .rendering import render", "jalon.core.documents"),
        "jalon.core.documents.rendering": ("from . import cii", "jalon.core.documents"),
        "jalon.core.documents.cii": ("from ..errors import Invalid", "jalon.core.documents"),
    }
    assert find_cycle(import_graph(sources)) is None
