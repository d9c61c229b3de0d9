"""Notifications derived from the core's outcomes, in the caller's transaction."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from jalon.connector.outbox.notify import on_outcomes
from jalon.core import catalog
from jalon.core.invoicing import issue
from jalon.core.rules import apply_event
from tests import factories

from .conftest import CHAT, EMAIL, add_channel, approval_links, auto_issue_below, complete_milestone, outbox


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
    assert re.fullmatch(r"https://jalon\.atelier\.example/approve/[A-Za-z0-9_-]{43}", data["approve_url"])
    assert finance.payload["links"]["approve"] == data["approve_url"]
    # one link for every channel, made in the same transaction
    chat = next(m for m in messages if m.channel == "chat")
    assert chat.payload["links"]["approve"] == data["approve_url"]
    assert [link.invoice_id for link in approval_links(uow)] == [invoice_id]
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
    assert len(approval_links(uow)) == 1


def test_the_same_outcome_notified_twice_is_queued_once(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.completed("WEB-1"))
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 3
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 0
    assert len(outbox(uow)) == 3
    assert len(approval_links(uow)) == 1


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


def _token(url: str) -> str:
    return url.rsplit("/approve/", 1)[1]


def test_the_approve_link_stores_only_the_digest_of_its_token_and_expires_after_the_setting(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, **EMAIL)
    complete_milestone(uow, replace(settings, approval_link_hours=48))
    [message] = outbox(uow, channel="email")
    token = _token(message.payload["data"]["approve_url"])
    assert len(token) == 43  # 256 random bits, URL-safe base64
    [link] = approval_links(uow)
    assert link.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(vars(link))
    assert link.expires_at - link.created_at == timedelta(hours=48)
    assert (link.used_at, link.used_by) == (None, None)
    assert link.invoice_id == message.invoice_id == message.payload["data"]["invoice"]["id"]


def test_no_subscribed_channel_means_no_approve_link(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, key="ops", kind="email", target={"to": ["ops@atelier.example"]},
                events=["invoice.draft_cancelled"])
    complete_milestone(uow, settings)
    assert approval_links(uow) == []


def test_an_auto_issued_milestone_invoice_is_announced_as_issued_without_an_approve_link(  # type: ignore[no-untyped-def]
        channels, uow, settings):
    auto_issue_below(uow, "10000.00")  # M1's draft is 8 640.00 incl. VAT
    complete_milestone(uow, settings)
    finance = next(m for m in outbox(uow) if m.channel == "email" and m.destination == {"channel": "finance"})
    data = finance.payload["data"]
    assert data["invoice"]["status"] == "issued" and re.fullmatch(r"F\d{4}-00001", data["invoice"]["number"])
    assert data["approve_url"] is None and finance.payload["links"]["approve"] is None
    assert finance.payload["subject"].startswith("Jalon facturé : Refonte du site — Maquettes validées")
    assert f"la facture {data['invoice']['number']} de 7\u202f200,00\u00a0€ HT a été émise aussitôt" \
        in finance.payload["text"]
    assert "Approuver" not in finance.payload["text"]
    assert approval_links(uow) == []
    [comment] = outbox(uow, channel="jira")
    assert comment.payload["text"].endswith(f"la facture {data['invoice']['number']} du jalon « Maquettes validées » "
                                            "(M1) est émise.")


def test_an_auto_issued_invoice_is_announced_in_english_to_an_english_channel(world, uow, settings):  # type: ignore[no-untyped-def]
    auto_issue_below(uow, "10000.00")
    add_channel(uow, key="pm", kind="email", target={"to": ["pm@atelier.example"], "language": "en"})
    complete_milestone(uow, settings)
    [message] = outbox(uow, channel="email")
    number = message.payload["data"]["invoice"]["number"]
    assert message.payload["subject"] == "Milestone invoiced: Refonte du site — Maquettes validées (€7,200.00 excl. VAT)"
    assert f"invoice {number} of €7,200.00 excl. VAT was issued at once" in message.payload["text"]


def test_a_draft_at_or_above_the_threshold_waits_for_approval(channels, uow, settings):  # type: ignore[no-untyped-def]
    auto_issue_below(uow, "8640.00")  # the draft's total incl. VAT: not strictly below
    complete_milestone(uow, settings)
    finance = next(m for m in outbox(uow) if m.destination == {"channel": "finance"})
    assert finance.payload["data"]["invoice"]["status"] == "draft"
    assert finance.payload["data"]["approve_url"].startswith("https://jalon.atelier.example/approve/")
    assert len(approval_links(uow)) == 1


@pytest.mark.parametrize("raw", ["0", "-5", "a week"])
def test_an_approval_link_validity_below_an_hour_or_unreadable_is_refused(raw):  # type: ignore[no-untyped-def]
    from jalon.connector.settings import Settings
    from jalon.core.errors import Invalid

    with pytest.raises(Invalid) as refused:
        Settings.from_env({"JALON_APPROVAL_LINK_HOURS": raw})
    assert refused.value.code == "invalid_setting"


def test_the_approval_link_validity_is_read_from_the_environment():  # type: ignore[no-untyped-def]
    from jalon.connector.settings import Settings

    assert Settings.from_env({}).approval_link_hours == 168
    assert Settings.from_env({"JALON_APPROVAL_LINK_HOURS": "24"}).approval_link_hours == 24
