"""An issued invoice is corrected by a credit note, never edited."""

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from jalon.core.balances import open_balance
from jalon.core.db import unit_of_work
from jalon.core.errors import Conflict, Invalid
from jalon.core.invoicing import credit, issue
from jalon.core.models import Invoice, Milestone
from jalon.core.rules import apply_event

from tests.factories import completed, draft, issued, line

D = Decimal


@pytest.fixture
def invoice_id(world):  # type: ignore[no-untyped-def]
    """An issued invoice of 1 000.00 net, 1 200.00 gross."""
    with unit_of_work(world) as session:
        return issued(session, on=date(2026, 11, 2)).id


def test_a_full_credit_note_mirrors_the_invoice_and_takes_the_next_number(world, invoice_id):
    with unit_of_work(world) as session:
        note = credit(session, invoice_id, actor="finance", reason="prestation annulée", issue_date=date(2026, 11, 5))
        assert note.kind == "credit_note"
        assert note.number == "F2026-00002"
        assert note.corrects_invoice_id == invoice_id
        assert (note.total_net, note.total_vat, note.total_gross) == (D("1000.00"), D("200.00"), D("1200.00"))
        assert note.note == "prestation annulée"


def test_a_fully_credited_invoice_is_credited_and_owes_nothing(world, invoice_id):
    with unit_of_work(world) as session:
        credit(session, invoice_id, actor="finance", reason="prestation annulée", issue_date=date(2026, 11, 5))
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice.status == "credited"
        assert open_balance(session, invoice).amount == 0


def test_a_partial_credit_note_reduces_the_open_balance(world, invoice_id):
    with unit_of_work(world) as session:
        note = credit(session, invoice_id, actor="finance", reason="remise commerciale",
                      lines=[line("100.00")], issue_date=date(2026, 11, 5))
        assert note.total_gross == D("120.00")
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, invoice_id)
        assert invoice.status == "issued"
        assert open_balance(session, invoice).amount == D("1080.00")


def test_credit_notes_cannot_exceed_the_invoice(world, invoice_id):
    with unit_of_work(world) as session:
        credit(session, invoice_id, actor="finance", reason="remise", lines=[line("600.00")],
               issue_date=date(2026, 11, 5))
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        credit(session, invoice_id, actor="finance", reason="remise", lines=[line("400.01")],
               issue_date=date(2026, 11, 5))
    assert refused.value.code == "credit_exceeds_invoice"


def test_the_rest_of_an_invoice_can_be_credited_exactly(world, invoice_id):
    with unit_of_work(world) as session:
        credit(session, invoice_id, actor="finance", reason="remise", lines=[line("600.00")],
               issue_date=date(2026, 11, 5))
        credit(session, invoice_id, actor="finance", reason="solde", lines=[line("400.00")],
               issue_date=date(2026, 11, 5))
        assert session.get(Invoice, invoice_id).status == "credited"


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_credit_note_needs_a_reason(world, invoice_id, reason):
    with pytest.raises(Invalid) as refused, unit_of_work(world) as session:
        credit(session, invoice_id, actor="finance", reason=reason)
    assert refused.value.code == "reason_required"


def test_a_draft_cannot_be_credited(world):
    with unit_of_work(world) as session:
        draft_id = draft(session).id
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        credit(session, draft_id, actor="finance", reason="erreur")
    assert refused.value.code == "invoice_not_creditable"


def test_credit_notes_and_invoices_share_one_sequence(world, invoice_id):
    with unit_of_work(world) as session:
        note = credit(session, invoice_id, actor="finance", reason="erreur", lines=[line("10.00")],
                      issue_date=date(2026, 11, 5))
        following = issued(session, on=date(2026, 11, 6))
    assert [note.number, following.number] == ["F2026-00002", "F2026-00003"]


def test_a_credit_note_dated_before_the_last_issue_is_refused(world, invoice_id):
    with unit_of_work(world) as session:
        issued(session, on=date(2026, 11, 10))
    with pytest.raises(Conflict) as refused, unit_of_work(world) as session:
        credit(session, invoice_id, actor="finance", reason="erreur", issue_date=date(2026, 11, 9))
    assert refused.value.code == "issue_date_out_of_order"


def test_a_fully_credited_milestone_invoice_sends_the_milestone_back_to_done(world):
    with unit_of_work(world) as session:
        outcome = apply_event(session, completed("WEB-1"))
        issue(session, outcome.invoice_id, actor="finance", issue_date=date(2026, 11, 2))
        assert session.get(Milestone, outcome.milestone_id).status == "invoiced"
    with unit_of_work(world) as session:
        credit(session, outcome.invoice_id, actor="finance", reason="mauvais montant", issue_date=date(2026, 11, 3))
    with unit_of_work(world) as session:
        milestone = session.get(Milestone, outcome.milestone_id)
        assert milestone.status == "done"
        assert session.get(Invoice, outcome.invoice_id).status == "credited"
        # the credited invoice no longer counts as the milestone's live invoice
        live = session.execute(select(Invoice).where(
            Invoice.milestone_id == milestone.id, Invoice.status.not_in(("cancelled", "credited")))).all()
        assert live == []
