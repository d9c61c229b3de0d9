"""The worker: claims are leases, the apply is one fenced transaction,
failures back off and end as dead letters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from jalon.connector.relay import worker
from jalon.connector.settings import Settings
from jalon.connector.relay.worker import backoff_seconds, claim, process_once, process_one
from jalon.core.db import READ_ONLY
from jalon.core.models import AuditRecord, Delivery, Invoice, OutboxMessage, TimeEntry
from jalon.core.types import utcnow

from .conftest import SECRET, payload, post


def delivery(runtime, delivery_id: int = 1) -> Delivery:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return session.get(Delivery, delivery_id)


def invoices(runtime) -> list[Invoice]:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return list(session.execute(select(Invoice)).scalars())


def count(runtime, model) -> int:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_milestone_delivery_becomes_a_draft_invoice(app, runtime):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload("task.done", task="WEB-1"))
    assert process_once(runtime, owner="w1") == 1
    done = delivery(runtime)
    assert done.status == "done" and done.event_name == "task.done"
    assert done.processed_at is not None and done.lease_token is None
    [outcome] = done.outcomes
    assert outcome["effect"] == "milestone_done" and outcome["task_ref"] == "WEB-1"
    [invoice] = invoices(runtime)
    assert outcome["invoice_id"] == invoice.id
    assert invoice.status == "draft"
    assert invoice.total_net == Decimal("7200.00")  # M1 is 30 % of 24 000
    assert process_once(runtime, owner="w1") == 0  # nothing left


def test_a_worklog_delivery_records_time(app, runtime):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload("worklog.created", task="WEB-5", worklog="WL-1", seconds=5400))
    process_once(runtime, owner="w1")
    assert delivery(runtime).outcomes[0]["effect"] == "time_logged"
    with runtime.sessionmaker() as session:
        [entry] = session.execute(select(TimeEntry)).scalars()
    assert entry.seconds == 5400 and entry.worklog_ref == "WL-1"


def test_an_event_the_source_ignores_ends_ignored_with_its_reason(app, runtime):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload("comment.liked"))
    process_once(runtime, owner="w1")
    ignored = delivery(runtime)
    assert ignored.status == "ignored" and ignored.event_name == "comment.liked"
    assert ignored.outcomes == [{"effect": "ignored", "detail": "event 'comment.liked' is not one jalon acts on"}]
    assert invoices(runtime) == []


def test_an_unreadable_delivery_is_a_dead_letter_at_once(app, runtime):  # type: ignore[no-untyped-def]
    post(app.test_client(), b"{not json")
    process_once(runtime, owner="w1")
    dead = delivery(runtime)
    assert dead.status == "dead" and dead.attempts == 1
    assert dead.last_error.startswith("Unreadable: not JSON")
    assert dead.body == b"{not json"  # kept for the fix and the replay


def test_a_failure_is_retried_later_with_backoff(make_app, fake):  # type: ignore[no-untyped-def]
    app = make_app(backoff_base_seconds=10.0)
    runtime = app.extensions["jalon"]
    post(app.test_client(), payload())
    fake.translate_error = ConnectionError("tool down")
    before = utcnow()
    process_once(runtime, owner="w1")
    failed = delivery(runtime)
    assert failed.status == "pending" and failed.attempts == 1 and failed.lease_token is None
    assert failed.last_error == "ConnectionError: tool down"
    # base 10 s, first retry: between 5 and 10 s from now (equal jitter)
    assert before + timedelta(seconds=5) <= failed.next_attempt_at <= utcnow() + timedelta(seconds=10)
    assert process_once(runtime, owner="w1") == 0  # not due yet


def test_the_backoff_doubles_is_capped_and_jittered():  # type: ignore[no-untyped-def]
    settings = Settings(backoff_base_seconds=2.0, backoff_max_seconds=60.0)
    full = [backoff_seconds(n, settings, rand=lambda: 1.0) for n in range(1, 8)]
    half = [backoff_seconds(n, settings, rand=lambda: 0.0) for n in range(1, 8)]
    assert full == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert half == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_errors_are_recorded_without_secrets(app, runtime, fake):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload())
    fake.translate_error = RuntimeError(f"auth failed with secret {SECRET}")
    process_once(runtime, owner="w1")
    error = delivery(runtime).last_error
    assert SECRET not in error and "***" in error


def test_after_max_attempts_a_delivery_is_dead(make_app, fake):  # type: ignore[no-untyped-def]
    app = make_app(max_attempts=3, backoff_base_seconds=0.0)
    runtime = app.extensions["jalon"]
    post(app.test_client(), payload())
    fake.translate_error = TimeoutError("still down")
    statuses = []
    for _ in range(5):
        process_once(runtime, owner="w1")
        statuses.append(delivery(runtime).status)
    assert statuses == ["pending", "pending", "dead", "dead", "dead"]
    dead = delivery(runtime)
    assert dead.attempts == 3 and dead.last_error == "TimeoutError: still down"
    assert len(fake.translated) == 3  # never tried again once dead


def test_a_lease_held_by_a_dead_worker_is_claimed_again_once_expired(app, runtime):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload())
    [first] = claim(runtime, owner="crashed", limit=10)  # ...and the worker dies here
    assert claim(runtime, owner="w2", limit=10) == []  # leased: nobody else takes it
    later = utcnow() + timedelta(seconds=runtime.settings.lease_seconds + 1)
    [second] = claim(runtime, owner="w2", limit=10, now=later)
    assert second.id == first.id and second.token != first.token and second.attempts == 2
    assert process_one(runtime, second) == "done"
    assert len(invoices(runtime)) == 1


def test_a_stale_worker_cannot_commit_over_the_new_owner(app, runtime, fake):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload())
    [stale] = claim(runtime, owner="slow", limit=10)
    later = utcnow() + timedelta(seconds=runtime.settings.lease_seconds + 1)
    [fresh] = claim(runtime, owner="fast", limit=10, now=later)
    assert process_one(runtime, fresh) == "done"
    after_fresh = delivery(runtime)
    # the slow worker wakes up and finishes its translation: the fence stops it, nothing is written
    assert process_one(runtime, stale) == "lease_lost"
    assert len(invoices(runtime)) == 1
    now = delivery(runtime)
    assert (now.status, now.outcomes, now.processed_at) == ("done", after_fresh.outcomes, after_fresh.processed_at)
    # its failure path is fenced too
    assert worker.record_failure(runtime, stale, RuntimeError("late")) == "lease_lost"
    assert delivery(runtime).status == "done" and delivery(runtime).last_error is None


def test_a_stale_worker_is_fenced_even_before_the_new_owner_finishes(app, runtime):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload())
    [stale] = claim(runtime, owner="slow", limit=10)
    later = utcnow() + timedelta(seconds=runtime.settings.lease_seconds + 1)
    [fresh] = claim(runtime, owner="fast", limit=10, now=later)
    assert process_one(runtime, stale) == "lease_lost"
    assert invoices(runtime) == [] and delivery(runtime).status == "processing"
    assert process_one(runtime, fresh) == "done"
    assert len(invoices(runtime)) == 1


def test_a_delivery_whose_workers_keep_dying_ends_dead(make_app):  # type: ignore[no-untyped-def]
    app = make_app(max_attempts=2)
    runtime = app.extensions["jalon"]
    post(app.test_client(), payload())
    now = utcnow()
    for round_ in range(2):
        now += timedelta(seconds=runtime.settings.lease_seconds + 1)
        assert len(claim(runtime, owner=f"doomed-{round_}", limit=10, now=now)) == 1
    now += timedelta(seconds=runtime.settings.lease_seconds + 1)
    assert claim(runtime, owner="w3", limit=10, now=now) == []
    dead = delivery(runtime)
    assert dead.status == "dead" and "leases expired" in dead.last_error


def test_claims_take_at_most_the_limit_oldest_first(app, runtime):  # type: ignore[no-untyped-def]
    client = app.test_client()
    for n in range(5):
        post(client, payload(task=f"WEB-{n + 10}"), delivery=f"d-{n}")
    assert [c.id for c in claim(runtime, owner="w1", limit=2)] == [1, 2]
    assert [c.id for c in claim(runtime, owner="w2", limit=10)] == [3, 4, 5]


def test_observers_hear_after_the_commit_and_cannot_undo_it(app, runtime, fake):  # type: ignore[no-untyped-def]
    from jalon.connector.plugin.hookspecs import hookimpl

    heard = []

    class Broken:
        @hookimpl
        def jalon_delivery_processed(self, delivery, outcomes):  # type: ignore[no-untyped-def]
            raise RuntimeError("metrics backend down")

    class Listener:
        @hookimpl
        def jalon_delivery_processed(self, delivery, outcomes):  # type: ignore[no-untyped-def]
            # called after the commit: the delivery is already done in the database
            heard.append((delivery.id, delivery_status(runtime, delivery.id), [o["effect"] for o in outcomes]))

    runtime.pm.register(Broken())
    runtime.pm.register(Listener())
    post(app.test_client(), payload())
    process_once(runtime, owner="w1")
    assert heard == [(1, "done", ["milestone_done"])]
    assert [delivery_id for delivery_id, _ in fake.processed] == [1]  # the other observers still heard
    assert delivery(runtime).status == "done"


def delivery_status(runtime, delivery_id: int) -> str:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return session.scalar(select(Delivery.status).where(Delivery.id == delivery_id))


def test_a_done_delivery_replayed_changes_nothing_twice(app, runtime):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload())
    process_once(runtime, owner="w1")
    with runtime.sessionmaker() as session, session.begin():
        worker.replay(session, session.get(Delivery, 1), actor="test")
    process_once(runtime, owner="w1")
    again = delivery(runtime)
    assert again.status == "done" and again.outcomes[0]["effect"] == "unchanged"
    assert len(invoices(runtime)) == 1
    assert count(runtime, AuditRecord) > 0


def test_on_postgresql_a_claim_skips_rows_another_worker_has_locked(app, runtime, db_url):  # type: ignore[no-untyped-def]
    if not db_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises claims with BEGIN IMMEDIATE")
    client = app.test_client()
    post(client, payload(), delivery="locked")
    post(client, payload(task="WEB-2"), delivery="free")
    with runtime.engine.connect() as other:
        # another worker, mid-claim, holds delivery 1
        other.execute(select(Delivery.id).where(Delivery.id == 1).with_for_update())
        assert [c.id for c in claim(runtime, owner="w2", limit=10)] == [2]
        other.rollback()
    assert [c.id for c in claim(runtime, owner="w3", limit=10)] == [1]


# ------------------------------------------------------------------ batches


def _time_entries(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return sorted(session.execute(select(TimeEntry.worklog_ref)).scalars())


def test_a_claimed_batch_is_applied_in_one_transaction(app, runtime):  # type: ignore[no-untyped-def]
    from sqlalchemy import event

    client = app.test_client()
    for n in range(3):
        post(client, payload("worklog.created", task="WEB-5", worklog=f"WL-{n}", seconds=60), delivery=f"d-{n}")
    begun = []

    def listener(conn):  # type: ignore[no-untyped-def]
        if not conn.get_execution_options().get(READ_ONLY):  # the claimed rows are read, not written
            begun.append(1)

    event.listen(runtime.engine, "begin", listener)
    try:
        assert process_once(runtime, owner="w1") == 3
    finally:
        event.remove(runtime.engine, "begin", listener)
    assert len(begun) == 2  # the claim, then the apply of all three
    assert _time_entries(runtime) == ["WL-0", "WL-1", "WL-2"]
    assert [delivery(runtime, n).status for n in (1, 2, 3)] == ["done"] * 3


def test_a_delivery_that_fails_in_a_batch_is_rolled_back_alone_and_retried_alone(make_app, fake, monkeypatch):  # type: ignore[no-untyped-def]
    app = make_app(backoff_base_seconds=0.0)
    runtime = app.extensions["jalon"]
    client = app.test_client()
    post(client, payload("worklog.created", task="WEB-5", worklog="WL-1", seconds=60), delivery="d-1")
    post(client, payload("task.done", task="WEB-1"), delivery="d-2")
    post(client, payload("worklog.created", task="WEB-5", worklog="WL-3", seconds=60), delivery="d-3")
    real = worker.apply_event
    failures = []

    def apply_then_fail(session, event):  # type: ignore[no-untyped-def]
        outcome = real(session, event)  # the milestone and its draft invoice are written...
        if getattr(event, "task_ref", None) == "WEB-1" and not failures:
            failures.append(event)
            raise RuntimeError("boom after writing")  # ...and must be rolled back with the delivery
        return outcome

    monkeypatch.setattr(worker, "apply_event", apply_then_fail)
    audited = count(runtime, AuditRecord)
    assert process_once(runtime, owner="w1") == 3
    assert [delivery(runtime, n).status for n in (1, 2, 3)] == ["done", "pending", "done"]
    failed = delivery(runtime, 2)
    assert failed.last_error == "RuntimeError: boom after writing" and failed.lease_token is None
    assert not failed.outcomes and failed.processed_at is None
    assert invoices(runtime) == [] and count(runtime, OutboxMessage) == 0
    assert count(runtime, AuditRecord) == audited + 2  # the two worklogs', none of the rolled-back milestone's
    assert _time_entries(runtime) == ["WL-1", "WL-3"]
    assert [delivery_id for delivery_id, _ in fake.processed] == [1, 3]  # observers hear the committed ones

    # the retry takes the failed delivery alone; nothing of the others is applied twice
    assert process_once(runtime, owner="w1") == 1
    assert delivery(runtime, 2).status == "done" and delivery(runtime, 2).attempts == 2
    assert len(invoices(runtime)) == 1 and _time_entries(runtime) == ["WL-1", "WL-3"]
    assert fake.translated == [1, 2, 3, 2]
    assert [delivery_id for delivery_id, _ in fake.processed] == [1, 3, 2]
    assert process_once(runtime, owner="w1") == 0


def test_a_lost_lease_in_a_batch_skips_only_that_delivery(app, runtime, fake):  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    client = app.test_client()
    for n in (1, 2, 3):
        post(client, payload("worklog.created", task="WEB-5", worklog=f"WL-{n}", seconds=60), delivery=f"d-{n}")
    batch = claim(runtime, owner="slow", limit=10)
    assert [item.id for item in batch] == [1, 2, 3]
    with runtime.sessionmaker() as session, session.begin():
        # delivery 2's lease expired and a newer owner took it while this worker was slow
        session.execute(update(Delivery).where(Delivery.id == 2).values(lease_owner="fast", lease_token="newer"))
    assert worker.process_batch(runtime, batch) == ["done", "lease_lost", "done"]
    assert _time_entries(runtime) == ["WL-1", "WL-3"]
    taken = delivery(runtime, 2)
    assert (taken.status, taken.lease_token, taken.outcomes or None) == ("processing", "newer", None)
    assert [delivery_id for delivery_id, _ in fake.processed] == [1, 3]
    # the newer owner's own attempt applies it once
    [fresh] = claim(runtime, owner="fast", limit=10, now=utcnow() + timedelta(seconds=runtime.settings.lease_seconds + 1))
    assert worker.process_batch(runtime, [fresh]) == ["done"]
    assert _time_entries(runtime) == ["WL-1", "WL-2", "WL-3"]
    assert count(runtime, TimeEntry) == 3


def test_a_batch_of_milestones_queues_each_notification_once(app, runtime):  # type: ignore[no-untyped-def]
    client = app.test_client()
    post(client, payload("task.done", task="WEB-1"), delivery="d-1")
    post(client, payload("task.done", task="WEB-1", at="2026-11-02T10:05:00+00:00"), delivery="d-2")  # the same task again
    post(client, payload("task.done", task="WEB-9", labels=["jalon"]), delivery="d-3")
    assert process_once(runtime, owner="w1") == 3
    effects = [delivery(runtime, n).outcomes[0]["effect"] for n in (1, 2, 3)]
    assert effects[:2] == ["milestone_done", "unchanged"]
    assert len(invoices(runtime)) == effects.count("milestone_done")
    with runtime.sessionmaker() as session:
        keys = list(session.execute(select(OutboxMessage.idempotency_key)).scalars())
    assert len(keys) == len(set(keys))
