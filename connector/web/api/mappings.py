"""Mappings: which PM project of an integration bills which contract."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields
from sqlalchemy import select

from jalon.core import catalog
from jalon.core.errors import NotFound
from jalon.core.models import Contract, Integration, Mapping

from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import PageArgs, Schema, page_of, paginate

blp = Blueprint("mappings", __name__, url_prefix="/mappings",
                description="PM project of an integration -> contract, and which statuses mean done")
protect(blp, write_scopes=("admin",))


class MappingIn(Schema):
    contract = fields.String(required=True, metadata={"description": "Contract reference"})
    done_statuses = fields.List(fields.String(), metadata={
        "description": "Statuses that mean done; empty: the tool's own done category decides"})


class MappingOut(Schema):
    integration = fields.String(attribute="integration.key")
    project = fields.String(attribute="pm_project")
    contract = fields.String(attribute="contract.reference")
    done_statuses = fields.List(fields.String())


MappingPage = page_of(MappingOut, "MappingPage")


class MappingListArgs(PageArgs):
    integration = fields.String(metadata={"description": "Integration key"})
    contract = fields.String(metadata={"description": "Contract reference"})


@blp.route("")
class Mappings(MethodView):
    @blp.arguments(MappingListArgs, location="query")
    @blp.response(200, MappingPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List mappings"""
        query = (select(Mapping).join(Integration, Mapping.integration_id == Integration.id)
                 .order_by(Integration.key, Mapping.pm_project))
        if "integration" in args:
            query = query.where(Integration.key == args["integration"])
        if "contract" in args:
            query = query.join(Contract, Mapping.contract_id == Contract.id).where(
                Contract.reference == args["contract"])
        return paginate(db(), query, args)


@blp.route("/<integration>/<project>")
class MappingByKey(MethodView):
    @blp.response(200, MappingOut)
    def get(self, integration, project):  # type: ignore[no-untyped-def]
        """Get the mapping of one PM project"""
        session = db()
        found = session.execute(
            select(Mapping).where(
                Mapping.integration_id == catalog.get_integration(session, integration).id,
                Mapping.pm_project == project,
            )
        ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"integration {integration} has no mapping for project {project!r}",
                           code="mapping_not_found")
        return found

    @blp.arguments(MappingIn)
    @blp.response(200, MappingOut, description="Updated (or unchanged)")
    @blp.alt_response(201, schema=MappingOut, description="Created")
    def put(self, data, integration, project):  # type: ignore[no-untyped-def]
        """Map a PM project to a contract (idempotent)"""
        mapping, created = catalog.upsert_mapping(
            db(), {**data, "integration": integration, "project": project}, actor=actor()
        )
        return mapping, 201 if created else 200
