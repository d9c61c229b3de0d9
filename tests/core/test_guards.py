"""An issued invoice, its lines, payments, allocations and the audit trail are
append-only: the ORM refuses to change or delete them. Drafts stay editable."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from jalon.core.db import unit_of_work
from jalon.core.errors import Conflict, ImmutableRecord
from jalon.core.invoicing import replace_lines
from jalon.core.models import AuditRecord, Invoice, InvoiceLine, Payment, PaymentAllocation
from jalon.core.money import Money
from jalon.core.payments import Allocation, record_payment

from tests.factories import draft, issued, line

D = Decimal


@pytest.fixture
def invoice_id(world):  # type: ignore[no-untyped-def]
    with unit_of_work(world) as session:
        return issued(session, line("100.00", description="Conseil"), line("50.00", description="Support"),
                      on=date(2026, 11, 2)).id


@pytest.fixture
def payment_id(world, invoice_id):  # type: ignore[no-untyped-def]
    with unit_of_work(world) as session:
        return record_payment(session, amount=Money.of("100.00", "EUR"), received_on=date(2026, 11, 20),
                              allocations=[Allocation("F2026-00001")], actor="finance").id


def _stored_invoice(Session, invoice_id):  # noqa: N803
    with unit_of_work(Session) as session:
        invoice = session.get(Invoice, invoice_id)
        return {
            "number": invoice.number, "note": invoice.note, "total_gross": invoice.total_gross,
            "lines": [(l.description, l.quantity, l.unit_price, l.net_amount) for l in invoice.lines],
        }


@pytest.mark.parametrize("column, value", [
    ("note", "modifié"),
    ("total_gross", D("1.00")),
    ("due_date", date(2027, 1, 1)),
    ("number", "F2026-99999"),
    ("buyer", {"name": "Autre"}),
    ("issue_date", date(2026, 11, 3)),
])
def test_an_issued_invoice_refuses_any_change_but_its_status(world, invoice_id, column, value):
    before = _stored_invoice(world, invoice_id)
    with pytest.raises(ImmutableRecord) as refused, unit_of_work(world) as session:
        setattr(session.get(Invoice, invoice_id), column, value)
    assert refused.value.code == "invoice_issued"
    assert _stored_invoice(world, invoice_id) == before


def test_a_status_change_together_with_another_column_is_refused(world, invoice_id):
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        invoice.status = "paid"
        invoice.total_gross = D("0")


def test_the_status_of_an_issued_invoice_may_still_change(world, invoice_id):
    with unit_of_work(world) as session:
        session.get(Invoice, invoice_id).status = "paid"
    with unit_of_work(world) as session:
        assert session.get(Invoice, invoice_id).status == "paid"


def test_a_line_of_an_issued_invoice_cannot_be_updated(world, invoice_id):
    before = _stored_invoice(world, invoice_id)
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        invoice.lines[0].unit_price = D("1.00")
    assert _stored_invoice(world, invoice_id) == before


def test_a_line_of_an_issued_invoice_cannot_be_deleted(world, invoice_id):
    before = _stored_invoice(world, invoice_id)
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        session.delete(invoice.lines[0])
    assert _stored_invoice(world, invoice_id) == before


def test_a_line_of_an_issued_invoice_cannot_be_removed_from_its_lines(world, invoice_id):
    before = _stored_invoice(world, invoice_id)
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        invoice.lines.remove(invoice.lines[0])
    assert _stored_invoice(world, invoice_id) == before


def test_no_line_can_be_added_to_an_issued_invoice(world, invoice_id):
    before = _stored_invoice(world, invoice_id)
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        invoice.lines.append(InvoiceLine(position=3, description="Ajout", quantity=D(1), unit_price=D(10), net_amount=D(10)))
    assert _stored_invoice(world, invoice_id) == before


def test_no_line_can_be_attached_to_an_issued_invoice_by_its_id(world, invoice_id):
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        session.add(InvoiceLine(invoice_id=invoice_id, position=3, description="Ajout", quantity=D(1),
                                unit_price=D(10), net_amount=D(10)))
    with unit_of_work(world) as session:
        assert session.scalar(select(func.count()).select_from(InvoiceLine)) == 2


def test_an_issued_invoice_cannot_be_deleted(world, invoice_id):
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        session.delete(session.get(Invoice, invoice_id))
    with unit_of_work(world) as session:
        assert session.get(Invoice, invoice_id).number == "F2026-00001"


def test_replace_lines_refuses_an_issued_invoice(world, invoice_id):
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        replace_lines(session, session.get(Invoice, invoice_id), [line("1.00")], actor="finance")
    assert refused.value.code == "invoice_not_draft"


def test_a_draft_remains_editable(world):
    with unit_of_work(world) as session:
        invoice_id = draft(session, line("100.00")).id
    with unit_of_work(world) as session:
        replace_lines(session, session.get(Invoice, invoice_id), [line("40.00"), line("10.00", "2")],
                      actor="finance")
        session.get(Invoice, invoice_id).note = "bon de commande 42"
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        assert [l.net_amount for l in invoice.lines] == [D("40.00"), D("20.00")]
        assert (invoice.total_net, invoice.total_gross, invoice.note) == (D("60.00"), D("72.00"), "bon de commande 42")
        assert session.scalar(select(func.count()).select_from(InvoiceLine)) == 2


def test_a_draft_can_be_deleted(world):
    with unit_of_work(world) as session:
        invoice_id = draft(session).id
    with unit_of_work(world) as session:
        session.delete(session.get(Invoice, invoice_id))
    with unit_of_work(world) as session:
        assert session.get(Invoice, invoice_id) is None


def test_a_payment_cannot_be_modified(world, payment_id):
    with pytest.raises(ImmutableRecord) as refused, unit_of_work(world) as session:
        session.get(Payment, payment_id).amount = D("1.00")
    assert refused.value.code == "record_append_only"
    with unit_of_work(world) as session:
        assert session.get(Payment, payment_id).amount == D("100.00")


def test_a_payment_cannot_be_deleted(world, payment_id):
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        session.delete(session.get(Payment, payment_id))
    with unit_of_work(world) as session:
        assert session.get(Payment, payment_id) is not None


def test_an_allocation_cannot_be_modified(world, payment_id):
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        payment = session.get(Payment, payment_id)
        payment.allocations[0].amount = D("1.00")
    with unit_of_work(world) as session:
        assert session.get(Payment, payment_id).allocations[0].amount == D("100.00")


def test_an_allocation_cannot_be_deleted(world, payment_id):
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        payment = session.get(Payment, payment_id)
        session.delete(payment.allocations[0])
    with unit_of_work(world) as session:
        assert session.scalar(select(func.count()).select_from(PaymentAllocation)) == 1


def test_an_audit_record_cannot_be_modified(world, invoice_id):
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        record = session.execute(select(AuditRecord).where(AuditRecord.action == "invoice.issued")).scalar_one()
        record.actor = "someone else"
    with unit_of_work(world) as session:
        record = session.execute(select(AuditRecord).where(AuditRecord.action == "invoice.issued")).scalar_one()
        assert record.actor == "finance"


def test_an_audit_record_cannot_be_deleted(world, invoice_id):
    with unit_of_work(world) as session:
        count = session.scalar(select(func.count()).select_from(AuditRecord))
    with pytest.raises(ImmutableRecord), unit_of_work(world) as session:
        session.delete(session.execute(select(AuditRecord).limit(1)).scalar_one())
    with unit_of_work(world) as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == count


# The database enforces the same rules for whatever goes around the ORM.

RAW_CHANGES = [
    ("UPDATE invoices SET note = 'modifié' WHERE id = 1", "invoice"),
    ("UPDATE invoices SET total_gross = 1 WHERE id = 1", "invoice"),
    ("UPDATE invoices SET buyer = NULL WHERE id = 1", "invoice"),
    ("UPDATE invoices SET status = 'draft' WHERE id = 1", "invoice"),
    ("DELETE FROM invoices WHERE id = 1", "invoice"),
    ("UPDATE invoice_lines SET unit_price = 1 WHERE invoice_id = 1", "line"),
    ("DELETE FROM invoice_lines WHERE invoice_id = 1", "line"),
    ("UPDATE payments SET amount = 1", "payments"),
    ("DELETE FROM payment_allocations", "payment_allocations"),
    ("UPDATE audit_records SET actor = 'someone else'", "audit_records"),
    ("DELETE FROM audit_records", "audit_records"),
]


@pytest.mark.parametrize("statement, what", RAW_CHANGES)
def test_raw_sql_cannot_change_append_only_records(world, invoice_id, payment_id, statement, what):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    before = _stored_invoice(world, invoice_id)
    with pytest.raises(IntegrityError) as refused, unit_of_work(world) as session:
        session.execute(text(statement))
    assert "jalon: append-only record" in str(refused.value) and what in str(refused.value)
    assert _stored_invoice(world, invoice_id) == before


def test_raw_sql_may_still_move_an_issued_invoices_status(world, invoice_id):
    from sqlalchemy import text

    with unit_of_work(world) as session:
        session.execute(text("UPDATE invoices SET status = 'paid' WHERE id = :id"), {"id": invoice_id})
    with unit_of_work(world) as session:
        assert session.get(Invoice, invoice_id).status == "paid"


def test_raw_sql_may_still_edit_a_draft(world):
    from sqlalchemy import text

    with unit_of_work(world) as session:
        draft_id = draft(session).id
    with unit_of_work(world) as session:
        session.execute(text("UPDATE invoice_lines SET description = 'Revu' WHERE invoice_id = :id"), {"id": draft_id})
        session.execute(text("UPDATE invoices SET note = 'revu' WHERE id = :id"), {"id": draft_id})
    with unit_of_work(world) as session:
        assert session.get(Invoice, draft_id).lines[0].description == "Revu"
