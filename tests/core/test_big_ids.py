"""The ids of the tables that grow without bound are 64-bit on every engine:
past 2^31 - 1, PostgreSQL's INTEGER limit, rows are still stored, referred to,
read back and guarded (migration 0006)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from jalon.core import catalog, invoicing
from jalon.core.db import unit_of_work
from jalon.core.models import Base, Delivery, Invoice, InvoiceLine, OutboxMessage

from tests.factories import draft, line

PAST_INT32 = 2**31 + 5
BIG_TABLES = ("invoices", "invoice_lines", "payments", "payment_allocations", "time_entries", "task_states",
              "audit_records", "deliveries", "outbox_messages", "job_runs", "invoice_documents", "approval_links")


def _postgresql(session) -> bool:  # type: ignore[no-untyped-def]
    return session.get_bind().dialect.name == "postgresql"


def _next_id(session, table: str, value: int) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL: the next row of ``table`` gets ``value`` from its sequence."""
    session.execute(text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :value)"),
                    {"table": table, "value": value - 1})


def _delivery(key: str, **values) -> Delivery:  # type: ignore[no-untyped-def]
    return Delivery(integration_id=1, source="jira", idempotency_key=key, body=b"{}", body_sha256="0" * 64, **values)


def test_a_delivery_past_2_31_is_stored_referred_to_and_read_back(world):  # type: ignore[no-untyped-def]
    with unit_of_work(world) as session:
        if _postgresql(session):
            _next_id(session, "deliveries", PAST_INT32)
            delivery = _delivery("big-1")
        else:  # SQLite gives the largest rowid + 1: the first one is given its id
            delivery = _delivery("big-1", id=PAST_INT32)
        session.add(delivery)
        session.flush()
        assert delivery.id == PAST_INT32
        session.add(OutboxMessage(idempotency_key="about-big-1", channel="chat", kind="milestone.done",
                                  delivery_id=delivery.id))
        following = _delivery("big-2")
        session.add(following)
    with unit_of_work(world) as session:
        stored = session.get(Delivery, PAST_INT32)
        assert stored is not None and stored.idempotency_key == "big-1"
        assert session.scalars(select(Delivery.id).order_by(Delivery.id)).all() == [PAST_INT32, PAST_INT32 + 1]
        message = session.scalars(select(OutboxMessage).where(OutboxMessage.delivery_id == PAST_INT32)).one()
        assert message.delivery_id == PAST_INT32


def test_an_invoice_past_2_31_is_issued_and_its_lines_stay_guarded(world):  # type: ignore[no-untyped-def]
    with unit_of_work(world) as session:
        if _postgresql(session):
            _next_id(session, "invoices", PAST_INT32)
            _next_id(session, "invoice_lines", PAST_INT32)
        else:  # SQLite gives the largest rowid + 1: an empty draft just below
            session.add(Invoice(id=PAST_INT32 - 1, entity_id=catalog.get_entity(session, "atelier").id,
                                client_id=catalog.get_client(session, "lumiere").id, currency="EUR"))
            session.flush()
        invoice = draft(session, line("100.00", description="Conseil"))
        session.flush()
        assert invoice.id == PAST_INT32
        invoicing.issue(session, invoice.id, actor="finance", issue_date=date(2026, 11, 2))
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, PAST_INT32)
        assert invoice is not None and invoice.status == "issued" and invoice.number
        assert [ln.invoice_id for ln in invoice.lines] == [PAST_INT32]
        if _postgresql(session):
            assert invoice.lines[0].id == PAST_INT32
    # the database's own guard still reads the line's invoice (a BIGINT now on PostgreSQL)
    with pytest.raises(IntegrityError) as refused, unit_of_work(world) as session:
        session.execute(text("UPDATE invoice_lines SET description = 'Revu' WHERE invoice_id = :id"),
                        {"id": PAST_INT32})
    assert "append-only" in str(refused.value)
    with unit_of_work(world) as session:
        assert session.scalars(select(InvoiceLine.description)).all() == ["Conseil"]


def test_the_growing_ids_and_their_references_are_64_bit(engine):  # type: ignore[no-untyped-def]
    columns = {(table, column["name"]): column["type"]
               for table in BIG_TABLES for column in inspect(engine).get_columns(table)}
    referring = [(fk.parent.table.name, fk.parent.name) for table in Base.metadata.sorted_tables
                 for fk in table.foreign_keys if fk.column.table.name in BIG_TABLES]
    assert referring, "no column refers to a growing table?"
    for table in BIG_TABLES:
        for key in [(table, "id"), *(ref for ref in referring if ref[0] == table)]:
            kind = columns[key]
            # SQLite's INTEGER is 64-bit; PostgreSQL's BIGINT
            assert kind.__visit_name__ in ("big_integer", "BIGINT") if engine.dialect.name == "postgresql" \
                else kind.__visit_name__ in ("integer", "INTEGER"), (key, kind)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            for table in BIG_TABLES:
                kind = conn.execute(text("SELECT data_type FROM information_schema.sequences "
                                         "WHERE sequence_name = :name"), {"name": f"{table}_id_seq"}).scalar()
                assert kind == "bigint", table
