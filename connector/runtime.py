"""What every part of the connector shares: the database, the plugin manager
and the settings. The web app, `jalon worker` and the tests each build one."""

from __future__ import annotations

from collections.abc import Iterable
import threading
from dataclasses import dataclass, field

import pluggy
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jalon.core.db import database_url as resolve_database_url
from jalon.core.db import make_engine, make_sessionmaker

from .plugins import get_plugin_manager
from .settings import Settings


@dataclass
class Runtime:
    engine: Engine
    sessionmaker: sessionmaker[Session]
    pm: pluggy.PluginManager
    settings: Settings
    # set by intake when a delivery is stored, by the worker when it wrote
    # outbox messages: the in-process loops wake at once instead of polling
    wake_worker: threading.Event = field(default_factory=threading.Event)
    wake_dispatcher: threading.Event = field(default_factory=threading.Event)

    def dispose(self) -> None:
        self.engine.dispose()


def build_runtime(
    database_url: str | None = None,
    *,
    settings: Settings | None = None,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
) -> Runtime:
    engine = make_engine(resolve_database_url(database_url))
    return Runtime(
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        pm=get_plugin_manager(load_entrypoints=load_entrypoints, extra=plugins),
        settings=settings or Settings.from_env(),
    )
