"""jalon's Jira source plugin: the hookimpls, registered through the ``jalon``
entry-point group like any third party's. See README.md for the set-up.

verify.py (authenticity, delivery keys), translate.py (deliveries to core
events), client.py (Jira's REST API), comment.py (write-backs), connect.py
(the admin webhook), reconcile.py (what changed, asked on a schedule).
Everything else (routing, storage, retries, the schedule) is the connector's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from marshmallow import fields, validate

from jalon.connector.plugin import (
    Comment,
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

from . import comment as _comment
from . import connect as _connect
from . import reconcile as _reconcile
from . import translate as _translate
from . import verify as _verify

SOURCE = "jira"


class JiraSettings(IntegrationSettings):
    flavour = fields.String(load_default="cloud", validate=validate.OneOf(["cloud", "datacenter"]),
                            metadata={"description": "Jira Cloud (REST v3) or Data Center (REST v2)"})
    jwt_issuer = fields.String(load_default=None, allow_none=True,
                               metadata={"description": "The Connect app's key, for OAuth/JWT-signed deliveries"})
    done_statuses = fields.List(fields.String(), load_default=list,
                                metadata={"description": "Statuses that complete a task besides Jira's done category"})


CONNECT_OPTIONS = (
    ConnectOption("email", "email", "credentials", help="Admin e-mail (Jira Cloud basic auth, with --api-token)."),
    ConnectOption("api-token", "api_token", "credentials",
                  help="Admin API token (Jira Cloud; stored write-only, never printed)."),
    ConnectOption("pat", "pat", "credentials", help="Personal access token (Jira Data Center; stored write-only)."),
    ConnectOption("flavour", "flavour", "settings", help="Jira flavour (cloud for a new integration).",
                  choices=("cloud", "datacenter")),
)


@hookimpl
def jalon_source_register() -> SourceSpec:
    return SourceSpec(name=SOURCE, title="Jira (Cloud and Data Center)", settings_schema=JiraSettings,
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
                         http: RestClient) -> Sequence[str]:
    return _connect.register(integration, webhook_url, projects, http)


@hookimpl
def jalon_source_reconcile(source: str, integration: IntegrationView, projects: Sequence[str], since: datetime,
                           now: datetime, http: RestClient) -> Sequence[CoreEvent]:
    return _reconcile.changes(integration, projects, since, now, http)
