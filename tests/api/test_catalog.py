"""Entities, clients, contracts, integrations and mappings: idempotent PUTs on natural keys."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from jalon.core.models import AuditRecord, Contract, Milestone
from tests import factories
from tests.api.support import assert_problem

ENTITY = {k: v for k, v in factories.ENTITY.items() if k != "code"}
CLIENT = {k: v for k, v in factories.CLIENT.items() if k != "code"}
CONTRACT = {k: v for k, v in factories.CONTRACT.items() if k != "reference"}


def test_put_entity_creates_then_is_idempotent(client, uow):
    created = client.put("/api/v1/entities/atelier", json=ENTITY)
    assert created.status_code == 201
    assert created.json["code"] == "atelier"
    assert created.json["share_capital"] == "10000"
    with uow() as session:
        audits = session.scalar(select(func.count()).select_from(AuditRecord).where(AuditRecord.subject_type == "entities"))

    again = client.put("/api/v1/entities/atelier", json=ENTITY)

    assert again.status_code == 200
    assert again.json == created.json
    with uow() as session:
        assert session.scalar(
            select(func.count()).select_from(AuditRecord).where(AuditRecord.subject_type == "entities")) == audits


def test_put_entity_updates_and_get_and_list_show_it(client):
    client.put("/api/v1/entities/atelier", json=ENTITY)
    updated = client.put("/api/v1/entities/atelier", json={**ENTITY, "city": "Lyon"})
    assert updated.status_code == 200
    assert client.get("/api/v1/entities/atelier").json["city"] == "Lyon"
    listed = client.get("/api/v1/entities").json
    assert listed["total"] == 1 and listed["items"][0]["code"] == "atelier"


def test_put_client_and_read_its_terms(client):
    response = client.put("/api/v1/clients/lumiere", json=CLIENT)
    assert response.status_code == 201
    assert response.json["payment_terms"] == {"kind": "net", "days": 30}
    assert client.get("/api/v1/clients/lumiere").json["billing_emails"] == ["compta@lumiere.example"]


def test_core_rule_breach_is_a_422_with_the_core_code(client):
    response = client.put("/api/v1/entities/atelier", json={**ENTITY, "siren": "123456789"})
    assert_problem(response, 422, "invalid_siren")


def test_put_contract_with_milestones(client):
    client.put("/api/v1/entities/atelier", json=ENTITY)
    client.put("/api/v1/clients/lumiere", json=CLIENT)

    response = client.put("/api/v1/contracts/LUM-2026-01", json=CONTRACT)

    assert response.status_code == 201, response.json
    body = response.json
    assert (body["entity"], body["client"], body["currency"]) == ("atelier", "lumiere", "EUR")
    assert body["total_amount"] == "24000.00"
    assert [(m["reference"], m["price"]) for m in body["milestones"]] == [
        ("M1", "7200.00"), ("M2", "12000.00"), ("M3", "4800.00")]
    assert body["milestones"][0]["match"]["task_id"] == "WEB-1"
    assert client.get("/api/v1/contracts/LUM-2026-01").json == body
    assert client.put("/api/v1/contracts/LUM-2026-01", json=CONTRACT).status_code == 200
    assert client.get("/api/v1/contracts?client=lumiere").json["total"] == 1
    assert [m["reference"] for m in client.get("/api/v1/contracts/LUM-2026-01/milestones").json] == ["M1", "M2", "M3"]


def test_put_one_milestone(client, world):
    response = client.put("/api/v1/contracts/LUM-2026-01/milestones/M1",
                          json={"name": "Maquettes", "percentage": "20", "match": {"task_id": "WEB-1"}})
    assert response.status_code == 200, response.json
    assert response.json["price"] == "4800.00"


def test_time_and_materials_contract_with_rates_and_members(client, world):
    response = client.put("/api/v1/contracts/LUM-TM", json={
        "name": "Régie", "kind": "time_and_materials", "entity": "atelier", "client": "lumiere",
        "rates": [{"role": "dev", "amount": "650", "unit": "day", "effective_from": "2026-01-01"}],
        "members": [{"person": "alice", "role": "dev"}],
    })
    assert response.status_code == 201, response.json
    assert response.json["rates"] == [
        {"person": None, "role": "dev", "amount": "650.00", "unit": "day", "effective_from": "2026-01-01"}]
    assert response.json["members"] == [{"person": "alice", "role": "dev"}]


def test_contract_whose_third_milestone_is_invalid_leaves_nothing_behind(client, world, uow):
    bad = dict(CONTRACT)
    bad["milestones"] = [
        *CONTRACT["milestones"][:2],
        {"reference": "M3", "name": "Sans sélecteur", "amount": "4800.00"},  # no match: the core refuses it
    ]

    response = client.put("/api/v1/contracts/LUM-NEW", json=bad)

    assert_problem(response, 422, "milestone_selector_required")
    with uow() as session:
        assert session.scalar(select(Contract).where(Contract.reference == "LUM-NEW")) is None
        assert session.scalar(select(func.count()).select_from(Milestone)) == 3  # the seed's, nothing more
        assert session.scalar(select(func.count()).select_from(AuditRecord).where(
            AuditRecord.actor == "token:ops", AuditRecord.action != "api_token.created")) == 0


def test_contract_for_an_unknown_client_is_a_404(client, world):
    response = client.put("/api/v1/contracts/X", json={**CONTRACT, "client": "nobody"})
    assert_problem(response, 404, "client_not_found")


def test_integration_secrets_are_write_only(client, world):
    first = client.put("/api/v1/integrations/jira-2", json={
        "source": "jira", "name": "Jira 2", "secret": "first-hush-hush", "credentials": {"api_token": "tok-hush-hush"}})
    rotated = client.put("/api/v1/integrations/jira-2", json={"source": "jira", "secret": "second-hush-hush"})
    got = client.get("/api/v1/integrations/jira-2")
    listed = client.get("/api/v1/integrations")
    audit = client.get("/api/v1/audit?subject_type=integrations&page_size=200")

    assert first.status_code == 201 and rotated.status_code == 200
    assert got.json["has_secret"] is True and got.json["has_credentials"] is True
    assert "secret" not in got.json and "credentials" not in got.json
    assert listed.json["total"] == 2
    assert audit.json["total"] >= 3
    for response in (first, rotated, got, listed, audit):
        text = response.get_data(as_text=True)
        for secret in ("first-hush-hush", "second-hush-hush", "tok-hush-hush", "s3cret"):
            assert secret not in text, (response.request.path, secret)


def test_integration_source_cannot_change(client, world):
    response = client.put("/api/v1/integrations/jira-atelier", json={"source": "clickup"})
    assert_problem(response, 409, "integration_source_locked")


def test_mappings(client, world):
    response = client.put("/api/v1/mappings/jira-atelier/OPS", json={"contract": "LUM-2026-01",
                                                                     "done_statuses": ["Done", "Livré"]})
    assert response.status_code == 201
    assert response.json == {"integration": "jira-atelier", "project": "OPS", "contract": "LUM-2026-01",
                             "done_statuses": ["Done", "Livré"]}
    assert client.get("/api/v1/mappings/jira-atelier/OPS").json == response.json
    assert client.get("/api/v1/mappings?integration=jira-atelier").json["total"] == 2
    assert_problem(client.get("/api/v1/mappings/jira-atelier/NOPE"), 404, "mapping_not_found")


def test_unknown_natural_keys_are_404(client):
    for path, code in [("/api/v1/entities/nope", "entity_not_found"), ("/api/v1/clients/nope", "client_not_found"),
                       ("/api/v1/contracts/nope", "contract_not_found"),
                       ("/api/v1/integrations/nope", "integration_not_found"),
                       ("/api/v1/clients/nope/balance", "client_not_found")]:
        assert_problem(client.get(path), 404, code)


def test_audit_lists_by_subject_with_pagination(client, world):
    page = client.get("/api/v1/audit?subject_type=milestones&page_size=2")
    assert page.status_code == 200
    assert page.json["total"] == 3 and len(page.json["items"]) == 2 and page.json["page"] == 1
    last = client.get("/api/v1/audit?subject_type=milestones&page_size=2&page=2").json
    assert len(last["items"]) == 1
    assert json.dumps(last)  # plain JSON


def test_entity_billing_policy_travels_as_decimal_strings(client):
    policy = {"operation_nature": "services", "late_penalty_rate": "12.5", "auto_issue_below": "1000",
              "early_payment_discount": "2 % pour paiement à 10 jours"}
    response = client.put("/api/v1/entities/atelier", json={**ENTITY, **policy})
    assert response.status_code == 201
    assert {key: response.json[key] for key in policy} == policy
    defaults = client.put("/api/v1/entities/atelier", json=ENTITY).json
    assert (defaults["late_penalty_rate"], defaults["auto_issue_below"], defaults["early_payment_discount"]) == (
        None, None, None)


def test_entity_billing_policy_refuses_floats_and_unknown_natures(client):
    assert_problem(client.put("/api/v1/entities/atelier", json={**ENTITY, "auto_issue_below": 1000.5}),
                   422, "validation_failed")
    assert_problem(client.put("/api/v1/entities/atelier", json={**ENTITY, "operation_nature": "software"}),
                   422, "validation_failed")
    assert client.get("/api/v1/entities/atelier").status_code == 404


def test_client_delivery_address_is_shown_only_when_it_differs(client):
    elsewhere = {"address_line1": "Entrepôt 4", "postcode": "69120", "city": "Vaulx-en-Velin", "country_code": "FR"}
    response = client.put("/api/v1/clients/lumiere", json={**CLIENT, "delivery_address": elsewhere})
    assert response.status_code == 201
    assert response.json["delivery_address"] == {**elsewhere, "address_line2": None}
    cleared = client.put("/api/v1/clients/lumiere", json={**CLIENT, "delivery_address": None})
    assert cleared.json["delivery_address"] is None
