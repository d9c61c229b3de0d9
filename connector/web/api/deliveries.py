"""The inbox: received webhook deliveries, their dead letters, and replay.

Any token may read (finance watches the dead letters too); only an admin may
see a raw body (``?include=body``) or replay a delivery. The raw body is never
listed.
"""

from __future__ import annotations

from urllib.parse import quote_plus

from flask import current_app, g
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from jalon.core.errors import NotFound
from jalon.core.models import DELIVERY_STATUSES, Delivery, Integration

from jalon.connector.redaction import scrub
from jalon.connector.relay.worker import replay
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import PageArgs, Schema, page_of, paginate
from jalon.connector.web.api.problems import Problem

blp = Blueprint("deliveries", __name__, url_prefix="/deliveries",
                description="Received webhook deliveries (the inbox), dead letters and replay")
protect(blp, write_scopes=("admin",))


class DeliveryOut(Schema):
    id = fields.Integer()
    integration = fields.Function(lambda d: d.integration.key, metadata={"type": "string"})
    source = fields.String()
    idempotency_key = fields.String()
    event_name = fields.String(allow_none=True)
    origin = fields.String(metadata={
        "enum": ["webhook", "reconcile"],
        "description": "webhook: sent by the tool; reconcile: found by asking the tool (the body is the event)"})
    status = fields.String(metadata={"enum": list(DELIVERY_STATUSES)})
    attempts = fields.Integer()
    received_at = fields.DateTime()
    next_attempt_at = fields.DateTime()
    processed_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)
    body_sha256 = fields.String()
    body_pruned_at = fields.DateTime(allow_none=True)
    outcomes = fields.List(fields.Dict())


class DeliveryDetailOut(DeliveryOut):
    headers = fields.Dict(metadata={"description": "The headers kept (lower-case, no credentials)"})
    body = fields.Method("_body", allow_none=True, metadata={
        "type": "string", "description": "Only with ?include=body (admin): the raw body as UTF-8 text, the "
                                         "integration's webhook secrets masked (Bitrix24 sends its token in the body)"})

    def _body(self, delivery: Delivery):  # type: ignore[no-untyped-def]
        if not g.get("jalon_include_body") or delivery.body is None:
            return None
        text = delivery.body.decode("utf-8", errors="replace")
        integration = db().get(Integration, delivery.integration_id)
        secrets = [s for s in (integration.secret, integration.previous_secret) if s] if integration else []
        return scrub(text, [*secrets, *(quote_plus(s) for s in secrets)])


DeliveryPage = page_of(DeliveryOut, "DeliveryPage")


class DeliveryListArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(DELIVERY_STATUSES))
    integration = fields.String(metadata={"description": "Integration key"})
    source = fields.String(metadata={"description": "Source plugin name, e.g. jira"})


class DeliveryGetArgs(Schema):
    include = fields.String(validate=validate.OneOf(("body",)),
                            metadata={"description": "body: add the raw body (admin tokens only)"})


class ReplayIn(Schema):
    reason = fields.String(validate=validate.Length(min=1, max=500),
                           metadata={"description": "Why, for the audit trail"})


def _get(delivery_id: int) -> Delivery:
    delivery = db().get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
    return delivery


@blp.route("", methods=["GET"])
@blp.arguments(DeliveryListArgs, location="query")
@blp.response(200, DeliveryPage)
def list_deliveries(args):  # type: ignore[no-untyped-def]
    """List deliveries, newest first (``?status=dead`` for the dead letters)"""
    query = select(Delivery).order_by(Delivery.id.desc())
    if "status" in args:
        query = query.where(Delivery.status == args["status"])
    if "source" in args:
        query = query.where(Delivery.source == args["source"])
    if "integration" in args:
        query = query.join(Integration, Integration.id == Delivery.integration_id).where(
            Integration.key == args["integration"])
    return paginate(db(), query, args)


@blp.route("/<id(deliveries):delivery_id>")
class DeliveryById(MethodView):
    @blp.arguments(DeliveryGetArgs, location="query")
    @blp.response(200, DeliveryDetailOut)
    def get(self, args, delivery_id):  # type: ignore[no-untyped-def]
        """Get a delivery (its raw body only with ?include=body, for admins)"""
        delivery = _get(delivery_id)
        if args.get("include") == "body":
            if g.jalon_scope != "admin":
                raise Problem(403, "insufficient_scope", "only an admin token may read a raw body",
                              headers={"WWW-Authenticate": 'Bearer realm="jalon", error="insufficient_scope", '
                                                           'scope="admin"'})
            g.jalon_include_body = True
        return delivery


@blp.route("/<id(deliveries):delivery_id>/replay", methods=["POST"])
@blp.arguments(ReplayIn)
@blp.response(200, DeliveryOut)
def replay_delivery(data, delivery_id):  # type: ignore[no-untyped-def]
    """Replay a delivery (a dead letter after a fix, or any other): it goes back to pending

    The core is idempotent: replaying a delivery that was applied changes nothing twice."""
    delivery = replay(db(), _get(delivery_id), actor=actor(), reason=data.get("reason"))
    # the worker polls anyway; this only saves it the wait once the request commits
    current_app.extensions["jalon"].wake_worker.set()
    return delivery
