"""GET /healthz: no token; checks that the database answers."""

from __future__ import annotations

import logging

from flask import current_app
from marshmallow import fields
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.fields import Schema
from jalon.connector.web.api.problems import Problem

log = logging.getLogger("jalon.connector.web.api")

blp = Blueprint("health", __name__, description="Liveness and database check (no token)")


class HealthOut(Schema):
    status = fields.String(metadata={"example": "ok"})


@blp.route("/healthz", methods=["GET"])
@blp.response(200, HealthOut)
@blp.alt_response(503, description="The database does not answer")
@blp.doc(security=[])
def healthz():  # type: ignore[no-untyped-def]
    try:
        with current_app.extensions["jalon"].engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        log.warning("health check: database unreachable (%s)", type(error).__name__)
        raise Problem(503, "database_unavailable", "the database does not answer") from None
    return {"status": "ok"}
