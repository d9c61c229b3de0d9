"""End to end with the real ClickUp plugin, installed through the entry point:
a running ``jalon serve`` receives signed ClickUp deliveries, its worker asks
a local stand-in of ClickUp's REST API for the task (list, folder, space,
type), the outbox dispatcher posts the comment back to it, and the
``reconcile.clickup`` job asks it what no webhook reported.

The world: a fixed-price contract mapped to ``list:901`` (its milestones are
ClickUp's Milestone tasks) and a T&M contract mapped to ``space:9`` (the time
tracked on a task of another list of that space lands there)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from jalon.connector.demo import clickup_standin as clickup
from jalon.connector.demo.clickup_standin import ClickUpSite, clickup_site
from jalon.core import catalog
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Delivery, Invoice, Milestone, TimeEntry
from sqlalchemy import func, select

from tests import factories
from tests.plugins.jira.test_e2e import state
from tests.reliability.conftest import (
    RelayServer,
    add_record_channel,
    drained,
    wait_until,
)

KEY = "clickup-atelier"
SECRET = "clickup-webhook-s3cret"
TOKEN = "pk_81941_E2ETESTTOKEN"
HOOK = f"/hooks/clickup/{KEY}"

APP_CONTRACT = {
    "reference": "LUM-APP-2026", "name": "Application mobile", "kind": "fixed_price", "entity": "atelier",
    "client": "lumiere", "total_amount": "18000.00",
    "milestones": [
        {"reference": "A1", "name": "Application en recette", "percentage": "50",
         "match": {"task_type": "milestone"}},
        {"reference": "A2", "name": "Application publiée", "percentage": "50", "match": {"task_type": "milestone"}},
    ],
}
TM_CONTRACT = {
    "reference": "LUM-TM-2026", "name": "Support data", "kind": "time_and_materials", "entity": "atelier",
    "client": "lumiere", "hours_per_day": "7",
    "rates": [{"person": "bob@atelier.example", "amount": "95.00", "unit": "hour", "effective_from": "2026-01-01"}],
}


@contextmanager
def relay_on(db_url: str, tmp_path, site: ClickUpSite, **env: str) -> Iterator[RelayServer]:  # type: ignore[no-untyped-def]
    """A running ``jalon serve`` whose ClickUp integration is the stand-in."""
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            factories.seed(session, contracts=[APP_CONTRACT, TM_CONTRACT], integrations=[{
                "key": KEY, "source": "clickup", "name": "ClickUp Atelier", "secret": SECRET, "base_url": site.api,
                # the stand-in answers on loopback
                "settings": {"team_id": clickup.TEAM_ID, "done_statuses": ["Livré"], "allow_private_network": True},
                "credentials": {"api_token": TOKEN}}], mappings=[
                {"integration": KEY, "project": f"list:{clickup.APP_LIST_ID}", "contract": "LUM-APP-2026"},
                {"integration": KEY, "project": f"space:{clickup.SPACE_ID}", "contract": "LUM-TM-2026"}])
            add_record_channel(session)  # finance's channel: a file the test can read
    finally:
        engine.dispose()
    relay = RelayServer(db_url, tmp_path, threads=4, extra_env=env)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()


@pytest.fixture
def site() -> Iterator[ClickUpSite]:
    with clickup_site(token=TOKEN) as found:  # the plugin's token, sent bare, or 401
        yield found


@pytest.fixture
def server(db_url, tmp_path, site) -> Iterator[RelayServer]:  # type: ignore[no-untyped-def]
    # no scheduler: the reconciliation it runs at start must not bill what the webhooks are tested for
    with relay_on(db_url, tmp_path, site, JALON_RUN_SCHEDULER="0") as relay:
        yield relay


def post(server: RelayServer, payload: dict[str, Any]) -> requests.Response:
    body, headers = clickup.signed(SECRET, payload)
    return requests.post(f"{server.url}{HOOK}", data=body, headers=headers, timeout=10)


def notified(server: RelayServer) -> list[str]:
    """Finance's milestone notifications, as the channel received them."""
    lines = server.record_file.read_text().splitlines() if server.record_file.exists() else []
    return [line for line in lines if "milestone.done" in line]


