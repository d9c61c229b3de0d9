"""What every part of the connector shares: the database, the plugin manager
and the settings. The web app, `jalon worker` and the tests each build one."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from typing import Any
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jalon.core import secrets
from jalon.core.db import database_url as resolve_database_url
from jalon.core.db import make_engine, make_sessionmaker
from jalon.core.errors import Invalid

from jalon.connector.net.http import LookupCache, RestClient, client_for
from jalon.connector.plugin.manager import PluginManager, get_plugin_manager
from jalon.connector.plugin.types import IntegrationView
from jalon.connector.settings import Settings, secret_keys


@dataclass
class Runtime:
    engine: Engine
    sessionmaker: sessionmaker[Session]
    pm: PluginManager
    settings: Settings
    # set by intake when a delivery is stored, by the worker when it wrote
    # outbox messages: the in-process loops wake at once instead of polling
    wake_worker: threading.Event = field(default_factory=threading.Event)
    wake_dispatcher: threading.Event = field(default_factory=threading.Event)
    # deliveries accepted by this process's intake (a rate, read by the worker loop)
    intake_accepted: int = 0
    # the REST look-ups of every integration's client (an issue's project, a user's name)
    http_cache: LookupCache = field(default_factory=LookupCache)

    def dispose(self) -> None:
        self.engine.dispose()

    def rest_client(self, integration: IntegrationView, **options: Any) -> RestClient:
        """The REST client for an integration's tool (its base URL, its SSRF
        policy, this process's look-up cache): what every hook that calls the
        tool receives, whoever calls it."""
        return client_for(integration, timeout=self.settings.http_timeout_seconds, cache=self.http_cache, **options)


# the key of the runtime's plugin manager in the ``info`` of each session it
# makes: a write-back queued in any transaction asks its source plugin where it
# goes (jalon.connector.outbox.notify), whoever opened the transaction
SESSION_PLUGINS = "jalon.plugins"


def build_runtime(
    database_url: str | None = None,
    *,
    settings: Settings | None = None,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
) -> Runtime:
    use_secret_keys()
    settings = settings or Settings.from_env()
    extra = [*plugins, *load_extra_plugins(settings.extra_plugins)]
    engine = make_engine(resolve_database_url(database_url))
    pm = get_plugin_manager(load_entrypoints=load_entrypoints, extra=extra)
    sessions = make_sessionmaker(engine)
    sessions.configure(info={SESSION_PLUGINS: pm})
    return Runtime(engine=engine, sessionmaker=sessions, pm=pm, settings=settings)


def use_secret_keys(environ: dict[str, str] | None = None) -> None:
    """Hand ``JALON_SECRET_KEYS`` to the core's sealed columns, at start-up.
    Without it, the keys this process was given already (the demo's
    temporary key, the tests'), or a clear error, ``secret_keys_missing``:
    no process opens the database without the keys to read and write its
    secrets sealed."""
    keys = secret_keys(environ)
    if keys:
        secrets.configure_keys(keys)
    elif not secrets.keys_configured():
        raise secrets.SecretKeysMissing(secrets.MISSING)


def check_secret_keys(engine: Engine) -> int:
    """What ``jalon serve`` and ``jalon worker`` check before they start:
    that every secret sealed in the database opens with the keys
    (``secret_unreadable`` otherwise, naming the first that does not), rather
    than a failure at each webhook later. Returns how many secrets are still
    stored in clear, from before sealing. A database without its tables yet
    holds none."""
    from sqlalchemy import inspect

    from jalon.core.db import read_only_session
    from jalon.core.models import Base

    tables = {column.table.name for column in secrets.sealed_columns(Base.metadata)}
    inspector = inspect(engine)
    if not all(inspector.has_table(table) for table in tables):
        return 0
    with read_only_session(make_sessionmaker(engine)) as session:
        return sum(count.sealed for count in secrets.reseal(session, Base.metadata, dry_run=True))


def load_extra_plugins(references: str) -> list[object]:
    """Import the plugins named in ``JALON_EXTRA_PLUGINS``: comma-separated
    ``module:attribute`` (or a bare ``module``) references, registered after
    the entry points. For plugins that are not installed as a distribution:
    a test's fake source, a site's own glue code."""
    loaded = []
    for reference in (part.strip() for part in references.split(",")):
        if not reference:
            continue
        module_name, _, attribute = reference.partition(":")
        try:
            target: object = importlib.import_module(module_name)
            for name in filter(None, attribute.split(".")):
                target = getattr(target, name)
        except (ImportError, AttributeError) as error:
            raise Invalid(f"JALON_EXTRA_PLUGINS: cannot load {reference!r} ({error})",
                          code="plugin_not_found") from None
        loaded.append(target)
    return loaded
