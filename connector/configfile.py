"""Configuration as code: the YAML file that `jalon config apply` loads.

String values may name environment variables, so that secrets stay out of the
file: ``${JIRA_WEBHOOK_SECRET}`` or ``${JIRA_WEBHOOK_SECRET:-fallback}``.

Each item is then loaded by the admin API's own input schema (:func:`check`),
so the file and the API refuse the same fields with the same messages; the
catalog (``jalon.core.catalog.apply_config``) keeps the domain rules.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any

import marshmallow as ma
import yaml

from jalon.core.catalog import config_sections
from jalon.core.errors import Invalid

from jalon.connector.integrations import describe, error_paths

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
    if isinstance(value, date):  # YAML reads 2026-01-01 as a date; the API's schemas take its ISO text
        return value.isoformat()
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


# the natural key of each section's items: the API takes it from the URL
_KEYS: dict[str, tuple[str, ...]] = {
    "entities": ("code",),
    "clients": ("code",),
    "contracts": ("reference",),
    "integrations": ("key",),
    "mappings": ("integration", "project"),
    "channels": ("key",),
}


def _item_schemas() -> dict[str, ma.Schema]:
    """For each section, the API's input schema of a PUT, with the natural key
    that the API reads from the URL as a required field."""
    from jalon.connector.web.api import channels, clients, contracts, entities, integrations, mappings

    bodies: dict[str, type[ma.Schema]] = {
        "entities": entities.EntityIn,
        "clients": clients.ClientIn,
        "contracts": contracts.ContractIn,
        "integrations": integrations.IntegrationIn,
        "mappings": mappings.MappingIn,
        "channels": channels.ChannelIn,
    }
    schemas = {}
    for section, body in bodies.items():
        keys = {name: ma.fields.String(required=True, validate=ma.validate.Length(min=1)) for name in _KEYS[section]}
        schemas[section] = type(f"{body.__name__}Item", (body,), keys)()
    return schemas


def check(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration with each item loaded by the admin API's schema. The
    first bad item is refused (``validation_failed``, as the API's 422) with
    the path in the file of each bad field: ``clients[2].vat_number: Not a
    valid string.`` An integration's ``settings`` are its plugin's, checked
    when it is applied (``jalon.connector.integrations.checker``)."""
    schemas = _item_schemas()
    checked: dict[str, Any] = {key: value for key, value in config.items() if key == "version"}
    for section, items in config_sections(config).items():
        loaded = []
        for index, item in enumerate(items):
            where = f"{section}[{index}]"
            try:
                value = schemas[section].load(item)
            except ma.ValidationError as error:
                errors = error_paths(error.messages, where)
                raise Invalid(describe(errors), code="validation_failed", details={"errors": errors}) from None
            loaded.append(value)
        checked[section] = loaded
    return checked


def apply_file(session: Any, path: str | Path, pm: Any, *, actor: str) -> dict[str, dict[str, int]]:
    """Read, check and apply a configuration file in the caller's transaction:
    what ``jalon config apply`` and the demo both do. Each item is checked as
    the admin API checks a PUT (the same schemas, an integration's plugin's
    settings schema, a channel's target and SSRF guard), then by the catalog's
    domain rules; the first refusal raises, naming the field's path."""
    from jalon.connector.channels.config import checker
    from jalon.connector.integrations import checker as integration_checker
    from jalon.core.catalog import apply_config

    data = check(load(path))
    return apply_config(session, data, actor=actor, channel_check=checker(pm) if data.get("channels") else None,
                        integration_check=integration_checker(pm))
