"""Payments: recorded once, allocated to named invoices in order, the rest kept
as the client's credit; invoice statuses and client balances follow."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from jalon.core import catalog, fx
from jalon.core.balances import open_balance
from jalon.core.db import unit_of_work
from jalon.core.errors import Conflict, Invalid, NotFound
from jalon.core.invoicing import credit
from jalon.core.models import AuditRecord, Invoice, Payment
from jalon.core.money import Money
from jalon.core.payments import Allocation, client_balances, record_payment

from tests.factories import OTHER_CLIENT, draft, issued, line

D = Decimal
RECEIVED = date(2026, 12, 1)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


@pytest.fixture
def invoices(world):  # type: ignore[no-untyped-def]
    """Three issued invoices of the client: F2026-00001 (1 200.00), -00002 (600.00), -00003 (120.00)."""
    with unit_of_work(world) as session:
        issued(session, line("1000.00"))
        issued(session, line("500.00"))
        issued(session, line("100.00"))
    return world


def _pay(Session, amount, *allocations, **kw):  # noqa: N803
    with unit_of_work(Session) as session:
        return record_payment(session, amount=amount, received_on=RECEIVED, actor="finance",
                              allocations=list(allocations), **kw).id


def _status(Session, number):  # noqa: N803
    with unit_of_work(Session) as session:
        invoice = session.execute(select(Invoice).where(Invoice.number == number)).scalar_one()
        return invoice.status, open_balance(session, invoice)


def _balance(Session, currency="EUR"):  # noqa: N803
    with unit_of_work(Session) as session:
        balances = {b.currency: b for b in client_balances(session, catalog.get_client(session, "lumiere"))}
        return balances[currency]


def test_a_full_payment_makes_the_invoice_paid(invoices):
    _pay(invoices, eur("1200.00"), Allocation("F2026-00001"))
    assert _status(invoices, "F2026-00001") == ("paid", eur("0.00"))


def test_a_partial_payment_makes_the_invoice_partially_paid(invoices):
    _pay(invoices, eur("200.00"), Allocation("F2026-00001"))
    assert _status(invoices, "F2026-00001") == ("partially_paid", eur("1000.00"))


def test_statuses_go_from_issued_to_partially_paid_to_paid(invoices):
    assert _status(invoices, "F2026-00002")[0] == "issued"
    _pay(invoices, eur("100.00"), Allocation("F2026-00002"))
    assert _status(invoices, "F2026-00002")[0] == "partially_paid"
    _pay(invoices, eur("500.00"), Allocation("F2026-00002"))
    assert _status(invoices, "F2026-00002") == ("paid", eur("0.00"))


def test_an_over_payment_leaves_the_excess_unallocated_and_the_client_in_credit(invoices):
    payment_id = _pay(invoices, eur("1500.00"), Allocation("F2026-00001"))
    assert _status(invoices, "F2026-00001")[0] == "paid"
    with unit_of_work(invoices) as session:
        assert session.get(Payment, payment_id).unallocated == eur("300.00")
    balance = _balance(invoices)
    # still owed: 600.00 + 120.00; in credit: 300.00
    assert (balance.invoiced_open, balance.unallocated_payments) == (eur("720.00"), eur("300.00"))
    assert balance.balance == eur("420.00")


def test_a_client_who_paid_more_than_everything_has_a_negative_balance(invoices):
    _pay(invoices, eur("2000.00"), Allocation("F2026-00001"), Allocation("F2026-00002"), Allocation("F2026-00003"))
    assert _balance(invoices).balance == eur("-80.00")


def test_one_payment_settles_several_invoices_in_the_order_given(invoices):
    _pay(invoices, eur("1000.00"), Allocation("F2026-00002"), Allocation("F2026-00003"), Allocation("F2026-00001"))
    assert _status(invoices, "F2026-00002") == ("paid", eur("0.00"))
    assert _status(invoices, "F2026-00003") == ("paid", eur("0.00"))
    assert _status(invoices, "F2026-00001") == ("partially_paid", eur("920.00"))


def test_explicit_amounts_are_put_on_each_named_invoice(invoices):
    payment_id = _pay(invoices, eur("500.00"), Allocation("F2026-00001", eur("300.00")),
                      Allocation("F2026-00002", eur("150.00")))
    assert _status(invoices, "F2026-00001") == ("partially_paid", eur("900.00"))
    assert _status(invoices, "F2026-00002") == ("partially_paid", eur("450.00"))
    with unit_of_work(invoices) as session:
        assert session.get(Payment, payment_id).unallocated == eur("50.00")


def test_an_allocation_above_the_invoice_balance_is_refused(invoices):
    with pytest.raises(Invalid) as refused:
        _pay(invoices, eur("1000.00"), Allocation("F2026-00002", eur("600.01")))
    assert refused.value.code == "allocation_exceeds_balance"
    assert _status(invoices, "F2026-00002") == ("issued", eur("600.00"))


def test_allocations_above_the_payment_are_refused(invoices):
    with pytest.raises(Invalid) as refused:
        _pay(invoices, eur("100.00"), Allocation("F2026-00001", eur("150.00")))
    assert refused.value.code == "allocation_exceeds_payment"


def test_a_payment_naming_another_client_invoice_is_refused(invoices):
    with unit_of_work(invoices) as session:
        catalog.upsert_client(session, OTHER_CLIENT, actor="admin")
        issued(session, line("100.00"), client="horizon")  # F2026-00004
    with pytest.raises(Invalid) as refused:
        with unit_of_work(invoices) as session:
            record_payment(session, amount=eur("100.00"), received_on=RECEIVED, actor="finance",
                           client=catalog.get_client(session, "lumiere"), allocations=[Allocation("F2026-00004")])
    assert refused.value.code == "client_mismatch"


def test_a_payment_in_another_currency_is_refused(invoices):
    with pytest.raises(Invalid) as refused:
        _pay(invoices, Money.of("1200.00", "USD"), Allocation("F2026-00001"))
    assert refused.value.code == "currency_mismatch"
    assert _status(invoices, "F2026-00001")[0] == "issued"


def test_a_draft_cannot_be_paid_since_it_has_no_number(world):
    with unit_of_work(world) as session:
        draft(session)
    with pytest.raises(NotFound):
        _pay(world, eur("1200.00"), Allocation("F2026-00001"))


def test_a_credit_note_cannot_be_paid(invoices):
    with unit_of_work(invoices) as session:
        note = credit(session, 1, actor="finance", reason="remise", lines=[line("10.00")],
                      issue_date=date(2026, 11, 3))
        assert note.number == "F2026-00004"
    with pytest.raises(Invalid) as refused:
        _pay(invoices, eur("12.00"), Allocation("F2026-00004"))
    assert refused.value.code == "not_an_invoice"


def test_a_paid_invoice_cannot_be_paid_again(invoices):
    _pay(invoices, eur("120.00"), Allocation("F2026-00003"))
    with pytest.raises(Conflict) as refused:
        _pay(invoices, eur("120.00"), Allocation("F2026-00003"))
    assert refused.value.code == "invoice_not_open"


@pytest.mark.parametrize("amount", ["0", "-5.00"])
def test_a_payment_must_be_positive(invoices, amount):
    with pytest.raises(Invalid) as refused:
        _pay(invoices, eur(amount), Allocation("F2026-00001"))
    assert refused.value.code == "invalid_payment_amount"


def test_a_partially_credited_invoice_is_paid_by_the_rest(invoices):
    with unit_of_work(invoices) as session:
        credit(session, 1, actor="finance", reason="remise", lines=[line("100.00")], issue_date=date(2026, 11, 3))
    assert _status(invoices, "F2026-00001") == ("issued", eur("1080.00"))
    _pay(invoices, eur("1080.00"), Allocation("F2026-00001"))
    assert _status(invoices, "F2026-00001") == ("paid", eur("0.00"))


def test_client_balances_are_kept_per_currency(invoices):
    with unit_of_work(invoices) as session:
        fx.set_rate(session, "USD", date(2026, 11, 2), "1.0842", actor="finance")  # the VAT is stated in euros too
        issued(session, line("100.00"), currency="USD")  # F2026-00004, 120.00 USD
    _pay(invoices, Money.of("50.00", "USD"), Allocation("F2026-00004"))
    _pay(invoices, eur("1200.00"), Allocation("F2026-00001"))
    assert _balance(invoices, "EUR").balance == eur("720.00")
    assert _balance(invoices, "USD").balance == Money.of("70.00", "USD")


def test_recording_a_payment_leaves_an_audit_record_with_its_allocations(invoices):
    payment_id = _pay(invoices, eur("1300.00"), Allocation("F2026-00001"))
    with unit_of_work(invoices) as session:
        record = session.execute(select(AuditRecord).where(AuditRecord.action == "payment.recorded")).scalar_one()
        assert record.subject_id == str(payment_id)
        assert record.details["allocations"]["F2026-00001"] == {"amount": "1200.00", "currency": "EUR"}
        assert record.details["unallocated"] == {"amount": "100.00", "currency": "EUR"}


def test_a_paid_invoice_later_credited_leaves_the_client_in_credit(invoices):
    _pay(invoices, eur("1200.00"), Allocation("F2026-00001"))
    with unit_of_work(invoices) as session:
        credit(session, 1, actor="finance", reason="remise", lines=[line("100.00")], issue_date=date(2026, 11, 3))
    assert _status(invoices, "F2026-00001") == ("paid", eur("-120.00"))
    # still owed: 600.00 + 120.00; owed back to the client: 120.00
    assert _balance(invoices).balance == eur("600.00")


def test_money_paid_on_a_fully_credited_invoice_stays_on_the_client_balance(invoices):
    _pay(invoices, eur("500.00"), Allocation("F2026-00001"))
    with unit_of_work(invoices) as session:
        credit(session, 1, actor="finance", reason="annulation", issue_date=date(2026, 11, 3))
    assert _status(invoices, "F2026-00001") == ("credited", eur("-500.00"))
    assert _balance(invoices).balance == eur("220.00")
