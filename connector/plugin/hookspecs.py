"""The plugin API: every hook a jalon plugin may implement.

Project name, marker name and entry-point group are all ``jalon``; every hook
is named ``jalon_<area>_<verb>`` and is called with keyword arguments only.
A plugin implements the hooks it needs with :data:`hookimpl`, imported from
the kit (:mod:`jalon.connector.plugin`)::

    from jalon.connector.plugin import SourceSpec, hookimpl

    @hookimpl
    def jalon_source_register():
        return SourceSpec(name="gitlab", title="GitLab", settings_schema=GitLabSettings)

Source hooks are routed: they reach only the plugin whose
``jalon_source_register`` named the ``source`` (channel hooks likewise), so a
plugin never checks whose turn it is. They still receive the name, for a
plugin that serves several tools.

Every hook is documented in ``docs/plugins.md``; a test fails when one is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from jalon.connector.plugin.types import (
        ChannelSpec,
        Comment,
        Connected,
        DeliveryView,
        IntegrationView,
        JobSpec,
        OutboxView,
        SendResult,
        SourceSpec,
        Translation,
    )
    from jalon.connector.net.http import RestClient
    from jalon.core.events import CoreEvent

PROJECT = "jalon"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- sources: a PM tool that sends webhooks -------------------------------------------


@hookspec
def jalon_source_register() -> SourceSpec:
    """Describe a source plugin: its name (the ``<source>`` of
    ``/hooks/<source>/<integration>``), a title, and the marshmallow schema of
    its integration ``settings``. Called once when the plugin manager is built;
    every source plugin answers (the results are collected)."""


@hookspec(firstresult=True)
def jalon_source_verify(
    source: str, integration: IntegrationView, headers: Mapping[str, str], body: bytes, now: datetime
) -> bool | None:
    """Say whether a delivery is authentic, from its RAW body bytes and headers,
    before anything is parsed or stored. ``integration.secrets`` holds every
    secret accepted right now (the current one, and the previous one during a
    rotation overlap). Compare in constant time (``hmac.compare_digest``).
    Return True or False for your source, None for another's. Called during
    the webhook request: make no network call here."""


@hookspec(firstresult=True)
def jalon_source_idempotency_key(
    source: str, integration: IntegrationView, headers: Mapping[str, str], body: bytes
) -> str | None:
    """The key that makes a redelivery of the same event a duplicate (at most
    200 characters): the tool's delivery id when it has a stable one, else a
    key derived from the content. Called during the webhook request, after
    verification: make no network call. Return None for another's source (the
    connector then falls back to the SHA-256 of the body)."""


@hookspec(firstresult=True)
def jalon_source_translate(
    source: str, integration: IntegrationView, delivery: DeliveryView, http: RestClient
) -> Translation | None:
    """Turn a stored delivery into core events (``jalon.core.events``), by a
    worker, outside any webhook request. ``http`` is a REST client for the
    integration's ``base_url`` (timeouts, retries on 429/5xx honouring
    Retry-After) for thin payloads that need the task fetched. Return
    ``Translation(event_name, events)``, with no events and an
    ``ignored`` reason for deliveries the plugin deliberately leaves alone.
    Raise :class:`~jalon.connector.plugin.types.Unreadable` for an authentic
    delivery that cannot be understood (it becomes a dead letter at once);
    any other exception is retried with backoff."""


@hookspec(firstresult=True)
def jalon_source_comment(
    source: str, integration: IntegrationView, comment: Comment, http: RestClient
) -> SendResult | None:
    """Post ``comment.text`` on the task ``comment.task_ref`` in the PM tool
    (the write-back that tells the project team billing has acted). Called by
    the outbox dispatcher, with retries: raise
    :class:`~jalon.connector.plugin.types.RetryLater` to be called again
    later, :class:`~jalon.connector.plugin.types.PermanentFailure` to give up."""


@hookspec(firstresult=True)
def jalon_source_connect(
    source: str, integration: IntegrationView, webhook_url: str, projects: Sequence[str], http: RestClient
) -> Sequence[str] | Connected | None:
    """Register the connector's webhook in the PM tool, for ``jalon
    integrations connect``: the integration was just created or updated (its
    current secret is ``integration.secrets[0]``, its admin credentials in
    ``integration.credentials``), ``webhook_url`` is where the tool must send
    (``<public-url>/hooks/<source>/<key>``) and ``projects`` the PM projects to
    filter on. Return the lines telling the admin what was done (never a
    secret), or :class:`~jalon.connector.plugin.types.Connected` with those
    lines and the secret the tool generated, when the tool chooses it (the
    connector stores it as the integration's new secret, keeping the one
    before it for the rotation overlap, and never prints it); None for
    another's source. Raise
    :class:`~jalon.connector.net.http.RemoteError` or
    :class:`~jalon.connector.plugin.types.PermanentFailure` when the tool
    refuses: the command reports it and exits 1."""


@hookspec(firstresult=True)
def jalon_source_reconcile(
    source: str, integration: IntegrationView, projects: Sequence[str], since: datetime, now: datetime,
    http: RestClient
) -> Sequence[CoreEvent] | None:
    """Say what changed in the tool between ``since`` and ``now`` in the mapped ``projects``
    (tasks that completed or reopened, time logged, changed or deleted), as
    core events: the catch-up for deliveries the tool never sent or never
    retried. Called by the connector's ``reconcile.<source>`` job, outside any
    request and any transaction; the connector owns the schedule, the cursor
    (``since`` is the last success minus an overlap), one integration's
    failure never stops the others, and each event goes through the same
    deduplicated inbox as a webhook delivery (a synthetic delivery, visible in
    the delivery log and replayable). Give each event a stable ``event_id``
    (the same change found twice is one delivery). The core is idempotent on
    task states and worklogs: reporting a change the webhook already brought
    bills nothing twice. Raise :class:`~jalon.connector.net.http.RemoteError`
    when the tool cannot be asked: the run fails for this integration only and
    the next one looks back from its last success again."""


@hookspec(firstresult=True)
def jalon_source_comment_targets(
    source: str, integration: IntegrationView, task_ref: str, project_ref: str | None
) -> Sequence[str] | None:
    """Where a write-back about ``task_ref`` goes: the task references to
    comment on, ``[]`` for nowhere (something that cannot receive a comment,
    such as a Jira version). Not implemented or None: the task itself. Called
    when the write-back is queued, inside the billing transaction: make no
    network call."""


# --- channels: where notifications go --------------------------------------------------


@hookspec
def jalon_channel_register() -> ChannelSpec:
    """Describe a channel plugin: its name (the ``kind`` of a notification
    channel, e.g. ``email``, ``chat``, ``webhook``), a title, and the
    marshmallow schema of the channel's ``target``. Collected from all."""


@hookspec(firstresult=True)
def jalon_channel_send(channel: str, message: OutboxView, settings: Mapping[str, Any]) -> SendResult | None:
    """Deliver one outbox message through the channel named ``channel``; answer
    None when the channel is not yours. ``settings`` are the connector's own
    settings (SMTP host, sender address...). Raise ``RetryLater`` (optionally
    with ``after`` seconds, e.g. from a Retry-After header) or
    ``PermanentFailure``; return a ``SendResult`` with the message id the
    remote side gave, if any. Send with ``message.idempotency_key`` where the
    remote side supports one."""


# --- the relay's life --------------------------------------------------------------------


@hookspec
def jalon_delivery_processed(delivery: DeliveryView, outcomes: Sequence[Mapping[str, Any]]) -> None:
    """Observe a delivery once its events were applied and committed (for
    metrics or logs). Every plugin is called; exceptions are logged and never
    undo the processing."""


@hookspec
def jalon_scheduler_jobs() -> Sequence[JobSpec]:
    """Contribute scheduled jobs (polling, reconciliation, period close...):
    each ``JobSpec`` names the job, its interval, and a function
    ``run(context) -> dict`` that must be idempotent. Collected from all."""
