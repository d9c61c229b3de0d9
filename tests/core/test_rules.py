"""What a PM tool's task events mean for billing: a completed milestone task
drafts its invoice once, whatever the replays, reopenings and delays."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from jalon.core.db import unit_of_work
from jalon.core.events import TaskCompleted
from jalon.core.invoicing import issue
from jalon.core.models import AuditRecord, Invoice, Milestone, TaskState
from jalon.core.rules import apply_event

from tests.factories import CONTRACT, ENTITY, MAPPING, at, completed, issued, reopened, seed

D = Decimal


def _apply(Session, *events):  # noqa: N803
    """Apply each event in its own transaction, as the worker does."""
    outcomes = []
    for event in events:
        with unit_of_work(Session) as session:
            outcomes.append(apply_event(session, event))
    return outcomes


def _invoices(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        rows = session.execute(
            select(Milestone.reference, Invoice.status).join(Milestone, Invoice.milestone_id == Milestone.id)
            .order_by(Invoice.id)
        ).all()
        return [tuple(row) for row in rows]


def _milestones(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        rows = session.execute(select(Milestone.reference, Milestone.status, Milestone.task_ref)
                               .order_by(Milestone.position)).all()
        return {reference: (status, task) for reference, status, task in rows}


def _actions(Session, subject_type=None):  # noqa: N803
    with unit_of_work(Session) as session:
        query = select(AuditRecord.action).order_by(AuditRecord.id)
        if subject_type:
            query = query.where(AuditRecord.subject_type == subject_type)
        return list(session.execute(query).scalars())


def test_a_completed_milestone_task_creates_one_draft_at_the_milestone_price(world):
    [outcome] = _apply(world, completed("WEB-1"))
    assert outcome.effect == "milestone_done"
    with unit_of_work(world) as session:
        invoice = session.get(Invoice, outcome.invoice_id)
        assert (invoice.status, invoice.number) == ("draft", None)
        # M1 is 30 % of 24 000.00, at 20 % VAT
        assert (invoice.total_net, invoice.total_gross) == (D("7200.00"), D("8640.00"))
        assert invoice.lines[0].description == ("Refonte du site — Maquettes validées\n"
                                                "Jalon 1/3 — 30\u00a0% de 24\u202f000,00\u00a0€")
        assert invoice.service_date == date(2026, 11, 2)
    assert _milestones(world)["M1"] == ("done", "WEB-1")


def _description(Session, invoice_id):  # noqa: N803
    with unit_of_work(Session) as session:
        return session.get(Invoice, invoice_id).lines[0].description


def test_a_milestone_line_says_its_place_and_share_in_the_clients_language(world):
    with unit_of_work(world) as session:
        session.execute(select(Milestone)).scalars().first().contract.client.language = "en"
    [outcome] = _apply(world, completed("WEB-1"))
    assert _description(world, outcome.invoice_id) == ("Refonte du site — Maquettes validées\n"
                                                       "Milestone 1 of 3 — 30% of €24,000.00")


def test_a_milestone_of_a_fixed_amount_says_only_its_place(world):
    [outcome] = _apply(world, completed("WEB-9", task_type="Release"))
    assert _description(world, outcome.invoice_id) == "Refonte du site — Mise en production\nJalon 3/3"


def test_a_replayed_task_completed_makes_no_second_draft(world):
    first, replay = _apply(world, completed("WEB-1"), completed("WEB-1"))
    assert (first.effect, replay.effect) == ("milestone_done", "unchanged")
    assert _invoices(world) == [("M1", "draft")]


def test_a_replay_after_the_invoice_is_issued_makes_no_new_draft(world):
    [outcome] = _apply(world, completed("WEB-1"))
    with unit_of_work(world) as session:
        issue(session, outcome.invoice_id, actor="finance", issue_date=date(2026, 11, 2))
    _apply(world, completed("WEB-1"), completed("WEB-1", minute=30))
    assert _invoices(world) == [("M1", "issued")]


def test_a_label_selects_the_milestone_with_that_label(world):
    [outcome] = _apply(world, completed("WEB-7", labels=("front", "jalon")))
    assert outcome.effect == "milestone_done"
    assert _milestones(world)["M2"] == ("done", "WEB-7")


def test_a_task_type_selects_the_milestone_of_that_type(world):
    _apply(world, completed("WEB-9", task_type="Release"))
    assert _milestones(world)["M3"] == ("done", "WEB-9")
    assert _invoices(world) == [("M3", "draft")]


def test_an_exact_task_id_wins_over_a_label(world):
    _apply(world, completed("WEB-1", labels=("jalon",)))
    assert _milestones(world)["M1"] == ("done", "WEB-1")
    assert _milestones(world)["M2"] == ("pending", None)


@pytest.fixture
def lots(Session):  # type: ignore[no-untyped-def]  # noqa: N803
    """A contract whose three milestones share one label: tasks take them in order."""
    contract = {**CONTRACT, "milestones": [
        {"reference": f"L{n}", "name": f"Lot {n}", "amount": "1000.00", "match": {"label": "lot"}} for n in (1, 2, 3)
    ]}
    with unit_of_work(Session) as session:
        seed(session, contracts=[contract])
    return Session


def test_tasks_sharing_a_label_take_the_next_pending_milestone_in_order(lots):
    _apply(lots, completed("WEB-20", labels=("lot",)), completed("WEB-21", labels=("lot",), minute=1))
    assert _milestones(lots) == {"L1": ("done", "WEB-20"), "L2": ("done", "WEB-21"), "L3": ("pending", None)}


def test_a_task_once_bound_stays_bound_to_its_milestone(lots):
    _apply(lots, completed("WEB-20", labels=("lot",)), reopened("WEB-20", minute=1))
    assert _milestones(lots)["L1"] == ("pending", "WEB-20")
    # another task with the label does not take the reopened task's milestone
    _apply(lots, completed("WEB-21", labels=("lot",), minute=2), completed("WEB-20", labels=("lot",), minute=3))
    assert _milestones(lots) == {"L1": ("done", "WEB-20"), "L2": ("done", "WEB-21"), "L3": ("pending", None)}


def test_when_every_milestone_of_a_label_is_taken_a_further_task_is_ignored(world):
    _, outcome = _apply(world, completed("WEB-7", labels=("jalon",)), completed("WEB-8", labels=("jalon",), minute=1))
    assert outcome.effect == "ignored"
    assert _invoices(world) == [("M2", "draft")]


def test_reopening_before_issue_cancels_the_draft_and_sets_the_milestone_pending(world):
    _, outcome = _apply(world, completed("WEB-1"), reopened("WEB-1", minute=1))
    assert outcome.effect == "draft_cancelled"
    assert _invoices(world) == [("M1", "cancelled")]
    assert _milestones(world)["M1"] == ("pending", "WEB-1")


def test_completing_again_after_a_reopen_drafts_again_with_one_live_draft(world):
    _apply(world, completed("WEB-1"), reopened("WEB-1", minute=1), completed("WEB-1", minute=2))
    assert _invoices(world) == [("M1", "cancelled"), ("M1", "draft")]
    assert _milestones(world)["M1"] == ("done", "WEB-1")


def test_reopening_after_issue_leaves_the_invoice_issued_and_is_recorded(world):
    [done] = _apply(world, completed("WEB-1"))
    with unit_of_work(world) as session:
        issue(session, done.invoice_id, actor="finance", issue_date=date(2026, 11, 2))
    [outcome] = _apply(world, reopened("WEB-1", minute=5))
    assert outcome.effect == "reopened_after_issue"
    assert _invoices(world) == [("M1", "issued")]
    assert _milestones(world)["M1"] == ("invoiced", "WEB-1")
    assert _actions(world, "milestones")[-1] == "milestone.reopened_after_issue"


def test_a_reopen_older_than_the_completion_changes_nothing(world):
    _, late = _apply(world, completed("WEB-1", minute=5), reopened("WEB-1", minute=1))
    assert late.effect == "ignored"
    assert _invoices(world) == [("M1", "draft")]
    assert _milestones(world)["M1"] == ("done", "WEB-1")


def test_a_completion_older_than_the_reopen_drafts_nothing(world):
    # delivered out of order: the reopen (10:05) arrives before the completion (10:00)
    _apply(world, reopened("WEB-1", minute=5))
    [late] = _apply(world, completed("WEB-1", minute=0))
    assert late.effect == "ignored"
    assert _invoices(world) == []
    with unit_of_work(world) as session:
        state = session.execute(select(TaskState).where(TaskState.task_ref == "WEB-1")).scalar_one()
        assert (state.done, state.last_event_at) == (False, at(5))


def test_a_late_duplicate_of_the_completion_after_a_reopen_drafts_nothing(world):
    _apply(world, completed("WEB-1", minute=0), reopened("WEB-1", minute=1), completed("WEB-1", minute=0))
    assert _invoices(world) == [("M1", "cancelled")]
    assert _milestones(world)["M1"] == ("pending", "WEB-1")


def test_an_event_of_an_unmapped_project_is_ignored(world):
    event = TaskCompleted(integration="jira-atelier", project_ref="OPS", task_ref="WEB-1", occurred_at=at(),
                          status="Done")
    [outcome] = _apply(world, event)
    assert outcome.effect == "ignored"
    assert _invoices(world) == []


def _nested(task: str, project: str, parents: tuple[str, ...]) -> TaskCompleted:
    return TaskCompleted(integration="jira-atelier", project_ref=project, project_parents=parents, task_ref=task,
                         occurred_at=at(), status="Done")


def test_a_task_of_a_nested_project_is_billed_under_its_first_mapped_parent(world):
    """ClickUp's list, folder, space: the mapping of the most specific that has one applies."""
    event = _nested("WEB-1", "list:901", ("folder:55", "WEB"))
    [outcome] = _apply(world, event)
    assert outcome.effect == "milestone_done"
    unmapped = _nested("WEB-2", "list:902", ("folder:56", "space:9"))
    [outcome] = _apply(world, unmapped)
    assert outcome.effect == "ignored" and "'list:902'" in outcome.detail


