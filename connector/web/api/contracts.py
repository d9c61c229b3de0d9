"""Contracts, keyed by their reference, with their milestones, rates and members."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select

from jalon.core import catalog
from jalon.core.models import CONTRACT_KINDS, RETAINER_PERIODS, Client, Contract, ContractMember, Entity

from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import actor, db, protect
from jalon.connector.web.api.fields import DecimalString, MoneyAmount, PageArgs, Schema, VatIn, VatOut, currency_field, page_of, paginate

blp = Blueprint("contracts", __name__, url_prefix="/contracts",
                description="Contracts with their milestones (fixed price) and rates (time and materials)")
protect(blp, write_scopes=("admin",))


class MatchSchema(Schema):
    task_id = fields.String(allow_none=True)
    label = fields.String(allow_none=True)
    task_type = fields.String(allow_none=True)


class MilestoneIn(Schema):
    reference = fields.String(required=True, validate=validate.Length(min=1, max=50))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    amount = DecimalString(allow_none=True)
    percentage = DecimalString(allow_none=True, metadata={"example": "30"})
    match = fields.Nested(MatchSchema, metadata={"description": "Which PM task completes it: one selector at least"})


class MilestoneBodyIn(MilestoneIn):
    class Meta(MilestoneIn.Meta):
        exclude = ("reference",)


class RateIn(Schema):
    person = fields.String(allow_none=True)
    role = fields.String(allow_none=True)
    amount = DecimalString(required=True, metadata={"example": "650.00"})
    unit = fields.String(validate=validate.OneOf(("hour", "day")), load_default="day")
    effective_from = fields.Date(required=True)


class MemberIn(Schema):
    person = fields.String(required=True)
    role = fields.String(required=True)


class ContractIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(CONTRACT_KINDS))
    entity = fields.String(required=True, metadata={"description": "Entity code"})
    client = fields.String(required=True, metadata={"description": "Client code"})
    currency = currency_field(metadata={"description": "Defaults to the client's currency"})
    total_amount = DecimalString(allow_none=True)
    retainer_amount = DecimalString(allow_none=True)
    retainer_period = fields.String(allow_none=True, validate=validate.OneOf(RETAINER_PERIODS))
    hours_per_day = DecimalString(metadata={"example": "8"})
    vat = fields.Nested(VatIn)
    purchase_order_ref = fields.String(allow_none=True, validate=validate.Length(max=100))
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    milestones = fields.List(fields.Nested(MilestoneIn), metadata={"description": "Upserted by reference, in order"})
    rates = fields.List(fields.Nested(RateIn))
    members = fields.List(fields.Nested(MemberIn))


class MilestoneOut(Schema):
    reference = fields.String()
    name = fields.String()
    position = fields.Integer()
    amount = MoneyAmount(currency_from="contract.currency", allow_none=True)
    percentage = DecimalString(allow_none=True)
    price = MoneyAmount(metadata={"description": "What the milestone bills, before VAT"})
    status = fields.String()
    match = fields.Nested(MatchSchema)
    task_ref = fields.String(allow_none=True)
    task_url = fields.String(allow_none=True)
    done_at = fields.DateTime(allow_none=True)


class RateOut(Schema):
    person = fields.String(attribute="person_ref", allow_none=True)
    role = fields.String(allow_none=True)
    amount = MoneyAmount(currency_from="contract.currency", exact=True)
    unit = fields.String()
    effective_from = fields.Date()


class MemberOut(Schema):
    person = fields.String(attribute="person_ref")
    role = fields.String()


class ContractOut(Schema):
    reference = fields.String()
    name = fields.String()
    kind = fields.String()
    entity = fields.String()
    client = fields.String()
    currency = fields.String()
    total_amount = MoneyAmount(allow_none=True)
    retainer_amount = MoneyAmount(allow_none=True)
    retainer_period = fields.String(allow_none=True)
    hours_per_day = DecimalString()
    vat = fields.Nested(VatOut)
    purchase_order_ref = fields.String(allow_none=True)
    starts_on = fields.Date(allow_none=True)
    ends_on = fields.Date(allow_none=True)
    milestones = fields.List(fields.Nested(MilestoneOut))
    rates = fields.List(fields.Nested(RateOut))
    members = fields.List(fields.Nested(MemberOut))
    created_at = fields.DateTime()


ContractPage = page_of(ContractOut, "ContractPage")


class ContractListArgs(PageArgs):
    entity = fields.String(metadata={"description": "Entity code"})
    client = fields.String(metadata={"description": "Client code"})
    kind = fields.String(validate=validate.OneOf(CONTRACT_KINDS))


def present_milestone(milestone) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {
        **{c: getattr(milestone, c) for c in ("reference", "name", "position", "amount", "percentage", "status",
                                            "task_ref", "task_url", "done_at")},
        "contract": {"currency": milestone.contract.currency},
        "price": milestone.price(),
        "match": {"task_id": milestone.match_task_id, "label": milestone.match_label,
                  "task_type": milestone.match_task_type},
    }


def present_contract(contract: Contract) -> dict[str, Any]:
    members = db().execute(
        select(ContractMember).where(ContractMember.contract_id == contract.id).order_by(ContractMember.person_ref)
    ).scalars().all()
    return {
        **{c: getattr(contract, c) for c in ("reference", "name", "kind", "currency", "total_amount", "retainer_amount",
                                           "retainer_period", "hours_per_day", "vat", "purchase_order_ref",
                                           "starts_on", "ends_on", "created_at", "rates")},
        "entity": contract.entity.code,
        "client": contract.client.code,
        "milestones": [present_milestone(m) for m in contract.milestones],
        "members": members,
    }


@blp.route("")
class Contracts(MethodView):
    @blp.arguments(ContractListArgs, location="query")
    @blp.response(200, ContractPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List contracts"""
        query = select(Contract).order_by(Contract.reference)
        if "entity" in args:
            query = query.join(Entity, Contract.entity_id == Entity.id).where(Entity.code == args["entity"])
        if "client" in args:
            query = query.join(Client, Contract.client_id == Client.id).where(Client.code == args["client"])
        if "kind" in args:
            query = query.where(Contract.kind == args["kind"])
        return paginate(db(), query, args, present_contract)


