"""What the connector checks of an integration before the core stores it: a
source that an installed plugin serves, ``settings`` that this plugin's
``settings_schema`` accepts (the base :class:`IntegrationSettings` for a
plugin that declares none), and a ``base_url`` the SSRF guard lets through
unless those settings say ``allow_private_network: true`` (as a channel's URL
is checked; the guard checks again, resolving the name, at every call).

The admin API, ``jalon config apply`` and ``jalon integrations connect`` all
save integrations with :func:`checker`'s check (``catalog.upsert_integration``
calls it once the integration's source is known not to change), so a misspelt or mistyped
setting is refused with its name wherever it comes from, and an integration
no plugin can serve is never stored (its deliveries would all be 404).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import marshmallow as ma

from jalon.core.errors import Invalid

from jalon.connector.net import ssrf
from jalon.connector.plugin.manager import sources
from jalon.connector.plugin.types import IntegrationSettings


def error_paths(messages: Any, prefix: str = "", *, item: str = "[{}]") -> dict[str, list[str]]:
    """marshmallow's nested messages -> {"settings.done_statuses[0]": [...]}:
    a field is ``.name``; a list item ``[i]`` as a reader of a YAML file
    writes it, or ``.i`` with ``item=".{}"`` (the admin API's problems). A
    message about a whole object (``_schema``) is filed under its path,
    ``body`` at the top."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if key == "_schema":
                path = prefix
            elif isinstance(key, int) and prefix:
                path = prefix + item.format(key)
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for where, texts in error_paths(value, path, item=item).items():
                flat.setdefault(where, []).extend(texts)
        return flat
    if isinstance(messages, (list, tuple)):
        for message in messages:
            for where, texts in error_paths(message, prefix, item=item).items():
                flat.setdefault(where, []).extend(texts)
        return flat
    return {prefix or "body": [str(messages)]}


def describe(errors: Mapping[str, list[str]]) -> str:
    """One line for a command's error: ``settings.flavour: Must be one of: cloud, datacenter.``"""
    return "; ".join(f"{path}: {' '.join(texts)}" for path, texts in errors.items())


def settings_schema(pm: Any, source: str) -> ma.Schema:
    """The schema of ``source``'s settings; ``unknown_source`` when no installed plugin serves it."""
    specs = sources(pm)
    spec = specs.get(source)
    if spec is None:
        message = (f"no installed plugin serves the source {source!r} "
                   f"(installed: {', '.join(sorted(specs)) or 'none'})")
        raise Invalid(message, code="unknown_source", details={"errors": {"source": [message]}})
    return (spec.settings_schema or IntegrationSettings)()


def check_settings(pm: Any, source: str, settings: Any, *, base_url: str | None = None) -> dict[str, Any]:
    """The settings to store for an integration of ``source``: the keys given,
    each with the value the plugin's schema loads (``"true"`` given for a
    boolean is stored ``true``), its defaults left to the schema at read time.
    Raises :class:`Invalid` ``unknown_source`` or ``settings_invalid``, whose
    ``details["errors"]`` holds marshmallow's messages under ``settings`` (or
    ``source``), for the API's problem and the commands' paths; and
    ``url_not_allowed`` (under ``base_url``) for a ``base_url`` the SSRF
    guard refuses (:func:`check_base_url`)."""
    schema = settings_schema(pm, source)
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        messages = {"settings": ["Not a valid mapping type."]}
        raise Invalid(describe(error_paths(messages)), code="settings_invalid", details={"errors": messages})
    given = dict(settings)
    try:
        loaded = schema.load(given)
    except ma.ValidationError as error:
        messages = {"settings": error.messages}
        raise Invalid(f"{describe(error_paths(messages))} (settings of a {source} integration)",
                      code="settings_invalid", details={"errors": messages}) from None
    check_base_url(base_url, allow_private_network=loaded.get("allow_private_network") is True)
    # dumped again, so that what is stored is JSON (a date or a decimal as text)
    dumped = schema.dump(loaded)
    return {key: dumped.get(key, value) for key, value in given.items()}


def check_base_url(base_url: str | None, *, allow_private_network: bool) -> None:
    """Refuse (``url_not_allowed``, naming ``base_url`` and the setting that
    would allow it) a tool's address the SSRF guard refuses: not http(s),
    credentials in it, this machine or a non-public address. A name that does
    not resolve yet is accepted: the guard resolves it at every call."""
    if not base_url:
        return
    try:
        ssrf.check_url(str(base_url), allow_private_network=allow_private_network, resolve=False)
    except ssrf.UrlNotAllowed as error:
        message = (f"base_url: {error.message} (a tool on your own network needs the setting "
                   "allow_private_network: true)")
        raise ssrf.UrlNotAllowed(message, details={"errors": {"base_url": [message]}}) from None


def checker(pm: Any) -> Callable[..., dict[str, Any]]:
    """The ``check`` that ``catalog.upsert_integration`` and ``apply_config`` take."""
    return lambda source, settings, base_url=None: check_settings(pm, source, settings, base_url=base_url)


def setting_default(pm: Any, source: str, key: str) -> Any:
    """The value ``key`` takes when it is absent (the schema's ``load_default``), or None."""
    field = settings_schema(pm, source).load_fields.get(key)
    if field is None or field.load_default is ma.missing:
        return None
    default = field.load_default
    return default() if callable(default) else default
