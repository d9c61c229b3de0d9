"""Connected PM tools, keyed by their integration key.

The webhook secret and the API credentials are write-only: accepted on PUT,
never returned (``has_secret`` / ``has_credentials`` say whether they are set)
and never logged. ``settings`` are the source plugin's: its schema refuses an
unknown key or a bad value (422 ``settings_invalid``), and a source no
installed plugin serves is refused (422 ``unknown_source``).
"""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from jalon.core import catalog
from jalon.core.models import Integration

from jalon.connector.integrations import checker
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import PageArgs, Schema, StrictBoolean, page_of, paginate

blp = Blueprint("integrations", __name__, url_prefix="/integrations",
                description="Connected PM tools (their secrets are write-only)")
protect(blp, write_scopes=("admin",))


class IntegrationIn(Schema):
    source = fields.String(required=True, validate=validate.Length(min=1, max=50),
                           metadata={"description": "The plugin that speaks to the tool", "example": "jira"})
    name = fields.String(validate=validate.Length(max=200))
    # an intranet tool (Jira Data Center at http://jira:8080) has no top-level domain
    base_url = fields.URL(allow_none=True, require_tld=False, schemes={"http", "https"},
                          validate=validate.Length(max=500))
    settings = fields.Dict(keys=fields.String(), metadata={
        "description": "Checked by the source plugin's settings schema (unknown keys refused); every source "
                       "has allow_private_network (the tool is on the company's own network)"})
    enabled = StrictBoolean()
    secret = fields.String(load_only=True, validate=validate.Length(min=1, max=500),
                           metadata={"description": "Webhook secret; write-only. A new one keeps the previous one "
                                     "valid for a rotation overlap."})
    credentials = fields.Dict(keys=fields.String(), load_only=True,
                              metadata={"description": "API credentials for write-backs; write-only"})


class IntegrationOut(Schema):
    key = fields.String()
    source = fields.String()
    name = fields.String()
    base_url = fields.String(allow_none=True)
    settings = fields.Dict()
    enabled = fields.Boolean()
    has_secret = fields.Function(lambda i: bool(i.secret), metadata={"type": "boolean"})
    has_credentials = fields.Function(lambda i: bool(i.credentials), metadata={"type": "boolean"})
    secret_rotated_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


IntegrationPage = page_of(IntegrationOut, "IntegrationPage")


@blp.route("")
class Integrations(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, IntegrationPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List integrations"""
        return paginate(db(), select(Integration).order_by(Integration.key), args)


@blp.route("/<key>")
class IntegrationByKey(MethodView):
    @blp.response(200, IntegrationOut)
    def get(self, key):  # type: ignore[no-untyped-def]
        """Get an integration (never its secrets)"""
        return catalog.get_integration(db(), key)

    @blp.arguments(IntegrationIn)
    @blp.response(200, IntegrationOut, description="Updated (or unchanged)")
    @blp.alt_response(201, schema=IntegrationOut, description="Created")
    def put(self, data, key):  # type: ignore[no-untyped-def]
        """Create or update an integration (idempotent)

        Omitting ``secret`` or ``credentials`` keeps the stored ones."""
        check = checker(current_app.extensions["jalon"].pm)
        integration, created = catalog.upsert_integration(db(), {**data, "key": key}, actor=actor(), check=check)
        return integration, 201 if created else 200
