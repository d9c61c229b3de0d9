"""The time ledger follows a PM tool's worklogs: logged, changed, deleted, with
replays and late deliveries changing nothing."""

from datetime import datetime

import pytest
from sqlalchemy import select

from jalon.core.db import unit_of_work
from jalon.core.events import TimeLogged
from jalon.core.models import AuditRecord, TimeEntry
from jalon.core.rules import apply_event

from tests.factories import at, log_changed, log_deleted, logged


def _apply(Session, *events):  # noqa: N803
    outcomes = []
    for event in events:
        with unit_of_work(Session) as session:
            outcomes.append(apply_event(session, event))
    return outcomes


def _ledger(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        rows = session.execute(select(TimeEntry.worklog_ref, TimeEntry.seconds, TimeEntry.deleted)
                               .order_by(TimeEntry.id)).all()
        return [tuple(row) for row in rows]


def _time_actions(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        return list(session.execute(select(AuditRecord.action).where(AuditRecord.subject_type == "time_entries")
                                    .order_by(AuditRecord.id)).scalars())


def test_logged_time_enters_the_ledger_against_the_mapped_contract(world):
    [outcome] = _apply(world, logged("WL-1", seconds=5400, description="Intégration"))
    assert outcome.effect == "time_logged"
    with unit_of_work(world) as session:
        entry = session.get(TimeEntry, outcome.time_entry_id)
        assert (entry.seconds, entry.task_ref, entry.person_ref, entry.description) == (
            5400, "WEB-5", "bob", "Intégration")
        assert entry.contract_id is not None
    assert _time_actions(world) == ["time_entry.logged"]


def test_a_changed_worklog_takes_its_new_value_and_the_ledger_gives_the_change(world):
    _, changed = _apply(world, logged("WL-1", seconds=3600), log_changed("WL-1", seconds=5400))
    assert changed.effect == "time_changed"
    assert changed.extra == {"delta_seconds": 1800}
    assert _ledger(world) == [("WL-1", 5400, False)]
    with unit_of_work(world) as session:
        record = session.execute(
            select(AuditRecord).where(AuditRecord.action == "time_entry.changed")).scalar_one()
        assert record.details == {"seconds_before": 3600, "seconds": 5400}


def test_a_deleted_worklog_is_marked_deleted_not_forgotten(world):
    _, deleted = _apply(world, logged("WL-1"), log_deleted("WL-1"))
    assert deleted.effect == "time_deleted"
    assert _ledger(world) == [("WL-1", 3600, True)]
    assert _time_actions(world) == ["time_entry.logged", "time_entry.deleted"]


def test_a_delete_arriving_before_the_creation_leaves_a_tombstone(world):
    _apply(world, log_deleted("WL-1", minute=2))
    assert _ledger(world) == [("WL-1", 0, True)]
    late, newer = _apply(world, logged("WL-1", seconds=3600, minute=0), logged("WL-1", seconds=3600, minute=3))
    assert (late.effect, newer.effect) == ("ignored", "ignored")
    assert _ledger(world) == [("WL-1", 0, True)]


def test_a_replayed_time_log_changes_nothing(world):
    first, replay = _apply(world, logged("WL-1"), logged("WL-1"))
    assert (first.effect, replay.effect) == ("time_logged", "unchanged")
    assert _ledger(world) == [("WL-1", 3600, False)]
    assert _time_actions(world) == ["time_entry.logged"]


def test_an_older_change_arriving_late_changes_nothing(world):
    _apply(world, logged("WL-1", minute=0), log_changed("WL-1", seconds=7200, minute=5))
    [late] = _apply(world, log_changed("WL-1", seconds=1800, minute=3))
    assert late.effect == "ignored"
    assert _ledger(world) == [("WL-1", 7200, False)]


def test_a_replayed_delete_changes_nothing(world):
    _apply(world, logged("WL-1"), log_deleted("WL-1"))
    [replay] = _apply(world, log_deleted("WL-1"))
    assert replay.effect == "unchanged"
    assert _time_actions(world) == ["time_entry.logged", "time_entry.deleted"]


def test_time_logged_on_an_unmapped_project_is_ignored(world):
    event = TimeLogged(integration="jira-atelier", project_ref="OPS", task_ref="OPS-1", worklog_ref="WL-9",
                       seconds=60, occurred_at=at())
    [outcome] = _apply(world, event)
    assert outcome.effect == "ignored"
    assert _ledger(world) == []


def test_an_event_without_a_timezone_is_refused():
    with pytest.raises(ValueError):
        logged(occurred_at=datetime(2026, 11, 2, 10, 0))


@pytest.mark.parametrize("seconds", [-1, 1.5, True])
def test_a_duration_must_be_a_whole_non_negative_number_of_seconds(seconds):
    with pytest.raises(ValueError):
        logged(seconds=seconds)


def _listed(*refs: str, minute: int = 10):  # type: ignore[no-untyped-def]
    from jalon.core.events import TaskTimeLogs

    return TaskTimeLogs(integration="jira-atelier", project_ref="WEB", task_ref="WEB-5", occurred_at=at(minute),
                        worklog_refs=refs, actor="poll")


def test_a_worklog_the_tool_no_longer_lists_is_deleted(world):
    _apply(world, logged("WL-1", seconds=600), logged("WL-2", seconds=900, minute=1))
    [outcome] = _apply(world, _listed("WL-2"))
    assert outcome.effect == "time_deleted" and outcome.extra == {"deleted": ["WL-1"]}
    assert _ledger(world) == [("WL-1", 600, True), ("WL-2", 900, False)]
    [again] = _apply(world, _listed("WL-2", minute=11))
    assert again.effect == "unchanged"


def test_a_list_older_than_a_worklogs_last_change_leaves_it_alone(world):
    _apply(world, logged("WL-3", seconds=600, minute=20))
    [outcome] = _apply(world, _listed(minute=10))  # taken before WL-3 was logged
    assert outcome.effect == "unchanged"
    assert _ledger(world) == [("WL-3", 600, False)]


def test_a_task_listed_with_no_worklog_deletes_all_of_them_and_survives_its_codec(world):
    from jalon.core.events import event_from_json, event_to_json

    event = _listed()
    assert event_from_json(event_to_json(event)) == event
    _apply(world, logged("WL-4", seconds=60))
    [outcome] = _apply(world, event)
    assert outcome.extra == {"deleted": ["WL-4"]}
