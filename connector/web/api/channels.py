"""Notification channels (admin only): where finance and the teams hear
about billing. The signing secret is write-only (``has_secret``); target URLs
pass the SSRF guard (422 ``url_not_allowed``) unless
``allow_private_network`` says otherwise."""

from __future__ import annotations

from flask import current_app, g, request
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from jalon.core import catalog
from jalon.core.models import NotificationChannel

from jalon.connector.channels.config import checker
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import PageArgs, Schema, StrictBoolean, page_of, paginate
from jalon.connector.web.api.problems import Problem

blp = Blueprint("channels", __name__, url_prefix="/channels",
                description="Notification channels: e-mail, chat webhooks, signed HTTP callbacks (admin only)")
protect(blp, write_scopes=("admin",))


@blp.before_request
def _admin_only():  # type: ignore[no-untyped-def]
    # a chat webhook's URL is its credential: even reading channels needs an admin token
    if request.method != "OPTIONS" and g.get("jalon_scope") != "admin":
        raise Problem(403, "insufficient_scope", "channels are visible to admin tokens only",
                      headers={"WWW-Authenticate": 'Bearer realm="jalon", error="insufficient_scope", scope="admin"'})


class ChannelIn(Schema):
    kind = fields.String(required=True, validate=validate.Length(min=1, max=50),
                         metadata={"description": "email, chat or webhook (or a plugin's channel)", "example": "email"})
    name = fields.String(validate=validate.Length(max=200))
    target = fields.Dict(keys=fields.String(), required=True,
                         metadata={"description": "email: {to: [...]}; chat and webhook: {url: ...}; "
                                   "optional language: fr|en"})
    events = fields.List(fields.String(), metadata={"description": "Subscribed events; empty or omitted: all"})
    secret = fields.String(load_only=True, validate=validate.Length(min=1, max=500),
                           metadata={"description": "webhook: the signing secret whsec_<base64>; write-only"})
    allow_private_network = StrictBoolean(metadata={"description": "Lift the SSRF guard for this channel"})
    enabled = StrictBoolean()


class ChannelOut(Schema):
    key = fields.String()
    kind = fields.String()
    name = fields.String()
    target = fields.Dict()
    events = fields.List(fields.String())
    has_secret = fields.Function(lambda c: bool(c.secret), metadata={"type": "boolean"})
    allow_private_network = fields.Boolean()
    enabled = fields.Boolean()
    created_at = fields.DateTime()


ChannelPage = page_of(ChannelOut, "ChannelPage")


@blp.route("")
class Channels(MethodView):
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, ChannelPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List notification channels"""
        return paginate(db(), select(NotificationChannel).order_by(NotificationChannel.key), args)


@blp.route("/<key>")
class ChannelByKey(MethodView):
    @blp.response(200, ChannelOut)
    def get(self, key):  # type: ignore[no-untyped-def]
        """Get a notification channel (never its secret)"""
        return catalog.get_channel(db(), key)

    @blp.arguments(ChannelIn)
    @blp.response(200, ChannelOut, description="Updated (or unchanged)")
    @blp.alt_response(201, schema=ChannelOut, description="Created")
    def put(self, data, key):  # type: ignore[no-untyped-def]
        """Create or update a notification channel (idempotent)

        Omitting ``secret`` keeps the stored one."""
        check = checker(current_app.extensions["jalon"].pm)
        channel, created = catalog.upsert_channel(db(), {**data, "key": key}, actor=actor(), check=check)
        return channel, 201 if created else 200
