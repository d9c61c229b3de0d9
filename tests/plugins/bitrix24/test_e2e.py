"""End to end with the real Bitrix24 plugin, installed through the entry point:
a running ``jalon serve`` receives an outgoing webhook's form-encoded
deliveries (the application token in ``auth[application_token]``), its worker
asks a local stand-in of the portal's REST API for the task through the
inbound webhook, the outbox dispatcher posts the comment back to it, and the
``reconcile.bitrix24`` job asks it, on schedule, what no webhook reported:
the completions, and the elapsed time (Bitrix24 has no event for it at all),
within the portal's leaky bucket.

The world: a fixed-price contract mapped to ``group:12`` (its milestones are
tasks 123 and 124) and a T&M contract mapped to ``group:14`` (the time logged
on task 241 lands there)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
import requests
from jalon.connector.demo import bitrix24_standin as bitrix24
from jalon.connector.demo.bitrix24_standin import Bitrix24Portal, bitrix24_portal
from jalon.core import catalog
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Delivery, Invoice, JobRun, Milestone, TimeEntry
from sqlalchemy import func, select

from tests import factories
from tests.plugins.jira.test_e2e import state
from tests.reliability.conftest import (
    RelayServer,
    add_record_channel,
    drained,
    wait_until,
)

KEY = "bitrix24-atelier"
TOKEN = "b24-application-t0ken-e2e"  # the outgoing webhook's application token: the integration's secret
HOOK = f"/hooks/bitrix24/{KEY}"
JOB = "reconcile.bitrix24"

ERP_CONTRACT = {
    "reference": "LUM-ERP-2026", "name": "ERP Lumière", "kind": "fixed_price", "entity": "atelier",
    "client": "lumiere", "total_amount": "12000.00",
    "milestones": [
        {"reference": "B1", "name": "Recette de l'ERP", "percentage": "40",
         "match": {"task_id": bitrix24.MILESTONE_TASK_ID}},
        {"reference": "B2", "name": "Mise en production de l'ERP", "percentage": "60",
         "match": {"task_id": bitrix24.SECOND_MILESTONE_TASK_ID}},
    ],
}
TM_CONTRACT = {
    "reference": "LUM-TM-2026", "name": "Support data", "kind": "time_and_materials", "entity": "atelier",
    "client": "lumiere", "hours_per_day": "7",
    "rates": [{"person": "bob@atelier.example", "amount": "95.00", "unit": "hour", "effective_from": "2026-01-01"}],
}


@contextmanager
def relay_on(db_url: str, tmp_path, portal: Bitrix24Portal, **env: str) -> Iterator[RelayServer]:  # type: ignore[no-untyped-def]
    """A running ``jalon serve`` whose Bitrix24 integration is the stand-in portal."""
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            factories.seed(session, contracts=[ERP_CONTRACT, TM_CONTRACT], integrations=[{
                "key": KEY, "source": "bitrix24", "name": "Bitrix24 Atelier", "secret": TOKEN,
                "base_url": portal.origin,  # the portal (the REST calls go to the inbound webhook)
                # the stand-in answers on loopback
                "settings": {"domain": bitrix24.DOMAIN, "allow_private_network": True},
                "credentials": {"webhook_url": portal.webhook_url}}], mappings=[
                {"integration": KEY, "project": f"group:{bitrix24.ERP_GROUP_ID}", "contract": "LUM-ERP-2026"},
                {"integration": KEY, "project": f"group:{bitrix24.SUPPORT_GROUP_ID}", "contract": "LUM-TM-2026"}])
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
def portal() -> Iterator[Bitrix24Portal]:
    with bitrix24_portal() as found:  # Bitrix24's limits enforced: 2 requests a second, bursts of 50
        yield found


@pytest.fixture
def server(db_url, tmp_path, portal) -> Iterator[RelayServer]:  # type: ignore[no-untyped-def]
    # no scheduler: the reconciliation it runs at start must not bill what the webhooks are tested for
    with relay_on(db_url, tmp_path, portal, JALON_RUN_SCHEDULER="0") as relay:
        yield relay


@pytest.fixture
def polling(db_url, tmp_path, portal) -> Iterator[RelayServer]:  # type: ignore[no-untyped-def]
    """The scheduler on, asking the portal every second."""
    with relay_on(db_url, tmp_path, portal, JALON_RECONCILE_INTERVAL_SECONDS="1") as relay:
        yield relay


def post(server: RelayServer, payload: dict[str, str]) -> requests.Response:
    body, headers = bitrix24.form(payload)
    return requests.post(f"{server.url}{HOOK}", data=body, headers=headers, timeout=10)


def notified(server: RelayServer) -> list[str]:
    """Finance's milestone notifications, as the channel received them."""
    lines = server.record_file.read_text().splitlines() if server.record_file.exists() else []
    return [line for line in lines if "milestone.done" in line]


