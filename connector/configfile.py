"""Configuration as code: the YAML file that `jalon config apply` loads.

String values may name environment variables, so that secrets stay out of the
file: ``${JIRA_WEBHOOK_SECRET}`` or ``${JIRA_WEBHOOK_SECRET:-fallback}``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from jalon.core.errors import Invalid

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float):
        raise Invalid(
            f"{where}: {value!r} is a float; write amounts and rates as quoted strings (\"1200.00\")",
            code="config_float_refused",
        )
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise Invalid(f"{where}: environment variable {name} is not set", code="config_missing_env")

    return _VARIABLE.sub(replace, value)


def load(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise Invalid(f"cannot read {path}: {error.strerror}", code="config_unreadable") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise Invalid(f"{path} is not valid YAML{where}", code="config_invalid_yaml") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid(f"{path} must hold a mapping of sections (entities, clients, ...)", code="config_invalid_yaml")
    return _expand(data, "config")