def test_an_event_of_an_unknown_integration_is_ignored(world):
    event = TaskCompleted(integration="clickup-x", project_ref="WEB", task_ref="WEB-1", occurred_at=at(),
                          status="Done")
    [outcome] = _apply(world, event)
    assert outcome.effect == "ignored"
    assert _invoices(world) == []


def test_a_task_that_is_no_milestone_is_ignored(world):
    [outcome] = _apply(world, completed("WEB-42", labels=("bug",), task_type="Story"))
    assert outcome.effect == "ignored"
    assert _invoices(world) == []
    assert _milestones(world) == {"M1": ("pending", None), "M2": ("pending", None), "M3": ("pending", None)}


@pytest.fixture
def strict(Session):  # type: ignore[no-untyped-def]  # noqa: N803
    """The mapping says only "Livré" and "Done" mean done."""
    with unit_of_work(Session) as session:
        seed(session, mappings=[{**MAPPING, "done_statuses": ["Livré", "Done"]}])
    return Session


def test_a_status_outside_the_mapping_done_statuses_is_ignored(strict):
    [outcome] = _apply(strict, completed("WEB-1", status="Resolved"))
    assert outcome.effect == "ignored"
    assert _invoices(strict) == []


@pytest.mark.parametrize("status", ["Livré", "LIVRÉ", "done"])
def test_the_mapping_done_statuses_match_whatever_the_case(strict, status):
    [outcome] = _apply(strict, completed("WEB-1", status=status))
    assert outcome.effect == "milestone_done"
    assert _invoices(strict) == [("M1", "draft")]