def deliveries(engine) -> list[tuple[str, str, str, list[str]]]:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        rows = session.execute(select(Delivery).order_by(Delivery.id)).scalars().all()
        return [(d.origin, d.event_name or "", d.status, [o.get("effect", "") for o in d.outcomes]) for d in rows]


# --- a milestone task moved to a custom closed status ------------------------------------


ONCE = ("taskStatusUpdated",)
BOTH_RETRIED = ("taskStatusUpdated", "taskUpdated", "taskStatusUpdated", "taskUpdated")
GENERIC_FIRST = ("taskUpdated", "taskStatusUpdated", "taskUpdated", "taskStatusUpdated")


@pytest.mark.parametrize("sent", [ONCE, BOTH_RETRIED, GENERIC_FIRST], ids=["once", "both-retried", "generic-first"])
def test_a_milestone_task_moved_to_livre_drafts_one_invoice_tells_finance_once_and_comments_once(
        server, engine, site, sent) -> None:  # type: ignore[no-untyped-def]
    when = datetime.now(UTC) - timedelta(minutes=1)
    site.complete(clickup.MILESTONE_TASK_ID, when)
    change = clickup.status_updated(when)
    payloads = {"taskStatusUpdated": change, "taskUpdated": clickup.as_task_updated(change)}

    answers = [post(server, payloads[event]).status_code for event in sent]

    assert answers == [202] + [200] * (len(sent) - 1)  # one change, one delivery: the others are duplicates
    # stored before the answer: once nothing is left to do, the worker and the dispatcher have done it all
    wait_until(drained(engine), timeout=30, what="the change processed and the comment sent")
    assert state(engine) == {"invoices": ["draft"], "messages": {"milestone.done": 1, "comment": 1}}, (
        deliveries(engine), server.output())
    assert len(notified(server)) == 1
    [(task_id, comment)] = site.comments
    assert task_id == clickup.MILESTONE_TASK_ID and comment["notify_all"] is False
    assert "Application en recette" in comment["comment_text"]
    # the task was asked for once, with the token as ClickUp wants it (bare, no "Bearer")
    assert [(c.path, c.authorization) for c in site.calls("GET", "task/")] == [
        (f"/api/v2/task/{clickup.MILESTONE_TASK_ID}", TOKEN)]


# --- time tracked, edited, deleted --------------------------------------------------------


def test_time_tracked_edited_and_deleted_leave_the_right_billable_seconds(server, engine) -> None:  # type: ignore[no-untyped-def]
    t0 = datetime.now(UTC) - timedelta(hours=2)
    t1, t2 = t0 + timedelta(minutes=30), t0 + timedelta(minutes=40)

    def tracked(kind, when, interval, spent, history, previous=None):  # type: ignore[no-untyped-def]
        return clickup.time_tracked(kind, when, interval_id=interval, spent_ms=spent, previous_ms=previous,
                                    history_id=history, start=t0 - timedelta(hours=3))

    sent = [
        tracked("created", t0, "4215000000000000001", 900_000, "4212000000000001001"),  # 15 min exactly
        tracked("created", t0, "4215000000000000002", 3_600_000, "4212000000000001002"),
        tracked("edited", t1, "4215000000000000002", 5_400_000, "4212000000000001003", previous=3_600_000),
        tracked("created", t0, "4215000000000000003", 1_800_000, "4212000000000001004"),
        tracked("deleted", t2, "4215000000000000003", 1_800_000, "4212000000000001005"),
        # ClickUp's deliveries are unordered: an edit before its creation
        tracked("edited", t1, "4215000000000000004", 7_200_000, "4212000000000001006", previous=3_600_000),
        tracked("created", t0, "4215000000000000004", 3_600_000, "4212000000000001007"),
    ]
    for payload in sent:
        assert post(server, payload).status_code == 202

    def entries():  # type: ignore[no-untyped-def]
        with make_sessionmaker(engine)() as session:
            return sorted(tuple(row) for row in session.execute(
                select(TimeEntry.worklog_ref, TimeEntry.project_ref, TimeEntry.task_ref, TimeEntry.person_ref,
                       TimeEntry.seconds, TimeEntry.deleted)))

    wait_until(lambda: drained(engine)() and len(entries()) == 4, timeout=60,
               what="the seven time deliveries processed")
    on_support = ("list:902", clickup.SUPPORT_TASK_ID, "bob@atelier.example")
    assert entries() == [
        ("4215000000000000001", *on_support, 900, False),
        ("4215000000000000002", *on_support, 5400, False),
        ("4215000000000000003", *on_support, 1800, True),
        ("4215000000000000004", *on_support, 7200, False),
    ]
    with make_sessionmaker(engine)() as session:
        tm = catalog.get_contract(session, "LUM-TM-2026")
        billable = session.scalar(select(func.sum(TimeEntry.seconds)).where(
            TimeEntry.deleted.is_(False), TimeEntry.contract_id == tm.id))
    assert billable == 900 + 5400 + 7200  # on the T&M contract that space 9 is mapped to


