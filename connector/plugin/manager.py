"""The plugin manager, built by a factory (never at import time).

Plugins are found through the ``jalon`` entry-point group, the built-in ones
(Jira, ClickUp, Bitrix24, e-mail, chat, webhook) exactly as a third party's.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from jalon.connector.plugin import hookspecs
from jalon.connector.plugin.types import ChannelSpec, SourceSpec

ENTRY_POINT_GROUP = "jalon"


def get_plugin_manager(*, load_entrypoints: bool = True, extra: Iterable[object] = ()) -> pluggy.PluginManager:
    """A fresh manager: the hookspecs, the installed plugins, then ``extra``
    (objects or modules with hookimpls, e.g. a test's fake source).
    ``check_pending`` makes a misspelt hook fail here, loudly."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return pm


def sources(pm: pluggy.PluginManager) -> dict[str, SourceSpec]:
    return {spec.name: spec for spec in pm.hook.jalon_source_register() if spec is not None}


def channels(pm: pluggy.PluginManager) -> dict[str, ChannelSpec]:
    return {spec.name: spec for spec in pm.hook.jalon_channel_register() if spec is not None}
