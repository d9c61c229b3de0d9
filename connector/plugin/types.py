"""The small types that cross the plugin API (see :mod:`jalon.connector.plugin.hookspecs`).

Plugins receive read-only views, never ORM objects: they cannot write to the
database behind the connector's back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from marshmallow import RAISE, Schema, fields

from jalon.core.events import CoreEvent


@dataclass(frozen=True, slots=True)
class ConnectOption:
    """An option of ``jalon integrations connect <source>`` that a source
    plugin contributes: ``--<flag> VALUE`` stores VALUE under ``key`` in the
    integration's ``settings`` or ``credentials`` (write-only, never printed)."""

    flag: str  # e.g. "api-token" for --api-token
    key: str  # e.g. "api_token"
    into: str = "settings"  # "settings" or "credentials"
    help: str = ""
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.into not in ("settings", "credentials"):
            raise ValueError(f"ConnectOption {self.flag!r}: into must be 'settings' or 'credentials'")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    title: str
    settings_schema: type | None = None  # a marshmallow Schema for Integration.settings
    # options of `jalon integrations connect <name>` (credentials, settings)
    connect_options: tuple[ConnectOption, ...] = ()
    # the tool's API address when it is the same for everyone (ClickUp's): the
    # integration's base_url when `jalon integrations connect` is given no --site
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    name: str
    title: str
    target_schema: type | None = None  # a marshmallow Schema for NotificationChannel.target


@dataclass(frozen=True, slots=True)
class IntegrationView:
    key: str
    source: str
    name: str
    base_url: str | None
    settings: Mapping[str, Any]
    # every secret accepted now: the current one first, then the previous one
    # while the rotation overlap lasts
    secrets: tuple[str, ...] = ()
    credentials: Mapping[str, Any] = field(default_factory=dict)
    # the statuses the integration's mappings name as done ("livré", "validé client"):
    # a source whose statuses have no done category of their own reads them as completions
    # (the core then narrows per mapping); given when deliveries are translated and reconciled
    mapped_done_statuses: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never shows the secrets or credentials
        return f"IntegrationView(key={self.key!r}, source={self.source!r})"


@dataclass(frozen=True, slots=True)
class DeliveryView:
    id: int
    integration: str
    source: str
    idempotency_key: str
    received_at: datetime
    headers: Mapping[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class Translation:
    event_name: str
    events: Sequence[CoreEvent] = ()
    ignored: str | None = None  # why nothing is done, for the delivery log


@dataclass(frozen=True, slots=True)
class Comment:
    task_ref: str
    text: str
    idempotency_key: str
    project_ref: str | None = None
    task_url: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file that goes with a message (an invoice's PDF), read from the
    database by the dispatcher before the send."""

    filename: str
    media_type: str
    content: bytes

    def __repr__(self) -> str:  # never dumps the bytes into a log
        return f"Attachment({self.filename!r}, {self.media_type!r}, {len(self.content)} bytes)"


@dataclass(frozen=True, slots=True)
class OutboxView:
    id: int
    kind: str
    idempotency_key: str
    destination: Mapping[str, Any]
    payload: Mapping[str, Any]
    attempts: int
    # the channel's write-only secret (webhook signing), when it has one
    secret: str | None = None
    allow_private_network: bool = False
    # the files named by the payload's "attachments", loaded by the dispatcher
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class SendResult:
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class Connected:
    """What ``jalon_source_connect`` did: the lines telling the admin, and the
    webhook secret the tool generated when it chooses the secret itself
    (ClickUp), which the connector stores as the integration's new secret
    (never printed). A plain sequence of lines still works."""

    lines: Sequence[str]
    secret: str | None = None

    def __repr__(self) -> str:  # never shows the secret
        return f"Connected(lines={list(self.lines)!r}, secret={'***' if self.secret else None})"


@dataclass(frozen=True, slots=True)
class JobTick:
    """What a plugin's scheduled job is run with: which tick, the time, and when
    the job last succeeded (None: never). No database: a job says what it
    found through the hooks, as the rest of a plugin does."""

    job: str
    tick: datetime
    now: datetime
    last_success: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    interval: timedelta
    run: Callable[[Any], Mapping[str, Any] | None]
    description: str = ""


class Unreadable(Exception):
    """An authentic delivery that cannot be understood: kept as a dead letter."""


class RetryLater(Exception):
    """Try again later; ``after`` seconds when the remote side said (Retry-After)."""

    def __init__(self, reason: str, *, after: float | None = None):
        super().__init__(reason)
        self.after = after


class PermanentFailure(Exception):
    """Retrying will not help (e.g. 401, 404): the message ends ``failed``."""


class IntegrationSettings(Schema):
    """The settings every integration has, whatever its tool. A source
    plugin's ``settings_schema`` extends it (``class JiraSettings(IntegrationSettings)``);
    unknown keys are refused with their name, so a misspelt setting never
    passes silently."""

    class Meta:
        unknown = RAISE

    allow_private_network = fields.Boolean(
        load_default=False,
        metadata={"description": "The tool is on the company's own network (e.g. Jira Data Center on an intranet): "
                                 "let jalon reach private addresses for it (the SSRF guard refuses them otherwise)."})
