"""Notifications derived from the core's outcomes, in the caller's transaction."""

from __future__ import annotations

import pytest

from jalon.connector.notify import on_outcomes
from jalon.core import catalog
from jalon.core.invoicing import issue
from jalon.core.rules import apply_event
from tests import factories

from .conftest import CHAT, EMAIL, add_channel, complete_milestone, outbox


@pytest.fixture
def channels(world, uow, public_dns):  # type: ignore[no-untyped-def]
    add_channel(uow, **EMAIL)
    add_channel(uow, **CHAT, events=["milestone.done"])
    add_channel(uow, key="cancellations", kind="email", target={"to": ["ops@atelier.example"]},
                events=["invoice.draft_cancelled"])
    add_channel(uow, key="off", kind="email", target={"to": ["nobody@atelier.example"]}, enabled=False)


def test_a_done_milestone_notifies_each_subscribed_channel_and_comments_on_the_task(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    assert complete_milestone(uow, settings) == 3
    messages = outbox(uow)
    assert sorted((m.channel, m.destination.get("channel")) for m in messages) == [
        ("chat", "chat"), ("email", "finance"), ("jira", None)]
    finance = next(m for m in messages if m.channel == "email")
    invoice_id = finance.payload["data"]["invoice"]["id"]
    assert finance.idempotency_key == f"milestone.done:{invoice_id}:finance"
    assert finance.kind == "milestone.done" and finance.status == "pending"
    data = finance.payload["data"]
    assert data["invoice"] == {"id": invoice_id, "number": None, "status": "draft", "currency": "EUR",
                               "total_net": "7200.00", "total_gross": "8640.00", "amount": "7200.00 EUR"}
    assert data["client"] == {"code": "lumiere", "name": "Lumière Industries SA"}
    assert data["contract"] == {"reference": "LUM-2026-01", "name": "Refonte du site"}
    assert data["project"] == "WEB"
    assert data["milestone"]["reference"] == "M1" and data["milestone"]["name"] == "Maquettes validées"
    assert data["task"] == {"ref": "WEB-1", "url": "https://jira.atelier.test/browse/WEB-1"}
    assert data["approve_url"] == f"https://jalon.atelier.example/api/v1/invoices/{invoice_id}"
    assert finance.payload["links"]["approve"] == data["approve_url"]
    assert finance.payload["subject"].startswith("Jalon terminé : Refonte du site — Maquettes validées")
    comment = next(m for m in messages if m.channel == "jira")
    assert comment.kind == "comment"
    assert comment.destination == {"integration": "jira-atelier", "task_ref": "WEB-1", "project_ref": "WEB"}
    assert "facture brouillon" in comment.payload["text"] and "7" not in comment.payload["text"]


def test_a_channel_can_ask_for_english(world, uow, settings) -> None:  # type: ignore[no-untyped-def]
    add_channel(uow, key="pm", kind="email", target={"to": ["pm@atelier.example"], "language": "en"})
    complete_milestone(uow, settings)
    [message] = outbox(uow, channel="email")
    assert message.payload["subject"] == "Milestone done: Refonte du site — Maquettes validées (€7,200.00 excl. VAT)"
    assert "Amount: €7,200.00 excl. VAT (€8,640.00 incl. VAT)" in message.payload["text"]


def test_a_replayed_cause_queues_nothing_new(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    complete_milestone(uow, settings)
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.completed("WEB-1"))  # the same event again: unchanged
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 0
    assert len(outbox(uow)) == 3


def test_the_same_outcome_notified_twice_is_queued_once(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.completed("WEB-1"))
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 3
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 0
    assert len(outbox(uow)) == 3


def test_a_rolled_back_transaction_leaves_no_message(channels, uow, settings, runtime) -> None:  # type: ignore[no-untyped-def]
    session = runtime.sessionmaker()
    try:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.completed("WEB-1"))
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 3
        session.flush()
        session.rollback()
    finally:
        session.close()
    assert outbox(uow) == []


def test_a_reopened_task_tells_the_channels_that_want_cancellations(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    complete_milestone(uow, settings)
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.reopened("WEB-1"))
        assert outcome.effect == "draft_cancelled"
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 2
    cancelled = outbox(uow, kind="invoice.draft_cancelled")
    assert sorted(m.destination["channel"] for m in cancelled) == ["cancellations", "finance"]
    assert "Brouillon annulé" in cancelled[0].payload["subject"]


def test_a_task_reopened_after_issue_alerts_finance(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    complete_milestone(uow, settings)
    [done] = outbox(uow, channel="email")
    with uow() as session:
        issue(session, done.payload["data"]["invoice"]["id"], actor="finance")
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.reopened("WEB-1"))
        assert outcome.effect == "reopened_after_issue"
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 1
    [alert] = outbox(uow, kind="milestone.reopened_after_issue")
    assert alert.destination == {"channel": "finance"}
    number = alert.payload["data"]["invoice"]["number"]
    assert number and number in alert.payload["text"] and "avoir" in alert.payload["text"]


def test_outcomes_that_concern_nobody_queue_nothing(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcomes = [apply_event(session, factories.completed("WEB-99")), apply_event(session, factories.logged())]
        assert on_outcomes(session, outcomes, integration=integration, settings=settings) == 0


def test_a_deleted_milestone_task_alerts_finance(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    from jalon.core.events import TaskDeleted

    complete_milestone(uow, settings)
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, TaskDeleted(integration="jira-atelier", project_ref="WEB", task_ref="WEB-1",
                                                   occurred_at=factories.at(30), actor="alice"))
        assert outcome.effect == "task_deleted"
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) >= 1
    [alert] = outbox(uow, kind="milestone.task_deleted", channel="email")
    assert "supprimée" in alert.payload["text"]
