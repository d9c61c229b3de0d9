"""What every part of the connector shares: the database, the plugin manager
and the settings. The web app, `jalon worker` and the tests each build one."""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from dataclasses import dataclass, field

from sqlalchemy import Engine, Text, cast, select, update
from sqlalchemy.orm import Session, sessionmaker

from jalon.core import audit, secrets
from jalon.core.db import database_url as resolve_database_url
from jalon.core.db import make_engine, make_sessionmaker
from jalon.core.errors import Invalid

from jalon.connector.net.http import CredentialsChanged, CredentialStore, LookupCache, RestClient, client_for
from jalon.connector.redaction import scrub
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
        tool receives, whoever calls it. It stores the integration's refreshed
        credentials (:class:`SealedCredentials`)."""
        options.setdefault("credentials", SealedCredentials(self.sessionmaker, integration.key))
        return client_for(integration, timeout=self.settings.http_timeout_seconds, cache=self.http_cache, **options)


log = logging.getLogger("jalon.connector.credentials")

# the audit action recorded when a tool refuses an integration's credentials for good
CREDENTIALS_REFUSED = "integration.credentials_refused"


class SealedCredentials(CredentialStore):
    """An integration's credentials in the database, sealed
    (``Integration.credentials``), for the plugin whose OAuth token expires
    (Bitrix24's: an hour) to store the refreshed one.

    A save is a compare-and-swap: one ``UPDATE ... WHERE`` the stored sealed
    text is still the one just read (compared as text: PostgreSQL's ``json``
    has no equality), so two workers refreshing at once cannot both win; the
    loser re-reads, finds its ``expected`` tokens gone and gets
    :class:`CredentialsChanged` with the winner's, which it uses. Each save
    commits at once, before the plugin uses the new token: a crash after the
    tool issued new tokens loses them only between the tool's answer and this
    commit. Routine refreshes leave no audit record (one an hour would bury
    the trail); a refusal does (:meth:`refused`)."""

    ATTEMPTS = 5

    def __init__(self, sessions: sessionmaker[Session], integration_key: str):
        self.sessions = sessions
        self.integration_key = integration_key

    def __repr__(self) -> str:
        return f"SealedCredentials({self.integration_key!r})"

    def _read(self, session: Session) -> tuple[int, dict[str, Any], str | None]:
        from jalon.core.models import Integration

        row = session.execute(
            select(Integration.id, Integration.credentials, cast(Integration.credentials, Text).label("sealed"))
            .where(Integration.key == self.integration_key)).one_or_none()
        if row is None:
            raise LookupError(f"integration {self.integration_key} is gone")
        return row[0], dict(row[1] or {}), row[2]

    def load(self) -> Mapping[str, Any]:
        with self.sessions() as session:
            return self._read(session)[1]

    def save(self, changes: Mapping[str, Any], *, expected: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        from jalon.core.models import Integration

        for _ in range(self.ATTEMPTS):
            with self.sessions() as session, session.begin():
                integration_id, current, raw = self._read(session)
                if expected and any(current.get(name) != value for name, value in expected.items()):
                    raise CredentialsChanged(current)
                stored = {**current, **changes}
                same = (cast(Integration.credentials, Text) == raw) if raw is not None \
                    else Integration.credentials.is_(None)
                done = session.execute(
                    update(Integration).where(Integration.id == integration_id, same).values(credentials=stored)
                    .execution_options(synchronize_session=False))
                if done.rowcount == 1:
                    log.info("integration %s: credentials %s stored", self.integration_key,
                             ", ".join(sorted(changes)))
                    return stored
        raise CredentialsChanged(self.load())  # changed under us on every try: the last word is the store's

    def refused(self, reason: str) -> None:
        """An audit record (``integration.credentials_refused``, actor
        ``connector``, the reason), unless the last record of the integration
        already says the same: an admin finds it in ``GET /api/v1/audit``."""
        from jalon.core.models import AuditRecord, Integration

        with self.sessions() as session, session.begin():
            integration = session.execute(select(Integration).where(
                Integration.key == self.integration_key)).scalar_one_or_none()
            if integration is None:
                return
            values = [str(v) for v in (integration.credentials or {}).values() if isinstance(v, str) and len(v) > 3]
            reason = scrub(reason, values)[:1000]
            last = session.execute(
                select(AuditRecord.action, AuditRecord.reason)
                .where(AuditRecord.subject_type == Integration.__tablename__,
                       AuditRecord.subject_id == str(integration.id))
                .order_by(AuditRecord.id.desc()).limit(1)).first()
            if last is not None and tuple(last) == (CREDENTIALS_REFUSED, reason):
                return
            audit.record(session, actor="connector", action=CREDENTIALS_REFUSED, subject=integration,
                         reason=reason)
        log.warning("integration %s: %s", self.integration_key, reason)


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
