"""Finance approves drafts: through the API with a token, or with the one-click
link of its notification (``/approve/<token>``, HTML pages, no token)."""

from __future__ import annotations

import html
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from jalon.connector.outbox.dispatcher import claim
from jalon.connector.web.approval import TEXTS
from jalon.connector.outbox.notify import on_outcomes
from jalon.core import approval, catalog
from jalon.core.models import INVOICE_STATUSES, ApprovalLink, AuditRecord, Invoice, InvoiceDocument, OutboxMessage
from jalon.core.rules import apply_event
from jalon.core.types import utcnow
from tests import factories
from tests.api.support import assert_problem


@pytest.fixture
def draft_id(world, uow) -> int:  # type: ignore[no-untyped-def]
    with uow() as session:
        return factories.draft(session).id  # 1 000.00 + 20 % VAT


def make_link(uow, invoice_id: int, *, hours: int = 168, ago: timedelta = timedelta(0)) -> str:  # type: ignore[no-untyped-def]
    with uow() as session:
        _, token = approval.create_link(session, session.get(Invoice, invoice_id), valid_for=timedelta(hours=hours),
                                        now=utcnow() - ago)
    return token


def invoice(uow, invoice_id: int) -> Invoice:  # type: ignore[no-untyped-def]
    with uow() as session:
        return session.get(Invoice, invoice_id)


def actions(uow, invoice_id: int) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with uow() as session:
        return [(r.action, r.actor) for r in session.execute(
            select(AuditRecord).where(AuditRecord.subject_type == "invoices",
                                      AuditRecord.subject_id == str(invoice_id)).order_by(AuditRecord.id)).scalars()]


