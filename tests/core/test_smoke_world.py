from jalon.core.db import unit_of_work
from jalon.core.invoicing import issue
from jalon.core.rules import apply_event

from tests.factories import completed, seed


def test_a_completed_milestone_becomes_an_issuable_draft(Session):
    with unit_of_work(Session) as session:
        seed(session)
    with unit_of_work(Session) as session:
        outcome = apply_event(session, completed())
    assert outcome.effect == "milestone_done"
    with unit_of_work(Session) as session:
        invoice = issue(session, outcome.invoice_id, actor="finance")
        assert invoice.number.startswith("F2")
        assert str(invoice.total_gross) in ("8640.00", "8640.000000")
