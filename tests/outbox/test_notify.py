"""Notifications derived from the core's outcomes, in the caller's transaction."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from jalon.connector.outbox.notify import (
    COMMENT_UNTOLD,
    LABELS,
    comment_targets,
    finance_channel_warning,
    on_invoice_issued,
    on_invoice_paid,
    on_outcomes,
    target_key,
    with_approval_link,
)
from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.manager import get_plugin_manager
from jalon.connector.plugin.types import SourceSpec
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
    # where the approval link goes, without a token: the dispatcher makes the link as it sends
    assert data["approve_url"] == "https://jalon.atelier.example/approve/…"
    assert finance.payload["links"]["approve"] == data["approve_url"]
    assert "Approuver : https://jalon.atelier.example/approve/…\n" in finance.payload["text"]
    chat = next(m for m in messages if m.channel == "chat")
    assert finance.payload["approval"] == chat.payload["approval"] == {"invoice_id": invoice_id}
    assert approval_links(uow) == []
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
    assert approval_links(uow) == []


def test_the_same_outcome_notified_twice_is_queued_once(channels, uow, settings) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.completed("WEB-1"))
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 3
        assert on_outcomes(session, [outcome], integration=integration, settings=settings) == 0
    assert len(outbox(uow)) == 3
    assert approval_links(uow) == []


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


def _as_sent(uow, message, settings, now=None):  # type: ignore[no-untyped-def]
    """What the dispatcher does as it claims the message: the payload sent, and the token in it."""
    with uow() as session:
        return with_approval_link(session, message.payload, settings, now=now)


def test_the_outbox_holds_no_approval_token_the_message_sent_does(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, **EMAIL)
    complete_milestone(uow, settings)
    [message] = outbox(uow, channel="email")
    sent, token = _as_sent(uow, message, settings)
    url = f"https://jalon.atelier.example/approve/{token}"
    assert re.fullmatch(r"https://jalon\.atelier\.example/approve/[A-Za-z0-9_-]{43}", url)
    assert sent["data"]["approve_url"] == sent["links"]["approve"] == url
    assert f"Approuver : {url}\n" in sent["text"] and f'<a href="{url}">' in sent["html"]
    assert "approval" not in sent
    # the rest of the message is what was stored
    assert sent["subject"] == message.payload["subject"]
    assert sent["text"].replace(token, "…") == message.payload["text"]
    assert sent["data"]["invoice"] == message.payload["data"]["invoice"]
    assert token not in repr(outbox(uow))


def test_each_send_carries_a_link_of_its_own_for_the_same_draft(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, **EMAIL)
    complete_milestone(uow, settings)
    [message] = outbox(uow, channel="email")
    first, second = _as_sent(uow, message, settings)[1], _as_sent(uow, message, settings)[1]
    assert first != second
    assert [link.invoice_id for link in approval_links(uow)] == [message.invoice_id] * 2


def test_the_approve_link_stores_only_the_digest_of_its_token_and_expires_after_the_setting(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, **EMAIL)
    hours48 = replace(settings, approval_link_hours=48)
    complete_milestone(uow, hours48)
    [message] = outbox(uow, channel="email")
    sent, token = _as_sent(uow, message, hours48)
    assert _token(sent["data"]["approve_url"]) == token
    assert len(token) == 43  # 256 random bits, URL-safe base64
    [link] = approval_links(uow)
    assert link.digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(vars(link))
    assert link.expires_at - link.created_at == timedelta(hours=48)
    assert (link.used_at, link.used_by) == (None, None)
    assert link.invoice_id == message.invoice_id == message.payload["data"]["invoice"]["id"]


def test_a_draft_issued_before_its_message_is_sent_is_sent_without_a_link(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, **EMAIL)
    complete_milestone(uow, settings)
    [message] = outbox(uow, channel="email")
    with uow() as session:
        issue(session, message.invoice_id, actor="finance")
    sent, token = _as_sent(uow, message, settings)
    assert token is None and sent["links"]["approve"] is None and sent["data"]["approve_url"] is None
    assert "Approuver" not in sent["text"] and "/approve/" not in sent["html"]
    assert approval_links(uow) == []


def test_a_message_without_approval_is_sent_as_stored(channels, uow, settings):  # type: ignore[no-untyped-def]
    complete_milestone(uow, settings)
    with uow() as session:
        outcome = apply_event(session, factories.reopened("WEB-1"))
        on_outcomes(session, [outcome], integration=catalog.get_integration(session, "jira-atelier"),
                    settings=settings)
    [cancelled, *_] = outbox(uow, kind="invoice.draft_cancelled")
    assert _as_sent(uow, cancelled, settings) == (cancelled.payload, None)
    assert approval_links(uow) == []


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
    assert "Approuver" not in finance.payload["text"] and "approval" not in finance.payload
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
    assert finance.payload["approval"] == {"invoice_id": finance.invoice_id}


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


# --- where a write-back goes: the source plugin says (jalon_source_comment_targets) ---

# M3 completed by a released Jira version, as the Jira plugin translates one
VERSIONED = {**factories.CONTRACT, "milestones": [
    *factories.CONTRACT["milestones"][:2],
    {"reference": "M3", "name": "Mise en production", "amount": "4800.00", "match": {"task_type": "version"}}]}


class _Source:
    """A source plugin serving ``jira`` in place of the real one; ``targets``
    is what it answers to jalon_source_comment_targets (absent: not implemented)."""

    def __init__(self, **answers):  # type: ignore[no-untyped-def]
        self.asked: list[dict] = []
        if "targets" in answers:
            targets = answers["targets"]

            @hookimpl
            def jalon_source_comment_targets(source, integration, task_ref, project_ref):  # type: ignore[no-untyped-def]
                self.asked.append({"source": source, "integration": integration, "task_ref": task_ref,
                                   "project_ref": project_ref})
                return targets(task_ref) if callable(targets) else targets

            self.jalon_source_comment_targets = jalon_source_comment_targets

    @hookimpl
    def jalon_source_register(self) -> SourceSpec:
        return SourceSpec(name="jira", title="Jira, as a test says")


def _plugins(*plugins):  # type: ignore[no-untyped-def]
    return get_plugin_manager(load_entrypoints=False, extra=plugins)


def _complete(uow, settings, task="WEB-1", pm=None, **kw):  # type: ignore[no-untyped-def]
    """Complete a milestone's task and queue what it calls for; how many messages were queued."""
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.completed(task, **kw))
        assert outcome.effect == "milestone_done"
        return on_outcomes(session, [outcome], integration=integration, settings=settings, pm=pm)