def test_each_milestone_change_leaves_an_audit_record_naming_the_actor(world):
    _apply(world, completed("WEB-1"), reopened("WEB-1", minute=1), completed("WEB-1", minute=2))
    with unit_of_work(world) as session:
        records = session.execute(
            select(AuditRecord).where(AuditRecord.subject_type.in_(("milestones", "invoices")),
                                      AuditRecord.actor != "test")  # not the seeding
            .order_by(AuditRecord.id)
        ).scalars().all()
        assert [r.action for r in records] == [
            "milestone.done", "invoice.drafted", "invoice.cancelled", "milestone.reopened",
            "milestone.done", "invoice.drafted",
        ]
        assert {r.actor for r in records} == {"jira-atelier:alice"}
        assert all(r.reason for r in records)


def _deleted(task: str, minute: int = 9):  # type: ignore[no-untyped-def]
    from jalon.core.events import TaskDeleted

    return TaskDeleted(integration="jira-atelier", project_ref="WEB", task_ref=task, occurred_at=at(minute),
                       actor="alice")


def test_deleting_a_milestone_task_keeps_every_billing_record_and_is_recorded(world):
    [done] = _apply(world, completed("WEB-1"))
    with unit_of_work(world) as session:
        issue(session, done.invoice_id, actor="finance", issue_date=date(2026, 11, 2))
    [outcome] = _apply(world, _deleted("WEB-1"))
    assert (outcome.effect, outcome.invoice_id) == ("task_deleted", done.invoice_id)
    assert _invoices(world) == [("M1", "issued")]
    assert _milestones(world)["M1"] == ("invoiced", "WEB-1")
    assert _actions(world, "milestones")[-1] == "milestone.task_deleted"