def documents(uow, invoice_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with uow() as session:
        return sorted(session.execute(select(InvoiceDocument.kind)
                                      .where(InvoiceDocument.invoice_id == invoice_id)).scalars())


def page_text(response) -> str:  # type: ignore[no-untyped-def]
    """The page as read: entities decoded, French digit grouping as plain spaces."""
    return html.unescape(response.get_data(as_text=True)).replace("\u202f", " ").replace("\xa0", " ")


# --- through the API ------------------------------------------------------------------


def test_finance_approves_a_draft_which_is_issued_with_its_documents(finance, draft_id, uow):
    response = finance.post(f"/api/v1/invoices/{draft_id}/approve", json={"reason": "vu avec le client"})
    assert response.status_code == 200, response.json
    body = response.json
    assert body["status"] == "issued" and re.fullmatch(r"F\d{4}-00001", body["number"])
    assert body["issued_by"] == "token:compta"
    assert body["documents"] == {"pdf": f"/api/v1/invoices/{draft_id}/pdf",
                                 "xml": f"/api/v1/invoices/{draft_id}/facturx.xml"}
    assert body["sending"]["status"] == "not_sent" and body["sending"]["to"] == ["compta@lumiere.example"]
    assert actions(uow, draft_id)[-2:] == [("invoice.approved", "token:compta"), ("invoice.issued", "token:compta")]
    assert documents(uow, draft_id) == ["pdf", "xml"]


def test_approving_an_issued_invoice_is_refused(finance, draft_id):
    assert finance.post(f"/api/v1/invoices/{draft_id}/approve", json={}).status_code == 200
    assert_problem(finance.post(f"/api/v1/invoices/{draft_id}/approve", json={}), 409, "invoice_not_draft")


def test_approving_an_unknown_invoice_is_a_404(finance, world):
    assert_problem(finance.post("/api/v1/invoices/999/approve", json={}), 404, "invoice_not_found")


def test_approving_takes_the_issue_date_given(finance, draft_id):
    body = finance.post(f"/api/v1/invoices/{draft_id}/approve", json={"issue_date": "2026-11-02"}).json
    assert (body["issue_date"], body["number"]) == ("2026-11-02", "F2026-00001")


def test_approve_refuses_an_unknown_field(finance, draft_id, uow):
    assert_problem(finance.post(f"/api/v1/invoices/{draft_id}/approve", json={"approved": True}),
                   422, "validation_failed")
    assert invoice(uow, draft_id).status == "draft"


def test_approving_out_of_chronology_is_refused_and_the_invoice_stays_a_draft(finance, draft_id, uow):
    with uow() as session:
        assert factories.issued(session).number == "F2026-00001"  # issued on 2026-11-02
    response = finance.post(f"/api/v1/invoices/{draft_id}/approve", json={"issue_date": "2026-11-01"})
    body = assert_problem(response, 409, "issue_date_out_of_order")
    assert "2026-11-01" in body["detail"] and "2026-11-02" in body["detail"]
    refused = invoice(uow, draft_id)
    assert (refused.status, refused.number, refused.issued_by) == ("draft", None, None)
    assert actions(uow, draft_id) == [("invoice.drafted", "finance")]  # the approval record rolled back with it
    assert documents(uow, draft_id) == []
    body = finance.post(f"/api/v1/invoices/{draft_id}/approve", json={"issue_date": "2026-11-02"}).json
    assert body["number"] == "F2026-00002"  # the refusal used no number


def test_a_draft_has_no_documents_nor_sending_in_its_detail(finance, draft_id):
    body = finance.get(f"/api/v1/invoices/{draft_id}").json
    assert body["documents"] is None and body["sending"] is None


# --- the one-click link: GET shows, changes nothing -------------------------------------


def test_opening_the_link_shows_the_draft_and_one_button_and_changes_nothing(app, draft_id, uow):
    token = make_link(uow, draft_id)
    response = app.test_client().get(f"/approve/{token}")
    assert response.status_code == 200 and response.mimetype == "text/html"
    text = page_text(response)
    assert "Lumière Industries SA" in text
    assert "1 000,00 €" in text and "1 200,00 €" in text
    assert re.search(r'<form method="post">.*<button type="submit">Approuver</button></form>', text)
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert invoice(uow, draft_id).status == "draft"
    with uow() as session:
        assert session.scalar(select(ApprovalLink.used_at)) is None
    assert [action for action, _ in actions(uow, draft_id)] == ["invoice.drafted"]


def test_the_page_shows_the_milestone_and_the_project(app, world, uow):
    with uow() as session:
        outcome = apply_event(session, factories.completed("WEB-1"))
    token = make_link(uow, outcome.invoice_id)
    text = page_text(app.test_client().get(f"/approve/{token}"))
    assert "LUM-2026-01 — Refonte du site" in text and "M1 — Maquettes validées" in text
    assert "<th>Projet</th><td>WEB</td>" in text
    assert "7 200,00 €" in text and "8 640,00 €" in text


def test_the_page_speaks_the_clients_language(app, world, uow):
    with uow() as session:
        catalog.upsert_client(session, {**factories.CLIENT, "language": "en"}, actor="test")
        invoice_id = factories.draft(session).id
    text = page_text(app.test_client().get(f"/approve/{make_link(uow, invoice_id)}"))
    assert '<html lang="en">' in text and "Amount incl. VAT" in text and "€1,200.00" in text
    assert '<button type="submit">Approve</button>' in text


def test_the_page_escapes_what_it_shows(app, world, uow):
    with uow() as session:
        catalog.upsert_client(session, {**factories.CLIENT, "name": "<script>alert(1)</script> & Cie"}, actor="test")
        invoice_id = factories.draft(session).id
    text = app.test_client().get(f"/approve/{make_link(uow, invoice_id)}").get_data(as_text=True)
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Cie" in text


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_an_unknown_link_is_a_404_page(app, world, method):
    response = app.test_client().open("/approve/not-a-real-token", method=method)
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "approval_link_unknown" in response.get_data(as_text=True)


# --- POST: approve and issue, once ------------------------------------------------------


def test_posting_the_link_issues_the_draft_once_and_marks_the_link_used(app, draft_id, uow):
    token = make_link(uow, draft_id)
    response = app.test_client().post(f"/approve/{token}")
    assert response.status_code == 200, response.get_data(as_text=True)
    issued = invoice(uow, draft_id)
    assert issued.status == "issued"
    assert f"La facture est émise sous le numéro {issued.number}, pour 1 200,00 € TTC." in page_text(response)
    with uow() as session:
        link = session.execute(select(ApprovalLink)).scalar_one()
    assert link.used_at is not None and link.used_by == f"approval-link:{link.id}"
    assert issued.issued_by == f"approval-link:{link.id}"
    assert actions(uow, draft_id)[-2:] == [("invoice.approved", f"approval-link:{link.id}"),
                                           ("invoice.issued", f"approval-link:{link.id}")]
    assert documents(uow, draft_id) == ["pdf", "xml"]


def test_a_used_link_is_refused_with_a_409_page(app, draft_id, uow):
    token = make_link(uow, draft_id)
    client = app.test_client()
    assert client.post(f"/approve/{token}").status_code == 200
    for method in ("POST", "GET"):
        again = client.open(f"/approve/{token}", method=method)
        assert again.status_code == 409 and "approval_link_used" in again.get_data(as_text=True)
    with uow() as session:
        assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.number.is_not(None))) == 1


def test_an_expired_link_is_refused_with_a_410_page_and_issues_nothing(app, draft_id, uow):
    token = make_link(uow, draft_id, hours=24, ago=timedelta(hours=25))
    for method in ("GET", "POST"):
        response = app.test_client().open(f"/approve/{token}", method=method)
        assert response.status_code == 410 and "approval_link_expired" in response.get_data(as_text=True)
        assert "Ce lien d'approbation a expiré" in page_text(response)
    assert invoice(uow, draft_id).status == "draft"


