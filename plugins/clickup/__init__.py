"""jalon's ClickUp source plugin: the hookimpls, registered through the ``jalon``
entry-point group like any third party's. See README.md for the set-up.

verify.py (authenticity, delivery keys), translate.py (deliveries to core
events), client.py (ClickUp's REST API v2), comment.py (write-backs),
connect.py (the webhook, registered with the admin's token), reconcile.py
(what changed, asked on a schedule). Everything else (routing, storage,
retries, the schedule) is the connector's.
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
from .client import API

SOURCE = "clickup"


class ClickUpId(fields.Field):
    """A ClickUp id, given as digits in a string or as a number; kept as a string."""

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip().isdigit():
            raise ValidationError("a ClickUp id: digits, e.g. 9012345678")
        return str(value).strip()


class ClickUpSettings(IntegrationSettings):
    team_id = ClickUpId(load_default=None, allow_none=True,
                        metadata={"description": "The ClickUp Workspace id (team_id in API v2): needed to fetch "
                                                 "time entries and to register the webhook"})
    done_statuses = fields.List(fields.String(), load_default=list,
                                metadata={"description": "Statuses that complete a task besides ClickUp's done and "
                                                         "closed status types, e.g. livré (case is ignored)"})
    milestone_tags = fields.List(fields.String(), load_default=list,
                                 metadata={"description": "Tags that mark a milestone task (task_type milestone)"})
    bill_milestone_type = fields.Boolean(load_default=True,
                                         metadata={"description": "A task of ClickUp's Milestone type has the "
                                                                  "task_type milestone"})


CONNECT_OPTIONS = (
    ConnectOption("api-token", "api_token", "credentials",
                  help="ClickUp personal API token (pk_...; stored write-only, never printed)."),
    ConnectOption("team-id", "team_id", "settings", help="ClickUp Workspace id (the number in app.clickup.com/<id>/)."),
)


@hookimpl
def jalon_source_register() -> SourceSpec:
    return SourceSpec(name=SOURCE, title="ClickUp", settings_schema=ClickUpSettings, connect_options=CONNECT_OPTIONS,
                      base_url=API)


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
