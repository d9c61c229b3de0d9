"""The connector's reconciliation: a plugin says what changed
(``jalon_source_reconcile``); the connector owns the schedule, the cursor of
each integration, the isolation between integrations, and feeds the events
through the inbox as synthetic deliveries, as visible and as idempotent as a
webhook's."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from jalon.connector.jobs.reconcile import FIRST_LOOKBACK, OVERLAP, ReconcileFailed, reconcile_source
from jalon.connector.jobs.scheduler import collect_jobs
from jalon.connector.relay.worker import process_once
from jalon.core import catalog
from jalon.core.events import TaskCompleted, TimeLogged
from jalon.core.models import Delivery, Integration, Invoice, SourceCursor, TimeEntry

from .conftest import KEY, SECRET, payload, post, token

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
SECOND = "fake-second"


def done(task: str = "WEB-1", *, integration: str = KEY, at: datetime = NOW - timedelta(hours=1)) -> TaskCompleted:
    return TaskCompleted(integration=integration, project_ref="WEB", task_ref=task, occurred_at=at, status="Done",
                         event_id=f"issue:{task}:{at.isoformat()}")


def logged(worklog: str = "WL-1", seconds: int = 3600) -> TimeLogged:
    at = NOW - timedelta(minutes=30)
    return TimeLogged(integration=KEY, project_ref="WEB", task_ref="WEB-5", occurred_at=at, worklog_ref=worklog,
                      seconds=seconds, person_ref="bob", event_id=f"worklog:{worklog}:{at.isoformat()}")


@pytest.fixture
def world(runtime, uow):  # type: ignore[no-untyped-def]
    """The fake integration on a site, and a second one of the same tool."""
    with uow() as session:
        session.execute(update(Integration).where(Integration.key == KEY).values(base_url="https://fake.example"))
        catalog.upsert_integration(session, {"key": SECOND, "source": "fake", "name": "Second", "secret": "x",
                                             "base_url": "https://second.example"}, actor="test")
        catalog.apply_config(session, {"mappings": [{"integration": SECOND, "project": "APP",
                                                     "contract": "LUM-2026-01"}]}, actor="test")
    return runtime


def drain(runtime) -> None:  # type: ignore[no-untyped-def]
    for _ in range(100):
        if not process_once(runtime, owner="test"):
            return


def synthetic(uow) -> list[Delivery]:  # type: ignore[no-untyped-def]
    with uow() as session:
        rows = session.execute(select(Delivery).where(Delivery.origin == "reconcile").order_by(Delivery.id)).scalars()
        return [row for row in rows]


def test_a_source_whose_plugin_says_what_changed_gets_a_job(runtime) -> None:  # type: ignore[no-untyped-def]
    jobs = {job.name: job for job in collect_jobs(runtime)}
    assert jobs["reconcile.fake"].interval == timedelta(minutes=10)
    assert "reconcile.other" in jobs  # OtherSource implements it too (it is a FakeSource)


def test_found_events_are_billed_once_through_the_inbox(world, fake, uow) -> None:  # type: ignore[no-untyped-def]
    fake.changes[KEY] = [done(), logged()]

    result = reconcile_source(world, "fake", now=NOW)
    drain(world)

    assert result["integrations"][KEY] == {"since": (NOW - FIRST_LOOKBACK - OVERLAP).isoformat(), "found": 2,
                                           "stored": 2, "already_known": 0}
    rows = synthetic(uow)
    assert [(row.event_name, row.status) for row in rows] == [
        ("reconcile:TaskCompleted", "done"), ("reconcile:TimeLogged", "done")]
    assert [row.idempotency_key for row in rows] == [f"reconcile:{done().event_id}", f"reconcile:{logged().event_id}"]
    with uow() as session:
        assert len(session.execute(select(Invoice)).all()) == 1
        assert session.execute(select(TimeEntry.seconds)).scalars().all() == [3600]

    # the same changes found again by the next run (the overlap) are duplicates, stored nowhere
    again = reconcile_source(world, "fake", now=NOW + timedelta(minutes=10))
    drain(world)
    assert again["integrations"][KEY]["stored"] == 0 and again["integrations"][KEY]["already_known"] == 2
    assert len(synthetic(uow)) == 2
    with uow() as session:
        assert len(session.execute(select(Invoice)).all()) == 1


def test_a_change_the_webhook_brought_too_bills_nothing_twice(world, fake, app, uow) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload(at=(NOW - timedelta(hours=1)).isoformat()), delivery="d-1").status_code == 202
    drain(world)
    fake.changes[KEY] = [done()]

    reconcile_source(world, "fake", now=NOW)
    drain(world)

    with uow() as session:
        assert len(session.execute(select(Invoice)).all()) == 1
    [row] = synthetic(uow)
    assert row.status in ("done", "ignored")


def test_the_delivery_log_shows_them_and_they_can_be_replayed(world, fake, app, uow) -> None:  # type: ignore[no-untyped-def]
    fake.changes[KEY] = [done()]
    reconcile_source(world, "fake", now=NOW)
    drain(world)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token(world, 'admin')}"}

    listed = client.get("/api/v1/deliveries", headers=headers).json["items"]
    [shown] = [item for item in listed if item["event_name"] == "reconcile:TaskCompleted"]
    assert shown["status"] == "done" and shown["origin"] == "reconcile"

    assert client.post(f"/api/v1/deliveries/{shown['id']}/replay", headers=headers).status_code == 200
    drain(world)
    with uow() as session:
        assert len(session.execute(select(Invoice)).all()) == 1
        assert session.get(Delivery, shown["id"]).status == "done"


def test_each_integration_looks_back_from_its_own_last_success_minus_the_overlap(world, fake, uow) -> None:  # type: ignore[no-untyped-def]
    reconcile_source(world, "fake", now=NOW)
    later = NOW + timedelta(minutes=10)
    reconcile_source(world, "fake", now=later)

    first, second = fake.reconciled[:2], fake.reconciled[2:]
    assert {(key, tuple(projects), since) for key, projects, since, _ in first} == {
        (KEY, ("WEB",), NOW - FIRST_LOOKBACK - OVERLAP), (SECOND, ("APP",), NOW - FIRST_LOOKBACK - OVERLAP)}
    assert {(key, since, now) for key, _, since, now in second} == {
        (KEY, NOW - OVERLAP, later), (SECOND, NOW - OVERLAP, later)}


@pytest.mark.parametrize("error", [ConnectionError("jira is down"), KeyError("fields"), ValueError("bad page")])
def test_one_integration_failing_never_stops_the_others(world, fake, uow, error) -> None:  # type: ignore[no-untyped-def]
    fake.changes[KEY] = error
    fake.changes[SECOND] = [done("APP-1", integration=SECOND)]

    with pytest.raises(ReconcileFailed, match=KEY) as raised:
        reconcile_source(world, "fake", now=NOW)
    drain(world)

    assert SECOND not in str(raised.value) and "Traceback" not in str(raised.value)
    assert [row.event_name for row in synthetic(uow)] == ["reconcile:TaskCompleted"]
    with uow() as session:
        cursors = {row.integration_id: row for row in session.execute(select(SourceCursor)).scalars()}
        ids = dict(session.execute(select(Integration.key, Integration.id)).all())
        assert cursors[ids[SECOND]].last_success_at == NOW and cursors[ids[SECOND]].last_error is None
        assert cursors[ids[KEY]].last_success_at is None
        assert type(error).__name__ in cursors[ids[KEY]].last_error
    # the failed one, never successful, still looks back a whole first look-back; the other from its success
    fake.changes[KEY] = []
    later = NOW + timedelta(minutes=10)
    reconcile_source(world, "fake", now=later)
    sinces = {key: since for key, _, since, _ in fake.reconciled[2:]}
    assert sinces == {KEY: later - FIRST_LOOKBACK - OVERLAP, SECOND: NOW - OVERLAP}


def test_an_event_of_another_integration_fails_that_integration(world, fake, uow) -> None:  # type: ignore[no-untyped-def]
    fake.changes[KEY] = [done(integration=SECOND)]
    with pytest.raises(ReconcileFailed, match="another integration"):
        reconcile_source(world, "fake", now=NOW)
    assert synthetic(uow) == []


def test_integrations_disabled_or_without_mapped_projects_are_not_asked(world, fake, uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        session.execute(update(Integration).where(Integration.key == SECOND).values(enabled=False))
        catalog.upsert_integration(session, {"key": "fake-unmapped", "source": "fake", "name": "U", "secret": "x",
                                             "base_url": "https://u.example"}, actor="test")
    reconcile_source(world, "fake", now=NOW)
    assert [key for key, *_ in fake.reconciled] == [KEY]


def test_a_synthetic_delivery_whose_body_was_damaged_is_a_dead_letter(world, fake, uow) -> None:  # type: ignore[no-untyped-def]
    fake.changes[KEY] = [done()]
    reconcile_source(world, "fake", now=NOW)
    with uow() as session:
        session.execute(update(Delivery).where(Delivery.origin == "reconcile").values(body=b'{"type": "Nope"}'))
    drain(world)
    [row] = synthetic(uow)
    assert row.status == "dead" and "not a stored core event" in row.last_error


def test_a_webhook_cannot_pass_for_a_synthetic_delivery(world, fake, app, uow) -> None:  # type: ignore[no-untyped-def]
    """The origin is the inbox's own column, never read from a request: a
    delivery whose body is a stored event and whose headers say "reconcile"
    is still translated by its plugin."""
    from jalon.core.events import event_to_json

    body = json.dumps(event_to_json(done())).encode()
    answer = post(app.test_client(), body, delivery="d-forged", headers={"X-Jalon-Origin": "reconcile"})
    assert answer.status_code == 202
    drain(world)
    with uow() as session:
        row = session.execute(select(Delivery).where(Delivery.idempotency_key == "d-forged")).scalar_one()
    assert row.origin == "webhook" and row.status == "ignored"
    assert SECRET not in json.dumps(row.headers)
