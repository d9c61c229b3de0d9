"""The audit trail, read-only: who did what, when, and why.

Any token reads it, so it shows no credential: a secret, a tool's
credentials or a channel's target (a chat webhook's URL is its credential)
is ``(secret)``, as the catalog records them, also in a record an older
jalon wrote in clear; an approval link's token is ``/approve/(secret)``."""

from __future__ import annotations

from typing import Any

from marshmallow import fields
from sqlalchemy import select

from jalon.core.models import AuditRecord

from jalon.connector.redaction import redact_paths_in
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import db, protect
from jalon.connector.web.api.fields import PageArgs, Schema, page_of, paginate

blp = Blueprint("audit", __name__, url_prefix="/audit", description="The audit trail (read-only)")
protect(blp, write_scopes=("admin",))


class AuditOut(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    actor = fields.String(metadata={"example": "token:ci"})
    action = fields.String(metadata={"example": "invoice.issued"})
    subject_type = fields.String(metadata={"example": "invoices"})
    subject_id = fields.String()
    reason = fields.String(allow_none=True)
    details = fields.Function(lambda record: shown_details(record.subject_type, record.details),
                              metadata={"type": "object"})


HIDDEN = "(secret)"
# what a record's details never show, whatever wrote them
HIDDEN_FIELDS = frozenset({"secret", "previous_secret", "credentials"})
HIDDEN_BY_SUBJECT = {"notification_channels": frozenset({"target"})}


def shown_details(subject_type: str, details: Any) -> dict[str, Any]:
    """A record's details as the API shows them: credentials hidden, capability paths redacted."""
    hidden = HIDDEN_FIELDS | HIDDEN_BY_SUBJECT.get(subject_type, frozenset())
    return {key: HIDDEN if key in hidden and value is not None else redact_paths_in(value)
            for key, value in dict(details or {}).items()}


AuditPage = page_of(AuditOut, "AuditPage")


class AuditListArgs(PageArgs):
    subject_type = fields.String(metadata={"description": "Table name: invoices, contracts, integrations..."})
    subject_id = fields.String()
    actor = fields.String()


@blp.route("", methods=["GET"])
@blp.arguments(AuditListArgs, location="query")
@blp.response(200, AuditPage)
def list_audit(args):  # type: ignore[no-untyped-def]
    """List audit records (newest first)"""
    query = select(AuditRecord).order_by(AuditRecord.id.desc())
    for name in ("subject_type", "subject_id", "actor"):
        if name in args:
            query = query.where(getattr(AuditRecord, name) == args[name])
    return paginate(db(), query, args)
