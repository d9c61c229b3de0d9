"""jalon's Jira source plugin: the hookimpls, registered through the ``jalon``
entry-point group like any third party's. See README.md for the set-up."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from marshmallow import INCLUDE, Schema, fields, validate

from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.net.http import RestClient
from jalon.connector.plugin.types import DeliveryView, IntegrationView, SourceSpec, Translation

from . import translate as _translate
from . import verify as _verify

SOURCE = "jira"


class JiraSettings(Schema):
    class Meta:
        unknown = INCLUDE

    flavour = fields.String(load_default="cloud", validate=validate.OneOf(["cloud", "datacenter"]))
    jwt_issuer = fields.String(load_default=None, allow_none=True)
    done_statuses = fields.List(fields.String(), load_default=list)


@hookimpl
def jalon_source_register() -> SourceSpec:
    return SourceSpec(name=SOURCE, title="Jira (Cloud and Data Center)", settings_schema=JiraSettings)


@hookimpl
def jalon_source_verify(source: str, integration: IntegrationView, headers: Mapping[str, str], body: bytes,
                        now: datetime) -> bool | None:
    if source != SOURCE:
        return None
    return _verify.verify(integration, headers, body, now)


@hookimpl
def jalon_source_idempotency_key(source: str, integration: IntegrationView, headers: Mapping[str, str],
                                 body: bytes) -> str | None:
    if source != SOURCE:
        return None
    return _verify.idempotency_key(headers, body)


@hookimpl
def jalon_source_translate(source: str, integration: IntegrationView, delivery: DeliveryView,
                           http: RestClient) -> Translation | None:
    if source != SOURCE:
        return None
    return _translate.translate(integration, delivery, http)


# hookimpls of the write-back and reconciliation modules are imported below
from .comment import jalon_source_comment  # noqa: E402,F401
from .reconcile import jalon_scheduler_jobs  # noqa: E402,F401
from .connect import jalon_source_connect  # noqa: E402,F401
