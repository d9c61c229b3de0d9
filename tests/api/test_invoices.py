"""Invoices and payments through the API: the flow finance follows."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from jalon.core.models import AuditRecord, Invoice
from tests.api.support import assert_problem

LINE = {"description": "Atelier de cadrage", "quantity": "2", "unit_price": "600.00", "unit": "DAY",
        "vat": {"category": "S", "rate": "20"}}
DRAFT = {"entity": "atelier", "client": "lumiere", "contract": "LUM-2026-01", "lines": [LINE]}


def draft(api, **changes):  # type: ignore[no-untyped-def]
    response = api.post("/api/v1/invoices", json={**DRAFT, **changes})
    assert response.status_code == 201, response.json
    return response.json


def issued(api, issue_date="2026-11-02"):  # type: ignore[no-untyped-def]
    invoice = draft(api)
    response = api.post(f"/api/v1/invoices/{invoice['id']}/issue", json={"issue_date": issue_date})
    assert response.status_code == 200, response.json
    return response.json


def test_create_a_draft(finance, world):
    response = finance.post("/api/v1/invoices", json=DRAFT)

    assert response.status_code == 201
    body = response.json
    assert response.headers["Location"].endswith(f"/api/v1/invoices/{body['id']}")
    assert (body["status"], body["number"], body["kind"]) == ("draft", None, "invoice")
    assert (body["total_net"], body["total_vat"], body["total_gross"], body["currency"]) == (
        "1200.00", "240.00", "1440.00", "EUR")
    assert body["lines"][0]["quantity"] == "2" and body["lines"][0]["net_amount"] == "1200.00"
    assert body["vat_breakdown"] == [
        {"category": "S", "rate": "20", "exemption_reason": None, "exemption_code": None, "base": "1200.00",
         "tax": "240.00"}]
    assert body["open_balance"] == "0.00"  # a draft owes nothing


def test_issue_gives_a_number_and_an_open_balance(finance, world):
    invoice = draft(finance)

    response = finance.post(f"/api/v1/invoices/{invoice['id']}/issue", json={"issue_date": "2026-11-02"})

    assert response.status_code == 200
    body = response.json
    assert body["number"] == "F2026-00001" and body["status"] == "issued"
    assert body["due_date"] == "2026-12-02"
    assert body["open_balance"] == "1440.00"
    assert body["seller"]["name"] == "Atelier Numérique SAS"
    assert body["issued_by"] == "token:compta"


def test_issue_without_a_body_issues_today(finance, world):
    invoice = draft(finance)
    response = finance.post(f"/api/v1/invoices/{invoice['id']}/issue")
    assert response.status_code == 200, response.json
    assert response.json["issue_date"]


def test_issuing_twice_is_a_409(finance, world):
    invoice = issued(finance)
    response = finance.post(f"/api/v1/invoices/{invoice['id']}/issue", json={})
    assert_problem(response, 409, "invoice_not_draft")


def test_editing_an_issued_invoice_is_a_409(finance, world):
    invoice = issued(finance)
    response = finance.put(f"/api/v1/invoices/{invoice['id']}/lines", json={"lines": [LINE, LINE]})
    assert_problem(response, 409, "invoice_not_draft")
    assert finance.get(f"/api/v1/invoices/{invoice['id']}").json["total_gross"] == "1440.00"


def test_editing_a_draft_replaces_its_lines(finance, world):
    invoice = draft(finance)
    response = finance.put(f"/api/v1/invoices/{invoice['id']}/lines", json={"lines": [LINE, LINE]})
    assert response.status_code == 200
    assert response.json["total_gross"] == "2880.00"


def test_cancel_a_draft(finance, world):
    invoice = draft(finance)
    response = finance.post(f"/api/v1/invoices/{invoice['id']}/cancel", json={"reason": "doublon"})
    assert response.status_code == 200 and response.json["status"] == "cancelled"


def test_cancelling_an_issued_invoice_is_a_409(finance, world):
    invoice = issued(finance)
    assert_problem(finance.post(f"/api/v1/invoices/{invoice['id']}/cancel", json={"reason": "x"}),
                   409, "invoice_not_draft")


def test_credit_an_issued_invoice_in_part(finance, world):
    invoice = issued(finance)

    response = finance.post(f"/api/v1/invoices/{invoice['id']}/credit", json={
        "reason": "geste commercial", "issue_date": "2026-11-03",
        "lines": [{"description": "Remise", "quantity": "1", "unit_price": "100.00"}]})

    assert response.status_code == 201, response.json
    note = response.json
    assert (note["kind"], note["status"], note["number"]) == ("credit_note", "issued", "F2026-00002")
    assert note["corrects_invoice_id"] == invoice["id"] and note["corrects_number"] == invoice["number"]
    assert note["total_gross"] == "120.00"
    assert finance.get(f"/api/v1/invoices/{invoice['id']}").json["open_balance"] == "1320.00"


def test_credit_the_whole_invoice(finance, world):
    invoice = issued(finance)
    response = finance.post(f"/api/v1/invoices/{invoice['id']}/credit", json={"reason": "annulation"})
    assert response.status_code == 201
    assert finance.get(f"/api/v1/invoices/{invoice['id']}").json["status"] == "credited"


def test_credit_needs_a_reason(finance, world):
    invoice = issued(finance)
    body = assert_problem(finance.post(f"/api/v1/invoices/{invoice['id']}/credit", json={}), 422, "validation_failed")
    assert "reason" in body["errors"]


def test_list_invoices_with_filters_and_pagination(finance, world):
    issued(finance)
    draft(finance)
    draft(finance, contract=None)

    everything = finance.get("/api/v1/invoices").json
    drafts = finance.get("/api/v1/invoices?status=draft&page_size=1").json
    on_contract = finance.get("/api/v1/invoices?contract=LUM-2026-01&client=lumiere&entity=atelier").json
    credit_notes = finance.get("/api/v1/invoices?kind=credit_note").json
    nobody = finance.get("/api/v1/invoices?client=nobody").json

    assert everything["total"] == 3
    assert (drafts["total"], len(drafts["items"]), drafts["page_size"]) == (2, 1, 1)
    assert on_contract["total"] == 2
    assert credit_notes["total"] == 0 and nobody["total"] == 0
    assert everything["items"][0]["total_gross"] == "1440.00"


def test_unknown_invoice_is_a_404(finance):
    assert_problem(finance.get("/api/v1/invoices/999999"), 404, "invoice_not_found")
    assert_problem(finance.post("/api/v1/invoices/999999/issue", json={}), 404, "invoice_not_found")


def test_record_a_payment_and_read_the_balance(finance, world):
    first = issued(finance)
    second = issued(finance)

    response = finance.post("/api/v1/payments", json={
        "amount": "2000.00", "currency": "EUR", "received_on": "2026-11-20", "reference": "VIR 42",
        "allocations": [{"invoice_number": first["number"]}, {"invoice_number": second["number"], "amount": "500.00"}]})

    assert response.status_code == 201, response.json
    payment = response.json
    assert payment["client"] == "lumiere"
    assert payment["allocations"] == [
        {"invoice_id": first["id"], "invoice_number": first["number"], "amount": "1440.00"},
        {"invoice_id": second["id"], "invoice_number": second["number"], "amount": "500.00"}]
    assert payment["unallocated"] == "60.00"
    assert finance.get(f"/api/v1/payments/{payment['id']}").json == payment
    assert finance.get("/api/v1/payments?client=lumiere").json["total"] == 1
    assert finance.get(f"/api/v1/invoices/{first['id']}").json["status"] == "paid"
    assert finance.get(f"/api/v1/invoices/{second['id']}").json["open_balance"] == "940.00"
    balance = finance.get("/api/v1/clients/lumiere/balance").json
    assert balance == {"client": "lumiere", "balances": [
        {"currency": "EUR", "invoiced_open": "940.00", "unallocated_payments": "60.00", "balance": "880.00"}]}


def test_a_payment_over_the_balance_is_refused_and_writes_nothing(finance, world, uow):
    invoice = issued(finance)
    response = finance.post("/api/v1/payments", json={
        "amount": "5000.00", "currency": "EUR", "received_on": "2026-11-20",
        "allocations": [{"invoice_number": invoice["number"], "amount": "5000.00"}]})
    assert_problem(response, 422, "allocation_exceeds_balance")
    assert finance.get("/api/v1/payments").json["total"] == 0


def test_paying_an_unknown_invoice_is_a_404(finance, world):
    response = finance.post("/api/v1/payments", json={
        "amount": "10.00", "currency": "EUR", "received_on": "2026-11-20",
        "allocations": [{"invoice_number": "F1999-00001"}]})
    assert_problem(response, 404, "invoice_not_found")
    assert_problem(finance.get("/api/v1/payments/424242"), 404, "payment_not_found")


def test_the_audit_trail_names_the_token(finance, world, uow):
    invoice = issued(finance)
    trail = finance.get(f"/api/v1/audit?subject_type=invoices&subject_id={invoice['id']}").json
    assert [r["action"] for r in trail["items"]] == ["invoice.issued", "invoice.drafted"]
    assert {r["actor"] for r in trail["items"]} == {"token:compta"}
    with uow() as session:
        assert session.scalar(select(Invoice.created_by).where(Invoice.id == invoice["id"])) == "token:compta"
        assert session.scalar(select(AuditRecord.actor).where(AuditRecord.action == "invoice.issued")) == "token:compta"


def test_a_draft_with_a_deposit_shows_the_net_amount_due(finance, world):
    body = finance.post("/api/v1/invoices", json={**DRAFT, "prepaid_amount": "440.00"}).json
    assert (body["total_gross"], body["prepaid_amount"], body["amount_due"]) == ("1440.00", "440.00", "1000.00")


@pytest.mark.parametrize(("prepaid", "status", "code"), [
    ("1440.01", 422, "invalid_prepaid_amount"),
    ("-1", 422, "invalid_prepaid_amount"),
    (440, 422, "validation_failed"),
])
def test_a_bad_deposit_is_refused_and_no_draft_is_written(finance, world, prepaid, status, code):
    assert_problem(finance.post("/api/v1/invoices", json={**DRAFT, "prepaid_amount": prepaid}), status, code)
    assert finance.get("/api/v1/invoices").json["total"] == 0


@pytest.mark.parametrize("line", [
    {**LINE, "unit_price": "0.123456"},  # printed 0,1235 € while the net came from 0.123456
    {**LINE, "quantity": "1.00001"},
])
def test_a_line_with_more_than_four_decimals_is_refused_and_no_draft_is_written(finance, world, line):
    assert_problem(finance.post("/api/v1/invoices", json={**DRAFT, "lines": [line]}), 422, "too_many_decimals")
    assert finance.get("/api/v1/invoices").json["total"] == 0


def test_trailing_zeros_are_not_decimals(finance, world):
    body = draft(finance, lines=[{**LINE, "unit_price": "600.000000", "quantity": "2.50000"}])
    assert body["total_net"] == "1500.00"
