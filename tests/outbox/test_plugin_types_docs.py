"""docs/plugins.md shows every type that crosses the plugin API with its
fields, in order: a plugin author reads the fields there, not in the code."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from jalon.connector.plugin import types as plugin_types

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
TYPES = [cls for _, cls in inspect.getmembers(plugin_types, inspect.isclass)
         if dataclasses.is_dataclass(cls) and cls.__module__ == plugin_types.__name__]


def test_there_are_types_to_check():
    assert {"OutboxView", "Attachment"} <= {cls.__name__ for cls in TYPES}


@pytest.mark.parametrize("cls", TYPES, ids=lambda cls: cls.__name__)
def test_each_type_is_documented_with_its_fields_in_order(cls):
    match = re.search(rf"`{cls.__name__}\((.*?)\)`", DOCS.read_text())
    assert match, f"docs/plugins.md does not show `{cls.__name__}(...)`"
    documented = [part.split("=")[0].strip() for part in match.group(1).split(",") if part.strip()]
    assert documented == [f.name for f in dataclasses.fields(cls)]