def _replay(uow, settings, pm, milestone: str) -> int:  # type: ignore[no-untyped-def]
    """The milestone's outcome queued again (a worker retrying after its commit got lost)."""
    from jalon.core.events import Outcome
    from jalon.core.models import Invoice

    invoice_id = _invoice_of(uow, milestone)
    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        invoice = session.get(Invoice, invoice_id)
        outcome = Outcome(effect="milestone_done", event=factories.completed(), milestone_id=invoice.milestone_id,
                          invoice_id=invoice.id)
        return on_outcomes(session, [outcome], integration=integration, settings=settings, pm=pm)


def test_a_milestone_done_by_a_jira_version_tells_finance_and_comments_nowhere(uow, settings):  # type: ignore[no-untyped-def]
    with uow() as session:
        factories.seed(session, contracts=[VERSIONED])
    add_channel(uow, **EMAIL)
    # the runtime's sessions carry its plugins: the installed Jira plugin is asked, as in the worker
    assert _complete(uow, settings, "version:10010", task_type="version",
                     task_url="https://jira.atelier.test/projects/WEB/versions/10010") == 1
    [finance] = outbox(uow)
    assert finance.channel == "email" and finance.kind == "milestone.done"
    assert finance.payload["data"]["task"]["ref"] == "version:10010"
    # nor when its invoice is issued, then paid
    with uow() as session:
        invoice = issue(session, finance.payload["data"]["invoice"]["id"], actor="finance")
        assert on_invoice_issued(session, invoice) == 0
        invoice.status = "paid"
        assert on_invoice_paid(session, invoice) == 0
    assert outbox(uow, channel="jira") == []
    with uow() as session:  # an issue of the same Jira still gets its comment
        integration = catalog.get_integration(session, "jira-atelier")
        assert comment_targets(session, integration, "version:10010", "WEB") == []
        assert comment_targets(session, integration, "WEB-1", "WEB") == ["WEB-1"]


def test_a_plugin_naming_two_tasks_gets_one_comment_on_each_keyed_apart(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, **EMAIL)
    source = _Source(targets=lambda task: [f"{task}-front", f"{task}-back"])
    pm = _plugins(source)
    assert _complete(uow, settings, pm=pm) == 3  # finance, and two comments
    comments = outbox(uow, channel="jira")
    invoice_id = outbox(uow, channel="email")[0].payload["data"]["invoice"]["id"]
    assert [(m.idempotency_key, m.destination["task_ref"]) for m in comments] == [
        (f"comment:milestone.done:{invoice_id}@WEB-1-front", "WEB-1-front"),
        (f"comment:milestone.done:{invoice_id}@WEB-1-back", "WEB-1-back")]
    assert all(m.destination["project_ref"] == "WEB" and m.payload["task_url"] is None for m in comments)
    assert comments[0].payload["text"] == comments[1].payload["text"]
    [asked] = source.asked
    assert (asked["source"], asked["task_ref"], asked["project_ref"]) == ("jira", "WEB-1", "WEB")
    assert asked["integration"].key == "jira-atelier"
    assert asked["integration"].secrets == () and not asked["integration"].credentials
    # a replay queues nothing new; the issued invoice's comment goes to both too
    assert _replay(uow, settings, pm, "M1") == 0
    with uow() as session:
        invoice = issue(session, invoice_id, actor="finance")
        assert on_invoice_issued(session, invoice, pm=pm) == 2
        assert on_invoice_issued(session, invoice, pm=pm) == 0
    assert [m.idempotency_key for m in outbox(uow, channel="jira")][2:] == [
        f"comment:invoice.issued:{invoice_id}@WEB-1-front", f"comment:invoice.issued:{invoice_id}@WEB-1-back"]
    assert source.asked[-1]["project_ref"] == "WEB"  # the contract's one mapped project


