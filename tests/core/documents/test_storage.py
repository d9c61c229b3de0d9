"""An issued invoice's documents are rendered once and stored: asked again,
the same rows come back, byte for byte; concurrent callers store one row per
kind; a draft has none; the stored documents are append-only."""

from __future__ import annotations

import hashlib
import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from jalon.core import catalog, documents
from jalon.core.db import unit_of_work
from jalon.core.errors import Conflict, ImmutableRecord, NotFound
from jalon.core.models import Invoice, InvoiceDocument

from tests.factories import draft, issued


@pytest.fixture
def invoice_id(world):  # type: ignore[no-untyped-def]
    with unit_of_work(world) as session:
        return issued(session, on=date(2026, 11, 2)).id


def _ensure(Session, invoice_id):  # type: ignore[no-untyped-def]  # noqa: N803
    with unit_of_work(Session) as session:
        rows = documents.ensure(session, session.get(Invoice, invoice_id))
        return {kind: (row.id, row.filename, row.media_type, row.sha256, row.size, bytes(row.content))
                for kind, row in rows.items()}


def test_ensure_stores_the_pdf_and_the_xml_of_an_issued_invoice(world, invoice_id):
    stored = _ensure(world, invoice_id)
    assert set(stored) == {"pdf", "xml"}
    _id, filename, media_type, sha256, size, content = stored["pdf"]
    assert (filename, media_type) == ("F2026-00001.pdf", "application/pdf")
    assert content.startswith(b"%PDF-")
    assert (sha256, size) == (hashlib.sha256(content).hexdigest(), len(content))
    _id, filename, media_type, sha256, size, content = stored["xml"]
    assert (filename, media_type) == ("F2026-00001.xml", "application/xml")
    assert b"<ram:ID>F2026-00001</ram:ID>" in content
    assert (sha256, size) == (hashlib.sha256(content).hexdigest(), len(content))


def test_a_second_call_returns_the_same_rows_byte_for_byte(world, invoice_id):
    first = _ensure(world, invoice_id)
    assert _ensure(world, invoice_id) == first
    with unit_of_work(world) as session:
        assert session.scalar(select(func.count()).select_from(InvoiceDocument)) == 2
        assert documents.stored(session, invoice_id, "pdf").sha256 == first["pdf"][3]


def test_stored_is_none_before_the_documents_are_rendered(world, invoice_id):
    with unit_of_work(world) as session:
        assert documents.stored(session, invoice_id, "pdf") is None
        assert documents.stored(session, invoice_id, "xml") is None


def test_concurrent_callers_store_one_row_per_kind(world, invoice_id):
    results: list[dict] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def call() -> None:
        try:
            start.wait()
            results.append(_ensure(world, invoice_id))
        except BaseException as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(result == results[0] for result in results)
    with unit_of_work(world) as session:
        kinds = session.execute(select(InvoiceDocument.kind, func.count()).group_by(InvoiceDocument.kind)).all()
    assert sorted(kinds) == [("pdf", 1), ("xml", 1)]


def test_a_conflicting_insert_is_absorbed_and_the_winners_rows_returned(world, invoice_id, monkeypatch):
    """The race that a unique key settles: another transaction stored the
    documents between our look-up and our insert."""
    with unit_of_work(world) as session:
        winner = documents.ensure(session, session.get(Invoice, invoice_id))
        winner_sha = {kind: row.sha256 for kind, row in winner.items()}
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        real = documents.store._all_stored
        looked: list[int] = []

        def first_look_misses(s, i):  # type: ignore[no-untyped-def]
            looked.append(i)
            return {} if len(looked) == 1 else real(s, i)

        monkeypatch.setattr(documents.store, "_all_stored", first_look_misses)
        rows = documents.ensure(session, invoice)
        assert len(looked) == 2
        assert {kind: row.sha256 for kind, row in rows.items()} == winner_sha
        assert session.scalar(select(func.count()).select_from(InvoiceDocument)) == 2


def test_ensure_committed_renders_outside_any_transaction_and_stores_once(world, invoice_id):
    first = documents.ensure_committed(world, invoice_id)
    again = documents.ensure_committed(world, invoice_id)
    assert {k: (r.id, r.sha256) for k, r in first.items()} == {k: (r.id, r.sha256) for k, r in again.items()}
    assert _ensure(world, invoice_id)["pdf"][3] == first["pdf"].sha256


def test_ensure_committed_refuses_a_draft(world):
    with unit_of_work(world) as session:
        draft_id = draft(session).id
    with pytest.raises(Conflict) as refused:
        documents.ensure_committed(world, draft_id)
    assert refused.value.code == "invoice_not_issued"


def test_ensure_committed_refuses_an_unknown_invoice(world):
    with pytest.raises(NotFound) as refused:
        documents.ensure_committed(world, 999_999)
    assert refused.value.code == "invoice_not_found"


def test_a_prefix_with_a_slash_gives_file_names_without_one(world):
    with unit_of_work(world) as session:
        catalog.get_entity(session, "atelier").invoice_prefix = "F/"
        invoice_id = issued(session).id
    stored = documents.ensure_committed(world, invoice_id)
    assert (stored["pdf"].filename, stored["xml"].filename) == ("F-2026-00001.pdf", "F-2026-00001.xml")


@pytest.mark.parametrize("state", ["draft", "cancelled"])
def test_a_draft_or_cancelled_invoice_has_no_documents(world, state):
    with unit_of_work(world) as session:
        invoice = draft(session)
        invoice.status = state
        session.flush()
        with pytest.raises(Conflict) as refused:
            documents.ensure(session, invoice)
        assert refused.value.code == "invoice_not_issued"
        with pytest.raises(Conflict) as refused:
            documents.render(invoice)
        assert refused.value.code == "invoice_not_issued"
        assert session.scalar(select(func.count()).select_from(InvoiceDocument)) == 0


@pytest.mark.parametrize("change", ["update", "delete"])
def test_a_stored_document_is_append_only(world, invoice_id, change):
    before = _ensure(world, invoice_id)
    with pytest.raises(ImmutableRecord) as refused, unit_of_work(world) as session:
        row = documents.stored(session, invoice_id, "pdf")
        if change == "update":
            row.content = b"%PDF- forged"
        else:
            session.delete(row)
        session.flush()
    assert refused.value.code == "record_append_only"
    assert _ensure(world, invoice_id) == before


def test_the_database_refuses_to_change_a_stored_document_too(world, invoice_id, engine):
    _ensure(world, invoice_id)
    with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
        conn.execute(InvoiceDocument.__table__.update().values(content=b"forged"))