@blp.route("/<reference>")
class ContractByReference(MethodView):
    @blp.response(200, ContractOut)
    def get(self, reference):  # type: ignore[no-untyped-def]
        """Get a contract with its milestones, rates and members"""
        return present_contract(catalog.get_contract(db(), reference))

    @blp.arguments(ContractIn)
    @blp.response(200, ContractOut, description="Updated (or unchanged)")
    @blp.alt_response(201, schema=ContractOut, description="Created")
    def put(self, data, reference):  # type: ignore[no-untyped-def]
        """Create or update a contract (idempotent)

        Milestones, rates and members given are upserted by their key; those not
        named are left alone. Either everything is saved or nothing is."""
        contract, created = catalog.upsert_contract(db(), {**data, "reference": reference}, actor=actor())
        return present_contract(contract), 201 if created else 200


@blp.route("/<reference>/milestones")
@blp.response(200, MilestoneOut(many=True))
def list_milestones(reference):  # type: ignore[no-untyped-def]
    """List a contract's milestones"""
    return [present_milestone(m) for m in catalog.get_contract(db(), reference).milestones]


@blp.route("/<reference>/milestones/<milestone>", methods=["PUT"])
@blp.arguments(MilestoneBodyIn)
@blp.response(200, MilestoneOut, description="Updated (or unchanged)")
@blp.alt_response(201, schema=MilestoneOut, description="Created")
def put_milestone(data, reference, milestone):  # type: ignore[no-untyped-def]
    """Create or update one milestone of a fixed-price contract (idempotent)"""
    session = db()
    contract = catalog.get_contract(session, reference)
    position = next((m.position for m in contract.milestones if m.reference == milestone), len(contract.milestones) + 1)
    saved, created = catalog.upsert_milestone(
        session, contract, {"position": position, **data, "reference": milestone}, actor=actor()
    )
    catalog.check_milestone_plan(contract)
    return present_milestone(saved), 201 if created else 200