def test_a_link_to_an_invoice_issued_meanwhile_is_refused_and_stays_unused(app, finance, draft_id, uow):
    token = make_link(uow, draft_id)
    number = finance.post(f"/api/v1/invoices/{draft_id}/issue", json={}).json["number"]
    response = app.test_client().post(f"/approve/{token}")
    assert response.status_code == 409
    text = response.get_data(as_text=True)
    assert "invoice_not_draft" in text and number in text
    with uow() as session:
        assert session.scalar(select(ApprovalLink.used_at)) is None


def test_opening_a_link_to_an_invoice_approved_meanwhile_shows_a_409_page_and_changes_nothing(app, finance,
                                                                                            draft_id, uow):
    token = make_link(uow, draft_id)
    number = finance.post(f"/api/v1/invoices/{draft_id}/approve", json={}).json["number"]
    before = actions(uow, draft_id)
    response = app.test_client().get(f"/approve/{token}")
    assert response.status_code == 409 and response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    text = page_text(response)
    assert '<p class="code">invoice_not_draft</p>' in text and "<form" not in text
    assert f"Cette facture n'est plus un brouillon (émise, {number}) : il n'y a rien à approuver." in text
    with uow() as session:
        link = session.execute(select(ApprovalLink)).scalar_one()
    assert (link.used_at, link.used_by) == (None, None)
    approved = invoice(uow, draft_id)
    assert (approved.status, approved.number, approved.issued_by) == ("issued", number, "token:compta")
    assert actions(uow, draft_id) == before


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
])
def test_a_cross_site_form_post_is_refused(app, draft_id, uow, headers):
    token = make_link(uow, draft_id)
    response = app.test_client().post(f"/approve/{token}", headers=headers)
    assert response.status_code == 403 and "cross_site_request" in response.get_data(as_text=True)
    assert invoice(uow, draft_id).status == "draft"


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
    {"Origin": "http://127.0.0.1:8000"},  # the public URL (JALON_PUBLIC_URL), behind a proxy
    {},  # no browser hint: the token is the capability
])
def test_a_post_from_the_page_itself_is_accepted(app, draft_id, uow, headers):
    token = make_link(uow, draft_id)
    assert app.test_client().post(f"/approve/{token}", headers=headers).status_code == 200
    assert invoice(uow, draft_id).status == "issued"


def test_two_clicks_at_once_issue_one_invoice(app, draft_id, uow):
    token = make_link(uow, draft_id)
    start = threading.Barrier(2)
    statuses: list[int] = []

    def click() -> None:
        client = app.test_client()
        start.wait(timeout=10)
        statuses.append(client.post(f"/approve/{token}").status_code)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 409]
    with uow() as session:
        assert session.scalar(select(func.count()).select_from(Invoice).where(Invoice.number.is_not(None))) == 1
        assert session.scalar(select(func.count()).select_from(AuditRecord)
                              .where(AuditRecord.action == "invoice.approved")) == 1


def test_the_link_in_finance_notification_approves_the_milestone_draft(app, world, uow):
    with uow() as session:
        catalog.upsert_channel(session, {"key": "finance", "kind": "email", "name": "Finance",
                                         "target": {"to": ["finance@atelier.example"]}}, actor="test")
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.completed("WEB-1"))
        on_outcomes(session, [outcome], integration=integration, settings=app.extensions["jalon"].settings)
    with uow() as session:
        message = session.execute(select(OutboxMessage).where(OutboxMessage.channel == "email")).scalar_one()
    # the link is made as the dispatcher claims the message: what the e-mail channel is given
    [claimed] = claim(app.extensions["jalon"], owner="test", limit=1, ids=[message.id])
    url = claimed.view.payload["links"]["approve"]
    assert url.startswith("http://127.0.0.1:8000/approve/")
    path = "/approve/" + url.rsplit("/approve/", 1)[1]
    assert app.test_client().post(path).status_code == 200
    issued = invoice(uow, outcome.invoice_id)
    assert issued.status == "issued"
    with uow() as session:  # the PM task hears of it too
        comment = session.execute(select(OutboxMessage).where(
            OutboxMessage.idempotency_key == f"comment:invoice.issued:{issued.id}")).scalar_one()
    assert issued.number in comment.payload["text"]


def test_every_invoice_status_has_its_words_in_every_language_of_the_page():  # type: ignore[no-untyped-def]
    for language, texts in TEXTS.items():
        assert sorted(texts["statuses"]) == sorted(INVOICE_STATUSES), language
