"""jalon's Bitrix24 source plugin: the hookimpls, registered through the
``jalon`` entry-point group like any third party's. See README.md for the set-up.

form.py (reading form-urlencoded bodies with PHP bracket keys, or JSON),
verify.py (the application token, delivery keys), translate.py (deliveries to
core events), client.py (Bitrix24's REST API), comment.py (write-backs),
connect.py (event handlers, bound with the admin's credentials), reconcile.py
(what changed, and the elapsed time Bitrix24 sends no event for, asked on a
schedule). Everything else (routing, storage, retries, the schedule) is the
connector's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from jalon.connector.plugin import (
    Comment,
    Connected,
    ConnectOption,
    DeliveryView,
    IntegrationSettings,
    IntegrationView,
    RestClient,
    SendResult,
    SourceSpec,
    Translation,
    hookimpl,
)
from jalon.core.events import CoreEvent
from marshmallow import ValidationError, fields

from . import comment as _comment
from . import connect as _connect
from . import reconcile as _reconcile
from . import translate as _translate
from . import verify as _verify

SOURCE = "bitrix24"


class PortalDomain(fields.String):
    """A portal's host (``acme.bitrix24.com``), also accepted as a URL; kept as the lower-case host."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        host = _verify.normal_domain(text)
        if not host or any(char in host for char in " @?#") or "." not in host:
            raise ValidationError("a Bitrix24 portal's address, e.g. acme.bitrix24.com")
        return host


class MemberId(fields.String):
    """A portal's ``member_id`` (32 hexadecimal digits on every portal seen), kept in lower case."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip().lower()
        if not 8 <= len(text) <= 64 or any(char not in "0123456789abcdef" for char in text):
            raise ValidationError("a Bitrix24 member_id: hexadecimal digits (auth[member_id] of a delivery)")
        return text


class Bitrix24Settings(IntegrationSettings):
    domain = PortalDomain(load_default=None, allow_none=True,
                          metadata={"description": "The portal's address (acme.bitrix24.com): deliveries from "
                                                   "another portal are refused; task links point there"})
    member_id = MemberId(load_default=None, allow_none=True,
                         metadata={"description": "The portal's member_id (auth[member_id] of its deliveries): "
                                                  "deliveries from another portal are refused"})
    awaiting_control_is_done = fields.Boolean(
        load_default=False,
        metadata={"description": "A task awaiting control (status 4: finished by its assignee, not yet accepted "
                                 "by its creator) counts as completed"})
    milestone_tags = fields.List(fields.String(), load_default=list,
                                 metadata={"description": "Tags that mark a milestone task (task_type milestone)"})


CONNECT_OPTIONS = (
    ConnectOption("webhook-url", "webhook_url", "credentials",
                  help="The inbound webhook's URL, https://<portal>/rest/<user id>/<code>/ (Developer resources; "
                       "stored write-only, never printed)."),
    ConnectOption("application-token", "application_token", "credentials",
                  help="The application token Bitrix24 shows for the outgoing webhook (or gave the app): "
                       "becomes the integration's secret, which every delivery must carry (never printed)."),
    ConnectOption("access-token", "access_token", "credentials",
                  help="An OAuth app's access token, instead of an inbound webhook (stored write-only)."),
    ConnectOption("refresh-token", "refresh_token", "credentials",
                  help="The OAuth app's refresh token (valid 180 days; stored write-only)."),
    ConnectOption("client-id", "client_id", "credentials", help="The OAuth app's client id (to refresh its token)."),
    ConnectOption("client-secret", "client_secret", "credentials",
                  help="The OAuth app's client secret (to refresh its token; stored write-only)."),
    ConnectOption("domain", "domain", "settings", help="The portal's address, e.g. acme.bitrix24.com."),
    ConnectOption("member-id", "member_id", "settings", help="The portal's member_id (auth[member_id])."),
)


@hookimpl
def jalon_source_register() -> SourceSpec:
    return SourceSpec(name=SOURCE, title="Bitrix24", settings_schema=Bitrix24Settings,
                      connect_options=CONNECT_OPTIONS)


@hookimpl
def jalon_source_verify(source: str, integration: IntegrationView, headers: Mapping[str, str], body: bytes,
                        now: datetime) -> bool:
    return _verify.verify(integration, headers, body, now)


@hookimpl
def jalon_source_idempotency_key(source: str, integration: IntegrationView, headers: Mapping[str, str],
                                 body: bytes) -> str | None:
    return _verify.idempotency_key(headers, body)


@hookimpl
def jalon_source_translate(source: str, integration: IntegrationView, delivery: DeliveryView,
                           http: RestClient) -> Translation:
    return _translate.translate(integration, delivery, http)


@hookimpl
def jalon_source_comment(source: str, integration: IntegrationView, comment: Comment,
                         http: RestClient) -> SendResult:
    return _comment.post(integration, comment, http)


@hookimpl
def jalon_source_comment_targets(source: str, integration: IntegrationView, task_ref: str,
                                 project_ref: str | None) -> Sequence[str]:
    return _comment.targets(task_ref)


@hookimpl
def jalon_source_connect(source: str, integration: IntegrationView, webhook_url: str, projects: Sequence[str],
                         http: RestClient) -> Sequence[str] | Connected:
    return _connect.register(integration, webhook_url, projects, http)


@hookimpl
def jalon_source_reconcile(source: str, integration: IntegrationView, projects: Sequence[str], since: datetime,
                           now: datetime, http: RestClient) -> Sequence[CoreEvent]:
    return _reconcile.changes(integration, projects, since, now, http)
