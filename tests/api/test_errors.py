"""Every bad input is answered with the documented problem shape."""

from __future__ import annotations

import logging

from jalon.core.models import Entity
from tests.api.support import assert_problem
from tests.api.test_invoices import DRAFT, LINE, issued

PAYMENT = {"amount": "10.00", "currency": "EUR", "received_on": "2026-11-20", "allocations": []}


def test_missing_field(client, world):
    body = assert_problem(client.put("/api/v1/contracts/X", json={"kind": "fixed_price"}), 422, "validation_failed")
    assert body["errors"]["name"] == ["Missing data for required field."]
    assert {"entity", "client"} <= set(body["errors"])


def test_wrong_type(client):
    body = assert_problem(client.put("/api/v1/entities/e", json={"name": 42}), 422, "validation_failed")
    assert body["errors"] == {"name": ["Not a valid string."]}


def test_float_amount_is_refused(finance, world):
    body = assert_problem(finance.post("/api/v1/payments", json={**PAYMENT, "amount": 10.5}), 422, "validation_failed")
    assert "amount" in body["errors"]


def test_float_in_a_nested_amount_is_refused_with_its_path(finance, world):
    lines = [LINE, {**LINE, "unit_price": 600.0}]
    body = assert_problem(finance.post("/api/v1/invoices", json={**DRAFT, "lines": lines}), 422, "validation_failed")
    assert list(body["errors"]) == ["lines.1.unit_price"]


def test_number_in_a_decimal_field_is_refused_even_when_whole(client, world):
    response = client.put("/api/v1/contracts/LUM-2026-01", json={
        "name": "x", "kind": "fixed_price", "entity": "atelier", "client": "lumiere", "total_amount": 24000})
    assert "total_amount" in assert_problem(response, 422, "validation_failed")["errors"]


def test_unknown_enum(client, finance, world):
    body = assert_problem(client.put("/api/v1/contracts/X", json={
        "name": "x", "kind": "barter", "entity": "atelier", "client": "lumiere"}), 422, "validation_failed")
    assert "kind" in body["errors"]
    assert "status" in assert_problem(finance.get("/api/v1/invoices?status=lost"), 422, "validation_failed")["errors"]


def test_unknown_field_is_refused(client):
    body = assert_problem(client.put("/api/v1/entities/e", json={"name": "E", "nmae": "typo"}), 422,
                          "validation_failed")
    assert body["errors"] == {"nmae": ["Unknown field."]}


def test_malformed_json(client):
    response = client.put("/api/v1/entities/e", data='{"name": "E",', content_type="application/json")
    assert_problem(response, 400, "malformed_json")


def test_non_object_body(client):
    body = assert_problem(client.put("/api/v1/entities/e", json=["name", "E"]), 422, "validation_failed")
    assert "body" in body["errors"]


def test_body_that_is_not_json(client):
    response = client.put("/api/v1/entities/e", data="name=E", content_type="application/x-www-form-urlencoded")
    assert_problem(response, 415, "unsupported_media_type")


def test_body_too_large(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = client.put("/api/v1/entities/e", json={"name": "E" * 2000})
    assert_problem(response, 413, "payload_too_large")


def test_unknown_route(client):
    assert_problem(client.get("/api/v1/nothing-here"), 404, "not_found")


def test_wrong_method(client):
    response = client.open("DELETE", "/api/v1/entities/atelier")
    assert_problem(response, 405, "method_not_allowed")
    assert "PUT" in response.headers["Allow"]


def test_bad_query_parameter(finance):
    body = assert_problem(finance.get("/api/v1/invoices?page=0"), 422, "validation_failed")
    assert "page" in body["errors"]


def test_unexpected_error_is_a_500_without_detail_and_is_logged(app, client, caplog, monkeypatch):
    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("db password is hunter2")

    monkeypatch.setattr("jalon.core.catalog.get_entity", explode)
    with caplog.at_level(logging.ERROR):
        response = client.get("/api/v1/entities/atelier")

    body = assert_problem(response, 500, "internal_error")
    assert "hunter2" not in response.get_data(as_text=True)
    assert "errors" not in body
    assert any("hunter2" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_an_error_after_a_write_rolls_the_write_back(client, world, uow, monkeypatch):
    from jalon.core import catalog

    real = catalog.upsert_entity

    def write_then_fail(session, data, *, actor):  # type: ignore[no-untyped-def]
        real(session, data, actor=actor)
        raise RuntimeError("after the write")

    monkeypatch.setattr(catalog, "upsert_entity", write_then_fail)
    assert_problem(client.put("/api/v1/entities/other", json={"name": "Other"}), 500, "internal_error")
    with uow() as session:
        assert session.query(Entity).filter_by(code="other").first() is None


def test_a_domain_conflict_from_the_guard_is_a_409(finance, world):
    invoice = issued(finance)
    response = finance.post(f"/api/v1/invoices/{invoice['id']}/credit", json={
        "reason": "trop", "lines": [{**LINE, "quantity": "3"}]})
    assert_problem(response, 409, "credit_exceeds_invoice")


def test_a_boolean_is_a_json_boolean(client, finance, world):
    for value in (1, 0, "true", "yes"):
        body = assert_problem(client.put("/api/v1/integrations/jira-atelier", json={"source": "jira", "enabled": value}),
                              422, "validation_failed")
        assert list(body["errors"]) == ["enabled"]
        body = assert_problem(finance.post("/api/v1/invoices/send", json={"all_issued": value}), 422,
                              "validation_failed")
        assert "all_issued" in body["errors"]
