"""What a wheel ships: every Python package of the three folders is listed in
pyproject.toml (setuptools maps the folders onto jalon.* names, so a package
left out of the list is missing from a regular install, though an editable
one hides it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _listed() -> tuple[set[str], dict[str, str]]:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(setuptools["packages"]), setuptools["package-dir"]


def _on_disk(package_dir: dict[str, str]) -> set[str]:
    found = set()
    for name, folder in package_dir.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            relative = init.parent.relative_to(base).parts
            if "__pycache__" not in relative:
                found.add(".".join([name, *relative]))
    return found


def test_every_package_on_disk_is_shipped_and_every_listed_one_exists():
    listed, package_dir = _listed()
    on_disk = _on_disk(package_dir)
    assert "jalon.connector.plugin" in on_disk
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - on_disk == set(), "these listed packages have no folder"