# --- a completion no webhook reported: the reconciliation bills it, once ------------------


def drafted(engine) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        return [(invoice.status, milestone.task_ref or "") for invoice, milestone in session.execute(
            select(Invoice, Milestone).join(Milestone, Invoice.milestone_id == Milestone.id).order_by(Invoice.id))]


@pytest.mark.slow
def test_a_completion_made_while_intake_was_down_is_billed_once_by_reconciliation(db_url, engine, tmp_path,
                                                                                   site) -> None:  # type: ignore[no-untyped-def]
    # the task is completed while jalon is down: ClickUp's deliveries fail, and it drops them
    when = datetime.now(UTC) - timedelta(minutes=5)
    site.complete(clickup.SECOND_MILESTONE_TASK_ID, when)
    late = clickup.status_updated(when, task_id=clickup.SECOND_MILESTONE_TASK_ID, history_id="4212000000000009001")

    with relay_on(db_url, tmp_path, site, JALON_RECONCILE_INTERVAL_SECONDS="1") as relay:
        wait_until(lambda: state(engine)["invoices"] == ["draft"] and drained(engine)() and bool(site.comments),
                   timeout=60, what="the completion found by reconcile.clickup and applied")
        # the late delivery of the same change (ClickUp's last retry) bills nothing again
        assert post(relay, late).status_code == 202
        wait_until(lambda: any(d[0] == "webhook" and d[2] == "done" for d in deliveries(engine)), timeout=30,
                   what="the late webhook processed")
        wait_until(drained(engine), timeout=30, what="the outbox drained")
        found = [d for d in deliveries(engine) if d[0] == "reconcile"]
        webhook = [d for d in deliveries(engine) if d[0] == "webhook"]

    assert [d[1:] for d in found] == [("reconcile:TaskCompleted", "done", ["milestone_done"])]
    assert [d[1:] for d in webhook] == [("taskStatusUpdated", "done", ["unchanged"])]
    assert drafted(engine) == [("draft", clickup.SECOND_MILESTONE_TASK_ID)]
    assert state(engine)["messages"] == {"milestone.done": 1, "comment": 1}
    assert [task_id for task_id, _ in site.comments] == [clickup.SECOND_MILESTONE_TASK_ID]
    asked = {call.path for call in site.calls("GET")}
    assert {f"/api/v2/list/{clickup.APP_LIST_ID}/task", f"/api/v2/space/{clickup.SPACE_ID}/folder",
            f"/api/v2/space/{clickup.SPACE_ID}/list", f"/api/v2/team/{clickup.TEAM_ID}/time_entries"} <= asked
    [listed, *_] = site.calls("GET", f"list/{clickup.APP_LIST_ID}/task")
    assert listed.query["include_closed"] == "true" and int(listed.query["date_updated_gt"]) < int(
        clickup.millis(when))
