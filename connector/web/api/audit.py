"""The audit trail, read-only: who did what, when, and why."""

from __future__ import annotations

from marshmallow import fields
from sqlalchemy import select

from jalon.core.models import AuditRecord

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
    details = fields.Dict()


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