def test_deleting_a_task_that_completed_no_milestone_is_ignored(world):
    [outcome] = _apply(world, _deleted("WEB-42"))
    assert outcome.effect == "ignored"


# --- the entity's auto-issue policy ---------------------------------------------------

@pytest.fixture
def policy(Session):  # type: ignore[no-untyped-def]  # noqa: N803
    """The world, with milestone drafts under 10 000.00 incl. VAT issued at once."""
    with unit_of_work(Session) as session:
        seed(session, entities=[{**ENTITY, "auto_issue_below": "10000.00"}])
    return Session


def _audit(Session, action):  # noqa: N803
    with unit_of_work(Session) as session:
        return session.execute(select(AuditRecord).where(AuditRecord.action == action)).scalars().all()


def test_a_draft_below_the_auto_issue_threshold_is_issued_at_once_by_the_policy(policy):
    [outcome] = _apply(policy, completed("WEB-1"))  # M1: 8 640.00 incl. VAT
    with unit_of_work(policy) as session:
        invoice = session.get(Invoice, outcome.invoice_id)
        assert invoice.status == "issued" and invoice.number.endswith("-00001")
        assert invoice.issued_by == "policy:auto_issue"
    assert outcome.effect == "milestone_done" and outcome.extra == {"auto_issued": True, "number": invoice.number}
    assert f"invoice {invoice.number} issued at once" in outcome.detail
    assert _milestones(policy)["M1"] == ("invoiced", "WEB-1")
    [issued] = _audit(policy, "invoice.issued")
    assert issued.actor == "policy:auto_issue"
    assert issued.reason == ("auto-issue policy: total incl. VAT 8640.00 EUR is below the entity's "
                             "threshold 10000.00 EUR")


def test_a_draft_at_or_above_the_threshold_stays_a_draft_for_approval(policy):
    # M2 is 50 % of 24 000.00: 14 400.00 incl. VAT
    [outcome] = _apply(policy, completed("WEB-2", labels=("jalon",)))
    with unit_of_work(policy) as session:
        assert session.get(Invoice, outcome.invoice_id).status == "draft"
    assert outcome.extra == {} and _audit(policy, "invoice.issued") == []


