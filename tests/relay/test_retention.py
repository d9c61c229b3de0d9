"""Retention: processed bodies are pruned, keys live at least 7 days, dead
letters and the audit trail are never touched."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from jalon.connector.plugin.types import JobSpec
from jalon.connector.relay.retention import prune, retention_job
from jalon.connector.settings import Settings
from jalon.core.errors import Invalid
from jalon.core.models import AuditRecord, Delivery, Integration
from jalon.core.types import utcnow

from .conftest import KEY, count_deliveries, payload, post


def add(runtime, key: str, status: str, days_ago: float, body: bytes = b"{}") -> int:  # type: ignore[no-untyped-def]
    when = utcnow() - timedelta(days=days_ago)
    with runtime.sessionmaker() as session, session.begin():
        integration = session.execute(select(Integration).where(Integration.key == KEY)).scalar_one()
        row = Delivery(integration_id=integration.id, source="fake", idempotency_key=key, received_at=when,
                       headers={}, body=body, body_sha256=hashlib.sha256(body).hexdigest(), status=status,
                       attempts=1, next_attempt_at=when, outcomes=[])
        session.add(row)
        session.flush()
        return row.id


def get(runtime, delivery_id: int) -> Delivery | None:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return session.get(Delivery, delivery_id)


def run(runtime, **settings):  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session, session.begin():
        return prune(session, utcnow(), Settings(**settings))


def test_processed_bodies_are_pruned_after_the_body_retention(app, runtime):  # type: ignore[no-untyped-def]
    old_done = add(runtime, "old-done", "done", 31)
    old_ignored = add(runtime, "old-ignored", "ignored", 31)
    recent = add(runtime, "recent", "done", 29)
    old_pending = add(runtime, "old-pending", "pending", 31)
    result = run(runtime, body_retention_days=30)
    assert result == {"bodies_pruned": 2, "deliveries_deleted": 0}
    for pruned in (old_done, old_ignored):
        row = get(runtime, pruned)
        assert row.body is None and row.body_pruned_at is not None
        assert row.idempotency_key and row.body_sha256  # the key and the digest stay
    assert get(runtime, recent).body == b"{}"
    assert get(runtime, old_pending).body == b"{}"  # not processed yet: its body is still needed


def test_a_redelivery_six_days_later_is_still_a_duplicate(app, runtime):  # type: ignore[no-untyped-def]
    body = payload()
    add(runtime, "d-1", "done", 6, body=body)
    # the shortest retention allowed, and bodies pruned after a day
    assert run(runtime, body_retention_days=1, key_retention_days=7) == {"bodies_pruned": 1, "deliveries_deleted": 0}
    again = post(app.test_client(), body, delivery="d-1")
    assert again.status_code == 200 and again.get_json() == {"status": "duplicate"}
    assert count_deliveries(runtime) == 1


def test_rows_go_after_the_key_retention_but_never_dead_letters(app, runtime):  # type: ignore[no-untyped-def]
    expired_done = add(runtime, "a", "done", 8)
    expired_ignored = add(runtime, "b", "ignored", 8)
    dead = add(runtime, "c", "dead", 400)
    kept = add(runtime, "d", "done", 6)
    result = run(runtime, body_retention_days=1, key_retention_days=7)
    assert result == {"bodies_pruned": 1, "deliveries_deleted": 2}
    assert get(runtime, expired_done) is None and get(runtime, expired_ignored) is None
    assert get(runtime, dead).body == b"{}" and get(runtime, dead).status == "dead"
    assert get(runtime, kept) is not None


def test_the_audit_trail_is_never_pruned(app, runtime):  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        before = session.scalar(select(func.count()).select_from(AuditRecord))
    add(runtime, "a", "done", 400)
    run(runtime, body_retention_days=1, key_retention_days=7)
    with runtime.sessionmaker() as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == before > 0


def test_keys_cannot_be_kept_less_than_seven_days():  # type: ignore[no-untyped-def]
    with pytest.raises(Invalid) as error:
        Settings(key_retention_days=6)
    assert error.value.code == "invalid_setting"


def test_retention_is_a_scheduled_job(app, runtime):  # type: ignore[no-untyped-def]
    add(runtime, "old", "done", 40)
    assert isinstance(retention_job, JobSpec) and retention_job.name == "retention"
    context = SimpleNamespace(runtime=runtime, now=utcnow())
    assert retention_job(context) == {"bodies_pruned": 1, "deliveries_deleted": 0}
    assert retention_job.run(context) == {"bodies_pruned": 0, "deliveries_deleted": 0}  # idempotent


def test_outbox_messages_outlive_the_deliveries_that_caused_them(app, runtime):  # type: ignore[no-untyped-def]
    from jalon.connector.outbox.enqueue import enqueue
    from jalon.core.models import OutboxMessage

    expired = add(runtime, "a", "done", 100)
    with runtime.sessionmaker() as session, session.begin():
        enqueue(session, channel="email", kind="milestone_done", idempotency_key="m-1", destination={},
                payload={}, delivery_id=expired)
    assert run(runtime)["deliveries_deleted"] == 1
    with runtime.sessionmaker() as session:
        [message] = session.execute(select(OutboxMessage)).scalars()
    assert message.idempotency_key == "m-1" and message.delivery_id is None