def deliveries(engine) -> list[tuple[str, str, str, list[str]]]:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        rows = session.execute(select(Delivery).order_by(Delivery.id)).scalars().all()
        return [(d.origin, d.event_name or "", d.status, [o.get("effect", "") for o in d.outcomes]) for d in rows]


def drafted(engine) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        return [(invoice.status, milestone.task_ref or "") for invoice, milestone in session.execute(
            select(Invoice, Milestone).join(Milestone, Invoice.milestone_id == Milestone.id).order_by(Invoice.id))]


def polls(engine) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    """The reconcile.bitrix24 runs finished well, and the errors of those that failed."""
    with make_sessionmaker(engine)() as session:
        runs = session.execute(select(JobRun.status, JobRun.error).where(JobRun.job == JOB)).all()
    return sum(status == "ok" for status, _ in runs), [error or "" for status, error in runs if status == "failed"]


def ledger(engine) -> list[tuple[str, str, int, bool]]:  # type: ignore[no-untyped-def]
    """The time ledger: (worklog, contract, seconds, deleted)."""
    with make_sessionmaker(engine)() as session:
        tm = catalog.get_contract(session, "LUM-TM-2026")
        erp = catalog.get_contract(session, "LUM-ERP-2026")
        names = {tm.id: tm.reference, erp.id: erp.reference}
        return sorted((entry.worklog_ref, names.get(entry.contract_id, "?"), entry.seconds, entry.deleted)
                      for entry in session.execute(select(TimeEntry)).scalars())


def billable(engine) -> int:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        return session.scalar(select(func.coalesce(func.sum(TimeEntry.seconds), 0))
                              .where(TimeEntry.deleted.is_(False))) or 0