def test_a_plugin_without_the_hook_or_without_an_answer_gets_its_comment_on_the_task(world, uow, settings):  # type: ignore[no-untyped-def]
    url = "https://jira.atelier.test/browse/WEB-1"
    assert _complete(uow, settings, pm=_plugins(_Source()), task_url=url) == 1
    assert _complete(uow, settings, "WEB-2", labels=("jalon",), pm=_plugins(_Source(targets=None))) == 1
    [first, second] = outbox(uow, channel="jira")
    assert first.idempotency_key == f"comment:milestone.done:{_invoice_of(uow, 'M1')}"
    assert second.idempotency_key == f"comment:milestone.done:{_invoice_of(uow, 'M2')}"
    assert (first.destination["task_ref"], second.destination["task_ref"]) == ("WEB-1", "WEB-2")
    assert first.payload["task_url"] == url


def test_a_plugin_naming_the_task_itself_keeps_the_key_of_before(world, uow, settings):  # type: ignore[no-untyped-def]
    assert _complete(uow, settings, pm=_plugins(_Source(targets=lambda task: [task, task]))) == 1
    [comment] = outbox(uow, channel="jira")
    assert comment.idempotency_key == f"comment:milestone.done:{_invoice_of(uow, 'M1')}"


@pytest.mark.parametrize("answer", ["WEB-7", ["WEB-7", ""], [7]])
def test_an_answer_that_is_no_list_of_tasks_is_refused(world, uow, settings, answer):  # type: ignore[no-untyped-def]
    with pytest.raises(TypeError, match="jalon_source_comment_targets answered"):
        _complete(uow, settings, pm=_plugins(_Source(targets=answer)))
    assert outbox(uow) == []  # the billing transaction rolled back with it


def test_a_long_target_is_keyed_by_its_digest() -> None:
    target = "x" * 300
    key = target_key("comment:milestone.done:1", "WEB-1", target)
    assert key == "comment:milestone.done:1@sha256:" + hashlib.sha256(target.encode()).hexdigest()[:40]
    assert target_key("comment:milestone.done:1", "WEB-1", "WEB-1") == "comment:milestone.done:1"


def _invoice_of(uow, milestone: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from jalon.core.models import Invoice, Milestone

    with uow() as session:
        return session.execute(select(Invoice.id).join(Milestone, Invoice.milestone_id == Milestone.id)
                               .where(Milestone.reference == milestone)).scalar_one()


# --- what the comment says when finance hears nothing, and the admin's warning ---


def test_without_a_channel_the_comment_says_finance_was_not_told(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, key="ops", kind="email", target={"to": ["ops@atelier.example"]},
                events=["invoice.draft_cancelled"])
    add_channel(uow, key="off", kind="email", target={"to": ["nobody@atelier.example"]}, enabled=False)
    assert complete_milestone(uow, settings) == 1
    [comment] = outbox(uow)
    assert comment.channel == "jira"
    assert comment.payload["text"] == (
        "jalon : le jalon « Maquettes validées » (M1) est terminé ; une facture brouillon a été créée, mais "
        "aucune notification n'a été envoyée à la finance (aucun canal configuré).")
    assert "prévenue" not in comment.payload["text"]


def test_with_a_channel_the_comment_says_finance_was_told(world, uow, settings):  # type: ignore[no-untyped-def]
    add_channel(uow, **CHAT, events=["milestone.done"])
    complete_milestone(uow, settings)
    [comment] = outbox(uow, channel="jira")
    assert comment.payload["text"].endswith("une facture brouillon a été créée et la finance est prévenue.")


def test_the_untold_comment_has_its_english_words() -> None:
    assert LABELS["en"][COMMENT_UNTOLD].format(milestone="Mockups", reference="M1") == (
        "jalon: milestone “Mockups” (M1) is done; a draft invoice was created, but no notification was sent "
        "to finance (no channel configured).")


def test_the_warning_says_when_no_enabled_channel_receives_milestone_done(world, uow):  # type: ignore[no-untyped-def]
    with uow() as session:
        assert "no enabled notification channel receives milestone.done" in finance_channel_warning(session)
    add_channel(uow, key="ops", kind="email", target={"to": ["ops@atelier.example"]},
                events=["invoice.draft_cancelled"])
    add_channel(uow, key="off", kind="email", target={"to": ["nobody@atelier.example"]}, enabled=False)
    with uow() as session:
        assert finance_channel_warning(session) is not None
    add_channel(uow, key="all", kind="email", target={"to": ["all@atelier.example"]})  # no events: all of them
    with uow() as session:
        assert finance_channel_warning(session) is None
