"""The plugin manager, built by a factory (never at import time).

Plugins are found through the ``jalon`` entry-point group, the built-in ones
(Jira, ClickUp, Bitrix24, e-mail, chat, webhook) exactly as a third party's.

Source and channel hooks are routed: ``pm.source("jira")`` calls only the
plugin whose ``jalon_source_register`` named ``jira`` (``pm.channel("email")``
likewise for channels), so a plugin never checks whose turn it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pluggy

from jalon.connector.plugin import hookspecs
from jalon.connector.plugin.types import ChannelSpec, SourceSpec

ENTRY_POINT_GROUP = "jalon"


class Hooks:
    """The hooks of the one plugin that registered a source or a channel:
    ``hooks.jalon_source_translate(source=..., ...)`` reaches that plugin and
    no other that registers a source (pluggy's ``subset_hook_caller``).
    Plugins that register none, such as a ``wrapper=True`` hook timing every
    translation, still see every call."""

    def __init__(self, pm: pluggy.PluginManager, plugin: object, name: str, rivals: list[object]):
        self._pm = pm
        self._plugin = plugin
        self._rivals = rivals
        self.name = name
        self._callers: dict[str, Any] = {}

    def __getattr__(self, hook: str) -> Any:
        if not hook.startswith("jalon_"):
            raise AttributeError(hook)
        caller = self._callers.get(hook)
        if caller is None:
            others = [p for p in self._rivals if p is not self._plugin]
            caller = self._callers[hook] = self._pm.subset_hook_caller(hook, remove_plugins=others)
        return caller


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, which also knows which plugin serves which source and channel."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self._routes: dict[tuple[str, str], Hooks] | None = None

    def register(self, plugin: object, name: str | None = None) -> str | None:
        self._routes = None
        return super().register(plugin, name)

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        self._routes = None
        return super().unregister(plugin, name)

    def _table(self) -> dict[tuple[str, str], Hooks]:
        if self._routes is None:
            routes: dict[tuple[str, str], Hooks] = {}
            for kind, hook in (("source", self.hook.jalon_source_register),
                               ("channel", self.hook.jalon_channel_register)):
                rivals = [impl.plugin for impl in hook.get_hookimpls()]
                for impl in hook.get_hookimpls():
                    spec = impl.function()
                    if spec is None:
                        continue
                    if (kind, spec.name) in routes:
                        raise ValueError(f"two plugins register the {kind} {spec.name!r}: "
                                         f"{routes[(kind, spec.name)]._plugin!r} and {impl.plugin!r}")
                    routes[(kind, spec.name)] = Hooks(self, impl.plugin, spec.name, rivals)
            self._routes = routes
        return self._routes

    def source(self, name: str) -> Hooks | None:
        """The hooks of the plugin that serves the source ``name``; None when no plugin does."""
        return self._table().get(("source", name))

    def channel(self, name: str) -> Hooks | None:
        """The hooks of the plugin that serves the channel ``name``; None when no plugin does."""
        return self._table().get(("channel", name))


def get_plugin_manager(*, load_entrypoints: bool = True, extra: Iterable[object] = ()) -> PluginManager:
    """A fresh manager: the hookspecs, the installed plugins, then ``extra``
    (objects or modules with hookimpls, e.g. a test's fake source).
    ``check_pending`` makes a misspelt hook fail here, loudly, and a source or
    channel registered twice fails here too."""
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    if load_entrypoints:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    pm._table()
    return pm


def sources(pm: pluggy.PluginManager) -> dict[str, SourceSpec]:
    return {spec.name: spec for spec in pm.hook.jalon_source_register() if spec is not None}


def channels(pm: pluggy.PluginManager) -> dict[str, ChannelSpec]:
    return {spec.name: spec for spec in pm.hook.jalon_channel_register() if spec is not None}
