"""Bearer tokens and scopes."""

from __future__ import annotations

from sqlalchemy import select

from jalon.core import tokens
from jalon.core.models import ApiToken
from tests.api.support import assert_problem
from tests.factories import ENTITY

ENTITY_BODY = {k: v for k, v in ENTITY.items() if k != "code"}


def test_no_token_is_a_401_with_a_bearer_challenge(client):
    response = client.as_token(None).get("/api/v1/entities")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_unknown_token_is_a_401(client):
    response = client.as_token("jal_not-a-real-token").get("/api/v1/entities")
    assert_problem(response, 401, "invalid_token")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_wrong_scheme_is_a_401(client, admin_token):
    response = client.as_token(None).get("/api/v1/entities", headers={"Authorization": f"Basic {admin_token}"})
    assert_problem(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_is_a_401(client, admin_token, uow):
    with uow() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.digest == tokens.digest(admin_token)))
        tokens.revoke(session, token, actor="test")
    assert_problem(client.get("/api/v1/entities"), 401, "invalid_token")


def test_finance_cannot_change_an_entity(finance):
    response = finance.put("/api/v1/entities/atelier", json=ENTITY_BODY)
    assert_problem(response, 403, "insufficient_scope")
    assert finance.get("/api/v1/entities").json["total"] == 0


def test_finance_cannot_change_the_catalog(finance, world):
    for path, body in [("/api/v1/clients/c", {"name": "C"}), ("/api/v1/integrations/i", {"source": "jira"}),
                       ("/api/v1/mappings/jira-atelier/P", {"contract": "LUM-2026-01"}),
                       ("/api/v1/contracts/LUM-2026-01", {"name": "x"})]:
        assert_problem(finance.put(path, json=body), 403, "insufficient_scope")


def test_finance_reads_everything(finance, world):
    for path in ("/api/v1/entities", "/api/v1/clients/lumiere", "/api/v1/contracts/LUM-2026-01",
                 "/api/v1/integrations", "/api/v1/mappings", "/api/v1/invoices", "/api/v1/payments",
                 "/api/v1/audit", "/api/v1/clients/lumiere/balance"):
        assert finance.get(path).status_code == 200, path


def test_admin_writes_invoices_too(client, world):
    response = client.post("/api/v1/invoices", json={
        "entity": "atelier", "client": "lumiere",
        "lines": [{"description": "x", "quantity": "1", "unit_price": "10.00"}]})
    assert response.status_code == 201
    assert response.json["created_by"] == "token:ops"


def test_scope_is_checked_before_the_body(finance):
    # a finance token learns nothing about the entity schema
    assert_problem(finance.put("/api/v1/entities/e", json={"bogus": 1}), 403, "insufficient_scope")
