"""The admins' configuration: idempotent upserts, clear refusals, locked
fields once billing has started, and secrets kept out of the audit trail."""

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from jalon.core import catalog
from jalon.core.db import unit_of_work
from jalon.core.errors import Conflict, Invalid
from jalon.core.invoicing import issue
from jalon.core.models import AuditRecord, Integration, Milestone
from jalon.core.rules import apply_event

from tests.factories import CLIENT, CONTRACT, ENTITY, INTEGRATION, MAPPING, completed, issued, seed

D = Decimal


def _audit_count(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(AuditRecord))


def _contract(**changes):  # type: ignore[no-untyped-def]
    return {**CONTRACT, **changes}


def test_applying_the_same_configuration_twice_changes_nothing_the_second_time(world):
    with unit_of_work(world) as session:
        before = _audit_count(session)
        summary = seed(session)
        assert _audit_count(session) == before
    assert all(counts["created"] == counts["updated"] == 0 for counts in summary.values())


def test_applying_a_configuration_records_each_creation_once(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        summary = seed(session)
        actions = list(session.execute(select(AuditRecord.action)).scalars())
    assert summary["contracts"] == {"created": 1, "updated": 0, "unchanged": 0}
    assert sorted(set(actions)) == ["client.created", "contract.created", "entity.created", "integration.created",
                                    "mapping.created", "milestone.created"]
    assert actions.count("milestone.created") == 3


def test_a_changed_field_is_updated_and_audited_with_what_changed(world):
    with unit_of_work(world) as session:
        seed(session, clients=[{**CLIENT, "city": "Villeurbanne"}])
        record = session.execute(select(AuditRecord).where(AuditRecord.action == "client.updated")).scalar_one()
        assert record.details == {"city": "Villeurbanne"}


def test_an_invalid_item_is_refused_with_its_section_and_index(world):
    bad = {**CLIENT, "code": "other", "siren": "123456789"}
    with pytest.raises(Invalid) as refused, unit_of_work(world) as session:
        seed(session, clients=[CLIENT, bad])
    assert refused.value.code == "invalid_siren"
    assert str(refused.value).startswith("clients[1]: ")


def test_a_contract_naming_an_unknown_client_is_refused_with_its_index(world):
    with pytest.raises(Exception) as refused, unit_of_work(world) as session:
        seed(session, contracts=[CONTRACT, _contract(reference="X-2", client="nobody")])
    assert refused.value.code == "client_not_found"
    assert str(refused.value).startswith("contracts[1]: ")


def test_an_unknown_section_is_refused(Session):  # noqa: N803
    with pytest.raises(Invalid) as refused, unit_of_work(Session) as session:
        catalog.apply_config(session, {"entitys": []}, actor="admin")
    assert refused.value.code == "config_unknown_section"


def test_milestone_percentages_over_100_are_refused(Session):  # noqa: N803
    milestones = [
        {"reference": "A", "name": "A", "percentage": "60", "match": {"task_id": "T-1"}},
        {"reference": "B", "name": "B", "percentage": "40.01", "match": {"task_id": "T-2"}},
    ]
    with pytest.raises(Invalid) as refused, unit_of_work(Session) as session:
        seed(session, contracts=[_contract(milestones=milestones)])
    assert refused.value.code == "milestones_over_100"
    assert str(refused.value).startswith("contracts[0]: ")


def test_a_percentage_milestone_needs_the_contract_total(Session):  # noqa: N803
    contract = _contract(total_amount=None, milestones=[
        {"reference": "A", "name": "A", "percentage": "30", "match": {"task_id": "T-1"}}])
    with pytest.raises(Invalid) as refused, unit_of_work(Session) as session:
        seed(session, contracts=[contract])
    assert refused.value.code == "contract_total_missing"


def test_milestone_amounts_above_the_contract_total_are_refused(Session):  # noqa: N803
    contract = _contract(total_amount="1000.00", milestones=[
        {"reference": "A", "name": "A", "amount": "600.00", "match": {"task_id": "T-1"}},
        {"reference": "B", "name": "B", "amount": "400.01", "match": {"task_id": "T-2"}}])
    with pytest.raises(Invalid) as refused, unit_of_work(Session) as session:
        seed(session, contracts=[contract])
    assert refused.value.code == "milestones_over_total"


def test_a_milestone_needs_a_selector(Session):  # noqa: N803
    contract = _contract(milestones=[{"reference": "A", "name": "A", "amount": "100.00"}])
    with pytest.raises(Invalid) as refused, unit_of_work(Session) as session:
        seed(session, contracts=[contract])
    assert refused.value.code == "milestone_selector_required"


def test_a_pending_milestone_price_may_change(world):
    milestones = [dict(m) for m in CONTRACT["milestones"]]
    milestones[0]["percentage"] = "20"
    with unit_of_work(world) as session:
        seed(session, contracts=[_contract(milestones=milestones)])
    with unit_of_work(world) as session:
        m1 = session.execute(select(Milestone).where(Milestone.reference == "M1")).scalar_one()
        assert m1.price().amount == D("4800.00")


def test_a_billed_milestone_price_cannot_change(world):
    with unit_of_work(world) as session:
        apply_event(session, completed("WEB-1"))
    milestones = [dict(m) for m in CONTRACT["milestones"]]
    milestones[0]["percentage"] = "20"
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        seed(session, contracts=[_contract(milestones=milestones)])
    assert refused.value.code == "milestone_locked"


def test_the_contract_total_cannot_change_the_price_of_a_billed_percentage_milestone(world):
    with unit_of_work(world) as session:
        apply_event(session, completed("WEB-1"))  # M1: 30 % of 24 000.00
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        seed(session, contracts=[_contract(total_amount="30000.00")])
    assert refused.value.code == "milestone_locked"
    with unit_of_work(world) as session:
        m1 = session.execute(select(Milestone).where(Milestone.reference == "M1")).scalar_one()
        assert m1.price().amount == D("7200.00")


def test_the_invoice_prefix_may_change_before_any_invoice_is_issued(world):
    with unit_of_work(world) as session:
        seed(session, entities=[{**ENTITY, "invoice_prefix": "FA-"}])
        assert catalog.get_entity(session, "atelier").invoice_prefix == "FA-"


def test_the_invoice_prefix_is_locked_once_an_invoice_is_issued(world):
    with unit_of_work(world) as session:
        issued(session)
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        seed(session, entities=[{**ENTITY, "invoice_prefix": "FA-"}])
    assert refused.value.code == "prefix_locked"


def test_a_new_secret_keeps_the_previous_one_for_the_rotation(world):
    with unit_of_work(world) as session:
        seed(session, integrations=[{**INTEGRATION, "secret": "n3w-s3cret"}])
    with unit_of_work(world) as session:
        integration = catalog.get_integration(session, "jira-atelier")
        assert (integration.secret, integration.previous_secret) == ("n3w-s3cret", "s3cret")
        assert integration.secret_rotated_at is not None


def test_applying_the_same_secret_again_rotates_nothing(world):
    with unit_of_work(world) as session:
        seed(session)
        integration = catalog.get_integration(session, "jira-atelier")
        assert (integration.secret, integration.previous_secret) == ("s3cret", None)


def test_secrets_never_appear_in_the_audit_trail(world):
    with unit_of_work(world) as session:
        seed(session, integrations=[{**INTEGRATION, "secret": "n3w-s3cret",
                                     "credentials": {"api_token": "t0k3n-value"}}])
        seed(session, integrations=[{**INTEGRATION, "secret": "th1rd-s3cret",
                                     "credentials": {"api_token": "t0k3n-value"}}])
        trail = json.dumps([r.details for r in session.execute(select(AuditRecord)).scalars()])
        assert "(secret)" in trail
    for secret in ("s3cret", "n3w-s3cret", "th1rd-s3cret", "t0k3n-value"):
        assert f'"{secret}"' not in trail


def test_an_integration_repr_never_shows_its_secret(world):
    with unit_of_work(world) as session:
        assert "s3cret" not in repr(session.execute(select(Integration)).scalar_one())


def test_the_mapping_done_statuses_are_stored_as_given(world):
    with unit_of_work(world) as session:
        mapping, created = catalog.upsert_mapping(session, {**MAPPING, "done_statuses": ["Livré"]}, actor="admin")
        assert (created, mapping.done_statuses) == (False, ["Livré"])


def test_a_contract_with_a_billed_milestone_cannot_change_client(world):
    with unit_of_work(world) as session:
        catalog.upsert_client(session, {**CLIENT, "code": "horizon", "name": "Horizon"}, actor="admin")
        outcome = apply_event(session, completed("WEB-1"))
        issue(session, outcome.invoice_id, actor="finance", issue_date=date(2026, 11, 2))
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        seed(session, contracts=[_contract(client="horizon")])
    assert refused.value.code == "contract_locked"


def test_the_entity_billing_policy_is_stored_and_printed_terms_default_to_the_law(world):
    with unit_of_work(world) as session:
        entity = catalog.get_entity(session, "atelier")
        assert (entity.operation_nature, entity.late_penalty_rate, entity.early_payment_discount,
                entity.auto_issue_below) == ("services", None, None, None)
        seed(session, entities=[{**ENTITY, "operation_nature": "mixed", "late_penalty_rate": "12.5",
                                 "early_payment_discount": "2 % à 10 jours", "auto_issue_below": "1000"}])
        entity = catalog.get_entity(session, "atelier")
        assert (entity.operation_nature, entity.late_penalty_rate, entity.early_payment_discount,
                entity.auto_issue_below) == ("mixed", D("12.5"), "2 % à 10 jours", D("1000"))


@pytest.mark.parametrize(("field", "value", "code"), [
    ("operation_nature", "software", "invalid_operation_nature"),
    ("late_penalty_rate", "0", "invalid_penalty_rate"),
    ("late_penalty_rate", "101", "invalid_penalty_rate"),
    ("late_penalty_rate", 12.5, "float_refused"),
    ("auto_issue_below", "-5", "invalid_auto_issue_threshold"),
    ("early_payment_discount", "x" * 301, "invalid_discount_terms"),
])
def test_a_bad_entity_billing_policy_is_refused_and_nothing_is_written(world, field, value, code):
    with pytest.raises(Invalid) as refused, unit_of_work(world) as session:
        seed(session, entities=[{**ENTITY, field: value}])
    assert refused.value.code == code
    with unit_of_work(world) as session:
        assert catalog.get_entity(session, "atelier").operation_nature == "services"


def test_a_client_delivery_address_is_kept_only_when_it_differs_from_the_billing_address(world):
    elsewhere = {"address_line1": "Entrepôt 4, ZI Nord", "postcode": "69120", "city": "Vaulx-en-Velin"}
    same = {key: CLIENT.get(key) for key in ("address_line1", "postcode", "city")}
    with unit_of_work(world) as session:
        seed(session, clients=[{**CLIENT, "delivery_address": elsewhere}])
        assert catalog.get_client(session, CLIENT["code"]).delivery_address() == {
            **elsewhere, "address_line2": None, "country_code": "FR"}
        seed(session, clients=[{**CLIENT, "delivery_address": same}])
        assert catalog.get_client(session, CLIENT["code"]).delivery_address() is None
        seed(session, clients=[{**CLIENT, "delivery_address": elsewhere}])
        seed(session, clients=[CLIENT])
        assert catalog.get_client(session, CLIENT["code"]).delivery_address_line1 is None


@pytest.mark.parametrize(("delivery", "code"), [
    ("1 rue de la Paix", "invalid_address"),
    ({"city": "Lyon"}, "missing_field"),
    ({"address_line1": "1 rue X", "city": "Lyon", "country_code": "France"}, "invalid_country"),
])
def test_a_bad_delivery_address_is_refused(world, delivery, code):
    with pytest.raises(Invalid) as refused, unit_of_work(world) as session:
        seed(session, clients=[{**CLIENT, "delivery_address": delivery}])
    assert refused.value.code == code
