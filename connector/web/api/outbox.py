"""The outbox: notifications and write-backs waiting, sent, or failed.

Admin and finance tokens read it and may retry a failed message (it goes back
to ``pending`` with a fresh set of attempts; an audit record says who did it).

No message holds a credential: a channel message names its channel, not its
URL; a ``milestone.done`` shows ``{public_url}/approve/…`` where its approval
link goes (the link is made when the message is sent); a message an older
jalon stored with its link in clear shows ``/approve/(secret)``.
"""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from jalon.core import audit
from jalon.core.errors import Conflict, NotFound
from jalon.core.models import OUTBOX_STATUSES, OutboxMessage
from jalon.core.types import utcnow

from jalon.connector.redaction import redact_paths_in
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import PageArgs, Schema, page_of, paginate

blp = Blueprint("outbox", __name__, url_prefix="/outbox",
                description="Notifications and write-backs: pending, sent, failed; retry the failed ones")
protect(blp, write_scopes=("admin", "finance"))


class OutboxArgs(PageArgs):
    status = fields.String(validate=validate.OneOf(OUTBOX_STATUSES))
    channel = fields.String(validate=validate.Length(min=1, max=50),
                            metadata={"description": "email, chat, webhook, or a source (jira...) for write-backs"})
    kind = fields.String(validate=validate.Length(min=1, max=100),
                         metadata={"description": "milestone.done, invoice.draft_cancelled, comment..."})


class OutboxOut(Schema):
    id = fields.Integer()
    idempotency_key = fields.String()
    channel = fields.String()
    kind = fields.String()
    channel_key = fields.Function(lambda m: m.notification_channel.key if m.notification_channel else None,
                                  metadata={"type": "string", "nullable": True})
    integration = fields.Function(lambda m: m.integration.key if m.integration else None,
                                  metadata={"type": "string", "nullable": True})
    delivery_id = fields.Integer(allow_none=True)
    destination = fields.Dict()
    payload = fields.Function(lambda m: redact_paths_in(m.payload or {}), metadata={"type": "object"})
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime()
    lease_expires_at = fields.DateTime(allow_none=True)
    last_error = fields.Function(lambda m: redact_paths_in(m.last_error),
                                 metadata={"type": "string", "nullable": True})
    external_id = fields.String(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)


OutboxPage = page_of(OutboxOut, "OutboxPage")


def _get(message_id: int) -> OutboxMessage:
    message = db().get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"no outbox message {message_id}", code="outbox_message_not_found")
    return message


@blp.route("")
class Outbox(MethodView):
    @blp.arguments(OutboxArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, OutboxPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List outbox messages, newest first (filter by status, channel, kind)"""
        query = select(OutboxMessage).order_by(OutboxMessage.id.desc())
        for field in ("status", "channel", "kind"):
            if args.get(field):
                query = query.where(getattr(OutboxMessage, field) == args[field])
        return paginate(db(), query, args)


@blp.route("/<id(outbox_messages):message_id>")
class OutboxById(MethodView):
    @blp.response(200, OutboxOut)
    def get(self, message_id):  # type: ignore[no-untyped-def]
        """Get one outbox message"""
        return _get(message_id)


@blp.route("/<id(outbox_messages):message_id>/retry")
class OutboxRetry(MethodView):
    @blp.response(200, OutboxOut)
    def post(self, message_id):  # type: ignore[no-untyped-def]
        """Send a failed message again (failed -> pending, attempts start over)"""
        session = db()
        message = session.execute(
            select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update()
        ).scalar_one_or_none()
        if message is None:
            raise NotFound(f"no outbox message {message_id}", code="outbox_message_not_found")
        if message.status != "failed":
            raise Conflict(f"outbox message {message_id} is {message.status}: only a failed message is retried",
                           code="outbox_message_not_failed")
        audit.record(session, actor=actor(), action="outbox_message.retried", subject=message,
                     details={"attempts": message.attempts, "last_error": message.last_error})
        message.status = "pending"
        message.attempts = 0
        message.next_attempt_at = utcnow()
        session.flush()
        current_app.extensions["jalon"].wake_dispatcher.set()
        return message