def test_the_threshold_is_strict(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        seed(session, entities=[{**ENTITY, "auto_issue_below": "8640.00"}])
    [outcome] = _apply(Session, completed("WEB-1"))
    with unit_of_work(Session) as session:
        assert session.get(Invoice, outcome.invoice_id).status == "draft"


def test_without_a_threshold_every_draft_waits_for_approval(world):
    [outcome] = _apply(world, completed("WEB-1"))
    with unit_of_work(world) as session:
        assert session.get(Invoice, outcome.invoice_id).status == "draft"


def test_a_draft_in_another_currency_than_the_entitys_is_not_auto_issued(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        seed(session, entities=[{**ENTITY, "auto_issue_below": "10000.00"}],
             contracts=[{**CONTRACT, "currency": "USD"}])
    [outcome] = _apply(Session, completed("WEB-1"))
    with unit_of_work(Session) as session:
        invoice = session.get(Invoice, outcome.invoice_id)
        assert (invoice.currency, invoice.status) == ("USD", "draft")


def test_a_draft_the_core_cannot_issue_now_stays_a_draft_and_the_milestone_is_recorded(policy):
    from jalon.core.invoicing import business_today

    with unit_of_work(policy) as session:  # an invoice dated in the future: today's would break the chronology
        issued(session, on=business_today() + timedelta(days=3))
    [outcome] = _apply(policy, completed("WEB-1"))
    assert outcome.effect == "milestone_done" and outcome.extra == {}
    with unit_of_work(policy) as session:
        assert session.get(Invoice, outcome.invoice_id).status == "draft"
    assert _milestones(policy)["M1"] == ("done", "WEB-1")
    [refused] = _audit(policy, "invoice.auto_issue_refused")
    assert refused.actor == "policy:auto_issue" and refused.reason.startswith("issue_date_out_of_order: ")


def test_reopening_an_auto_issued_milestone_leaves_its_invoice_issued(policy):
    [done, reopen] = _apply(policy, completed("WEB-1"), reopened("WEB-1"))
    assert reopen.effect == "reopened_after_issue"
    assert _invoices(policy) == [("M1", "issued")]


def test_an_events_parents_survive_its_json_codec():
    from jalon.core.events import event_from_json, event_to_json

    event = _nested("WEB-1", "list:901", ("folder:55", "space:9"))
    assert event_from_json(event_to_json(event)) == event


def test_a_task_type_matches_whatever_its_case(world):
    [outcome] = _apply(world, completed(task="WEB-9", task_type="release"))  # the milestone says "Release"
    assert outcome.effect == "milestone_done"
    assert _milestones(world)["M3"] == ("done", "WEB-9")


def test_a_done_status_matches_whatever_its_accents_composition_and_case(world):
    from jalon.core import catalog

    with unit_of_work(world) as session:
        catalog.upsert_mapping(session, {**MAPPING, "done_statuses": ["Livre\u0301"]}, actor="admin")  # combining
    [outcome] = _apply(world, completed(status="LIVRÉ"))
    assert outcome.effect == "milestone_done"


def test_the_deletion_of_a_task_the_tool_no_longer_locates_reaches_its_milestone(world):
    from jalon.core.events import TaskDeleted

    _apply(world, completed())
    gone = TaskDeleted(integration="jira-atelier", project_ref="", task_ref="WEB-1", occurred_at=at(5))
    [outcome] = _apply(world, gone)
    assert outcome.effect == "task_deleted" and outcome.milestone_id is not None
    stranger = TaskDeleted(integration="jira-atelier", project_ref="", task_ref="WEB-404", occurred_at=at(5))
    [outcome] = _apply(world, stranger)
    assert outcome.effect == "ignored" and "completed no milestone" in outcome.detail
