"""An issued invoice's documents through the API: the stored Factur-X PDF and
its XML, the same bytes every time."""

from __future__ import annotations

import hashlib

import facturx
import pytest
from sqlalchemy import func, select

from jalon.core.models import InvoiceDocument
from tests import factories
from tests.api.support import assert_problem
from tests.api.test_invoices import draft, issued
from tests.core.documents import official


def stored(uow, invoice_id: int, kind: str) -> InvoiceDocument:  # type: ignore[no-untyped-def]
    with uow() as session:
        return session.execute(select(InvoiceDocument).where(
            InvoiceDocument.invoice_id == invoice_id, InvoiceDocument.kind == kind)).scalar_one()


def count_documents(uow) -> int:  # type: ignore[no-untyped-def]
    with uow() as session:
        return session.scalar(select(func.count()).select_from(InvoiceDocument))


def test_the_pdf_is_the_stored_factur_x_document_as_an_attachment(finance, world, uow):
    invoice = issued(finance)
    response = finance.get(invoice["documents"]["pdf"])
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == 'attachment; filename="F2026-00001.pdf"'
    document = stored(uow, invoice["id"], "pdf")
    assert response.data == document.content and response.data.startswith(b"%PDF")
    assert response.headers["ETag"] == f'"{hashlib.sha256(response.data).hexdigest()}"' == f'"{document.sha256}"'
    _, embedded = facturx.get_facturx_xml_from_pdf(response.data, check_xsd=False)
    assert facturx.xml_check_xsd(embedded, flavor="factur-x", level="en16931")
    if official.missing_reason() is None:  # the rules a plateforme agréée applies
        assert official.check(embedded) == []


def test_the_xml_is_the_one_embedded_in_the_pdf(finance, world, uow):
    invoice = issued(finance)
    response = finance.get(f"/api/v1/invoices/{invoice['id']}/facturx.xml")
    assert response.status_code == 200 and response.mimetype == "application/xml"
    assert response.headers["Content-Disposition"] == 'attachment; filename="F2026-00001.xml"'
    assert response.data == stored(uow, invoice["id"], "xml").content
    _, embedded = facturx.get_facturx_xml_from_pdf(finance.get(invoice["documents"]["pdf"]).data, check_xsd=False)
    assert embedded == response.data
    assert b"F2026-00001" in response.data


def test_a_known_etag_answers_304_without_the_bytes(finance, world):
    invoice = issued(finance)
    etag = finance.get(invoice["documents"]["pdf"]).headers["ETag"]
    again = finance.get(invoice["documents"]["pdf"], headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""


def test_issuing_through_the_api_stores_the_documents_once(finance, world, uow):
    invoice = issued(finance)
    assert count_documents(uow) == 2
    first = finance.get(invoice["documents"]["pdf"]).data
    assert finance.get(invoice["documents"]["pdf"]).data == first
    assert count_documents(uow) == 2


def test_an_invoice_issued_without_its_documents_gets_them_on_first_download(finance, world, uow):
    with uow() as session:  # issued by the core alone (a process stopped before rendering)
        invoice_id = factories.issued(session).id
    assert count_documents(uow) == 0
    response = finance.get(f"/api/v1/invoices/{invoice_id}/pdf")
    assert response.status_code == 200 and response.data == stored(uow, invoice_id, "pdf").content
    assert count_documents(uow) == 2


def test_a_credit_note_has_its_documents_too(finance, world, uow):
    invoice = issued(finance)
    note = finance.post(f"/api/v1/invoices/{invoice['id']}/credit", json={"reason": "geste commercial"}).json
    assert note["documents"]["pdf"] == f"/api/v1/invoices/{note['id']}/pdf"
    response = finance.get(note["documents"]["pdf"])
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="{note["number"]}.pdf"'
    _, xml = facturx.get_facturx_xml_from_pdf(response.data, check_xsd=False)
    assert facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")


@pytest.mark.parametrize("path", ["pdf", "facturx.xml"])
def test_a_draft_has_no_documents(finance, world, path):
    invoice = draft(finance)
    assert_problem(finance.get(f"/api/v1/invoices/{invoice['id']}/{path}"), 409, "invoice_not_issued")


@pytest.mark.parametrize("path", ["pdf", "facturx.xml"])
def test_an_unknown_invoice_has_no_documents(finance, world, path):
    assert_problem(finance.get(f"/api/v1/invoices/999/{path}"), 404, "invoice_not_found")


def test_documents_need_a_token(client, world):
    invoice = issued(client)
    assert_problem(client.as_token(None).get(invoice["documents"]["pdf"]), 401, "unauthorized")


def test_the_openapi_documents_the_downloads_as_binary(client):
    spec = client.get("/api/v1/openapi.json").json
    pdf = spec["paths"]["/api/v1/invoices/{invoice_id}/pdf"]["get"]["responses"]
    assert pdf["200"]["content"]["application/pdf"]["schema"] == {"type": "string", "format": "binary"}
    assert "ETag" in pdf["200"]["headers"] and "409" in pdf
    xml = spec["paths"]["/api/v1/invoices/{invoice_id}/facturx.xml"]["get"]["responses"]
    assert "application/xml" in xml["200"]["content"]
    detail = spec["components"]["schemas"]["InvoiceDetail"]["properties"]
    assert {"documents", "sending", "amount_due"} <= set(detail)


def test_the_download_name_stays_a_file_name_whatever_the_numbering_prefix():
    from jalon.connector.web.api.invoices import attachment

    assert attachment("F/2026-00001.pdf") == 'attachment; filename="F-2026-00001.pdf"'
    assert attachment("É2026-00001.pdf") == (
        "attachment; filename=\"E2026-00001.pdf\"; filename*=UTF-8''%C3%892026-00001.pdf")