def wait(engine, server: RelayServer, predicate: Callable[[], bool], what: str, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    """``wait_until``, saying on failure what the runs, the ledger and the server show then."""
    try:
        wait_until(predicate, timeout=timeout, what=what)
    except AssertionError as error:
        done, failures = polls(engine)
        raise AssertionError(f"{error}; {JOB}: {done} runs ok, {len(failures)} failed, the last: {failures[-1:]}; "
                             f"ledger: {ledger(engine)}; last deliveries: {deliveries(engine)[-5:]}; "
                             f"server: {server.output()[-800:]}") from None


def after_a_new_poll(engine, server: RelayServer, what: str, check: Callable[[], bool]) -> None:  # type: ignore[no-untyped-def]
    """Wait for a reconcile.bitrix24 run that started after now, for what it found to be applied, and ``check``."""
    done, _ = polls(engine)
    # two more runs: the one under way may have read the portal before the change
    wait(engine, server, lambda: polls(engine)[0] >= done + 2, f"two more {JOB} runs ({what})")
    wait(engine, server, lambda: drained(engine)() and check(), what)


def unhandled(portal: Bitrix24Portal) -> int:
    """Rejections (503 QUERY_LIMIT_EXCEEDED, 429 OPERATION_TIME_LIMIT) answered so far: the client must have
    waited and asked again, so each must be followed by a successful call of the same method."""
    calls = portal.calls(batched=False)
    left = 0
    for index, call in enumerate(calls):
        if call.status in (429, 503) and not any(later.method == call.method and later.status == 200
                                                 for later in calls[index + 1:]):
            left += 1
    return left


# --- a completion delivered three times -----------------------------------------------------


def test_one_completion_delivered_three_times_drafts_one_invoice_tells_finance_once_and_comments_once(
        server, engine, portal) -> None:  # type: ignore[no-untyped-def]
    when = datetime.now(UTC) - timedelta(minutes=1)
    portal.complete(bitrix24.MILESTONE_TASK_ID, when)
    # Bitrix24 fires ONTASKUPDATE for each part of one completion (status, closing, the stage moved)
    sent = [bitrix24.task_updated(bitrix24.MILESTONE_TASK_ID, token=TOKEN, when=when + timedelta(seconds=s))
            for s in (0, 0, 1)]

    answers = [post(server, payload).status_code for payload in sent]

    assert answers[0] == 202 and all(code in (200, 202) for code in answers), answers
    wait_until(drained(engine), timeout=30, what="the updates processed and the comment sent")
    assert state(engine) == {"invoices": ["draft"], "messages": {"milestone.done": 1, "comment": 1}}, (
        deliveries(engine), server.output())
    assert drafted(engine) == [("draft", bitrix24.MILESTONE_TASK_ID)]
    assert len(notified(server)) == 1
    [(task_id, comment)] = portal.comments
    assert task_id == bitrix24.MILESTONE_TASK_ID and "Recette de l'ERP" in comment["POST_MESSAGE"]
    # the task was read through the inbound webhook, by the worker
    asked = [call.params for call in portal.calls("tasks.task.get") if call.status == 200]
    assert asked and all(str(p.get("taskId")) == bitrix24.MILESTONE_TASK_ID for p in asked)


def test_a_delivery_with_another_application_token_is_refused_and_stored_nowhere(server, engine, portal) -> None:  # type: ignore[no-untyped-def]
    portal.complete(bitrix24.MILESTONE_TASK_ID, datetime.now(UTC))

    forged = post(server, bitrix24.task_updated(bitrix24.MILESTONE_TASK_ID, token="not-the-token"))

    assert forged.status_code == 401
    assert deliveries(engine) == [] and portal.calls() == []


# --- a completion no webhook reported: the reconciliation bills it, once ------------------


@pytest.mark.slow
def test_a_completion_made_while_intake_was_down_is_billed_once_by_reconciliation(db_url, engine, tmp_path,
                                                                                   portal) -> None:  # type: ignore[no-untyped-def]
    # the task is completed while jalon is down: the delivery fails, and Bitrix24 never sends it again
    when = datetime.now(UTC) - timedelta(minutes=5)
    portal.complete(bitrix24.SECOND_MILESTONE_TASK_ID, when)

    with relay_on(db_url, tmp_path, portal, JALON_RECONCILE_INTERVAL_SECONDS="1") as relay:
        wait(engine, relay, lambda: state(engine)["invoices"] == ["draft"] and drained(engine)()
             and bool(portal.comments), f"the completion found by {JOB} and applied")
        after_a_new_poll(engine, relay, "the same completion found again", lambda: True)
        # a later update of the same completed task (someone edits its description) bills nothing again
        assert post(relay, bitrix24.task_updated(bitrix24.SECOND_MILESTONE_TASK_ID, token=TOKEN)).status_code == 202
        wait_until(lambda: any(d[0] == "webhook" and d[2] == "done" for d in deliveries(engine)), timeout=30,
                   what="the late webhook processed")
        wait_until(drained(engine), timeout=30, what="the outbox drained")
        found = [d for d in deliveries(engine) if d[0] == "reconcile" and d[1] == "reconcile:TaskCompleted"]

    assert [d[2:] for d in found] == [("done", ["milestone_done"])]  # found by several runs, stored once
    assert drafted(engine) == [("draft", bitrix24.SECOND_MILESTONE_TASK_ID)]
    assert state(engine)["messages"] == {"milestone.done": 1, "comment": 1}
    assert [task_id for task_id, _ in portal.comments] == [bitrix24.SECOND_MILESTONE_TASK_ID]
    assert unhandled(portal) == 0


# --- elapsed time: no event at all, polled ---------------------------------------------------


@pytest.mark.slow
def test_elapsed_time_polled_twice_is_billed_once(polling, engine, portal) -> None:  # type: ignore[no-untyped-def]
    item = portal.log_time(bitrix24.SUPPORT_TASK_ID, 5400, start=datetime.now(UTC) - timedelta(hours=3),
                           comment="Revue du schéma de données")

    wait(engine, polling, lambda: drained(engine)() and ledger(engine) != [], "the elapsed item polled and applied")
    after_a_new_poll(engine, polling, "polled again", lambda: True)

    assert ledger(engine) == [(item, "LUM-TM-2026", 5400, False)]
    assert billable(engine) == 5400
    assert state(engine)["invoices"] == []  # time is billed by the T&M invoice, not drafted per entry
    assert unhandled(portal) == 0


@pytest.mark.slow
def test_an_elapsed_item_edited_then_deleted_leaves_the_billable_time_bitrix24_shows(polling, engine,
                                                                                    portal) -> None:  # type: ignore[no-untyped-def]
    start = datetime.now(UTC) - timedelta(hours=5)
    kept = portal.log_time(bitrix24.SUPPORT_TASK_ID, 1800, start=start)
    item = portal.log_time(bitrix24.SUPPORT_TASK_ID, 3600, start=start + timedelta(hours=1))
    wait(engine, polling, lambda: drained(engine)() and len(ledger(engine)) == 2, "both elapsed items polled")
    assert billable(engine) == 1800 + 3600

    portal.edit_time(item, 5400)  # its CREATED_DATE does not move: only a new poll of the task's time shows it
    after_a_new_poll(engine, polling, "the edit applied", lambda: billable(engine) == 1800 + 5400)
    assert ledger(engine) == sorted([(kept, "LUM-TM-2026", 1800, False), (item, "LUM-TM-2026", 5400, False)])

    portal.delete_time(item)  # no event, and no longer listed
    after_a_new_poll(engine, polling, "the deletion applied", lambda: billable(engine) == 1800)
    assert ledger(engine) == sorted([(kept, "LUM-TM-2026", 1800, False), (item, "LUM-TM-2026", 5400, True)])
    assert unhandled(portal) == 0


def test_the_portal_stand_in_enforces_the_leaky_bucket() -> None:
    # what the tests above rely on: past 50 requests at once, the portal answers 503 QUERY_LIMIT_EXCEEDED
    with bitrix24_portal() as portal, requests.Session() as http:
        started = time.monotonic()
        answers = [http.post(f"{portal.webhook_url}profile.json", timeout=5) for _ in range(120)]
        elapsed = time.monotonic() - started
        refused = [a for a in answers if a.status_code == 503]
        time.sleep(1.1)  # it drains two a second
        again = http.post(f"{portal.webhook_url}profile.json", timeout=5)

    # 120 requests in `elapsed` seconds: at most 50 + 2 a second pass (however slow this machine is)
    assert len(answers) - len(refused) <= 50 + 2 * elapsed + 2
    assert refused and refused[0].json()["error"] == "QUERY_LIMIT_EXCEEDED"
    assert portal.rejected[503] == len(refused) and again.status_code == 200
    assert set(answers[0].json()["time"]) >= {"start", "finish", "duration", "operating", "operating_reset_at"}
