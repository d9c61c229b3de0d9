"""Sending issued invoices to clients through the API: queued in the outbox,
one e-mail per invoice, ever; the dispatcher sends them (tests/outbox)."""

from __future__ import annotations

from sqlalchemy import select

from jalon.core import catalog
from jalon.core.models import OutboxMessage
from tests import factories
from tests.api.support import assert_problem
from tests.api.test_invoices import draft, issued


def sends(uow) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    with uow() as session:
        return list(session.execute(select(OutboxMessage).where(OutboxMessage.kind == "invoice.sent")
                                    .order_by(OutboxMessage.id)).scalars())


def test_sending_an_invoice_queues_one_e_mail_to_the_client_with_its_pdf(finance, world, uow):
    invoice = issued(finance)
    response = finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"]]})
    assert response.status_code == 202, response.json
    assert response.json == {"queued": 1, "already_queued": 0, "skipped_no_email": []}
    [message] = sends(uow)
    assert (message.channel, message.invoice_id, message.status) == ("email", invoice["id"], "pending")
    assert message.idempotency_key == f"invoice:{invoice['id']}:send"
    assert message.destination == {"to": ["compta@lumiere.example"]}
    assert message.payload["attachments"] == [{"invoice_id": invoice["id"], "kind": "pdf"}]
    assert message.payload["subject"] == "Facture F2026-00001 — Atelier Numérique SAS"
    text = message.payload["text"].replace("\u202f", " ").replace("\xa0", " ")
    assert "notre facture F2026-00001 du 2 novembre 2026, d'un montant de 1 440,00 € TTC" in text
    assert "Montant à payer : 1 440,00 €, au plus tard le 2 décembre 2026." in text
    assert "IBAN : FR7630006000011234567890189" in text and "BIC : AGRIFRPP" in text
    assert "Référence à indiquer : F2026-00001" in text
    assert message.payload["data"]["amount_due"] == "1440.00"
    sending = finance.get(f"/api/v1/invoices/{invoice['id']}").json["sending"]
    assert sending["status"] == "pending" and sending["to"] == ["compta@lumiere.example"]
    assert sending["outbox_id"] == message.id and sending["message_id"] is None


def test_an_invoice_named_twice_is_queued_once(finance, world, uow):
    invoice = issued(finance)
    response = finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"], invoice["id"]]})
    assert response.json == {"queued": 1, "already_queued": 0, "skipped_no_email": []}
    assert len(sends(uow)) == 1


def test_sending_again_queues_nothing(finance, world, uow):
    invoice = issued(finance)
    finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"]]})
    again = finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"]]})
    assert again.status_code == 202 and again.json == {"queued": 0, "already_queued": 1, "skipped_no_email": []}
    assert len(sends(uow)) == 1


def test_an_english_client_gets_its_invoice_in_english(finance, world, uow):
    with uow() as session:
        catalog.upsert_client(session, {**factories.CLIENT, "language": "en"}, actor="test")
    invoice = issued(finance)
    finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"]]})
    [message] = sends(uow)
    assert message.payload["subject"] == "Invoice F2026-00001 — Atelier Numérique SAS"
    assert "Amount due: €1,440.00, by 2 December 2026." in message.payload["text"]
    assert "IBAN: FR7630006000011234567890189" in message.payload["text"]


def test_a_credit_note_is_sent_with_nothing_to_pay(finance, world, uow):
    invoice = issued(finance)
    note = finance.post(f"/api/v1/invoices/{invoice['id']}/credit", json={"reason": "geste"}).json
    finance.post("/api/v1/invoices/send", json={"invoice_ids": [note["id"]]})
    [message] = sends(uow)
    assert message.payload["subject"] == f"Avoir {note['number']} — Atelier Numérique SAS"
    assert "qui corrige la facture F2026-00001" in message.payload["text"]
    assert "rien à payer" in message.payload["text"] and "IBAN" not in message.payload["text"]


def test_all_issued_queues_each_unsent_invoice_and_skips_clients_without_e_mail(finance, world, uow):
    with uow() as session:
        catalog.upsert_client(session, factories.OTHER_CLIENT, actor="test")  # no billing e-mail
    first, second = issued(finance), issued(finance)
    finance.post("/api/v1/invoices/send", json={"invoice_ids": [first["id"]]})
    horizon = finance.post("/api/v1/invoices", json={"entity": "atelier", "client": "horizon", "lines": [
        {"description": "Audit", "quantity": "1", "unit_price": "500.00"}]}).json
    horizon = finance.post(f"/api/v1/invoices/{horizon['id']}/issue", json={"issue_date": "2026-11-02"}).json
    draft(finance)  # a draft is never sent
    response = finance.post("/api/v1/invoices/send", json={"all_issued": True})
    assert response.status_code == 202
    assert response.json == {"queued": 1, "already_queued": 1, "skipped_no_email": [horizon["number"]]}
    assert [m.invoice_id for m in sends(uow)] == [first["id"], second["id"]]


def test_a_draft_is_not_sent(finance, world, uow):
    invoice = draft(finance)
    assert_problem(finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"]]}),
                   409, "invoice_not_issued")
    assert sends(uow) == []


def test_a_client_without_billing_e_mail_is_refused_and_nothing_is_queued(finance, world, uow):
    with uow() as session:
        catalog.upsert_client(session, {**factories.CLIENT, "billing_emails": []}, actor="test")
    invoice = issued(finance)
    response = finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"]]})
    body = assert_problem(response, 409, "client_has_no_billing_email")
    assert "lumiere" in body["detail"]
    assert sends(uow) == []


def test_one_unknown_invoice_refuses_them_all(finance, world, uow):
    invoice = issued(finance)
    assert_problem(finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"], 999]}),
                   404, "invoice_not_found")
    assert sends(uow) == []


def test_the_body_names_either_invoices_or_all_issued(finance, world):
    for body in ({}, {"all_issued": False}, {"all_issued": True, "invoice_ids": [1]}, {"invoice_ids": []},
                 {"invoice_ids": ["1"]}):
        assert_problem(finance.post("/api/v1/invoices/send", json=body), 422, "validation_failed")


def test_more_than_a_thousand_invoices_at_once_is_refused_and_nothing_is_queued(finance, world, uow):
    invoice = issued(finance)
    body = assert_problem(finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"]] * 1001}),
                          422, "validation_failed")
    assert "invoice_ids" in body["errors"]
    assert sends(uow) == []
    at_the_limit = finance.post("/api/v1/invoices/send", json={"invoice_ids": [invoice["id"]] * 1000})
    assert at_the_limit.status_code == 202 and at_the_limit.json["queued"] == 1
