"""The documents.render job: issued invoices without documents get them,
in bounded batches, once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from jalon.connector.outbox import rendering
from jalon.connector.jobs.scheduler import Scheduler, collect_jobs
from jalon.core.models import InvoiceDocument
from tests import factories

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)


def rendered_invoices(uow) -> list[int]:  # type: ignore[no-untyped-def]
    with uow() as session:
        return list(session.execute(select(InvoiceDocument.invoice_id).group_by(InvoiceDocument.invoice_id)
                                    .having(func.count() == 2).order_by(InvoiceDocument.invoice_id)).scalars())


def run(runtime, minute: int):  # type: ignore[no-untyped-def]
    record = Scheduler(runtime, jobs=[rendering.documents_job]).run_job(
        rendering.documents_job, now=T0 + timedelta(minutes=minute))
    assert record is not None and record.status == "ok", record
    return record.result


def test_the_job_is_a_builtin_run_every_minute(runtime):
    [job] = [job for job in collect_jobs(runtime) if job.name == "documents.render"]
    assert job.interval == timedelta(minutes=1)


def test_issued_invoices_without_documents_get_them_in_bounded_batches_once(runtime, world, uow, monkeypatch):
    monkeypatch.setattr(rendering, "RENDER_BATCH", 2)
    monkeypatch.setattr(rendering, "_set_aside", {})
    with uow() as session:
        ids = [factories.issued(session).id for _ in range(3)]
        factories.draft(session)  # a draft has no documents
    assert run(runtime, 0) == {"rendered": 2, "failed": [], "set_aside": 0}
    assert rendered_invoices(uow) == ids[:2]
    assert run(runtime, 1) == {"rendered": 1, "failed": [], "set_aside": 0}
    assert run(runtime, 2) == {"rendered": 0, "failed": [], "set_aside": 0}
    assert rendered_invoices(uow) == ids


def test_an_invoice_that_cannot_be_rendered_does_not_hold_the_others_back(runtime, world, uow, monkeypatch):
    with uow() as session:
        broken, fine = factories.issued(session).id, factories.issued(session).id
    real = rendering.ensure_documents

    def ensure(factory, invoice_id):  # type: ignore[no-untyped-def]
        if invoice_id == broken:
            raise RuntimeError("a template bug")
        return real(factory, invoice_id)

    monkeypatch.setattr(rendering, "ensure_documents", ensure)
    monkeypatch.setattr(rendering, "_set_aside", {})
    assert run(runtime, 0) == {"rendered": 1, "failed": [broken], "set_aside": 1}
    assert rendered_invoices(uow) == [fine]


def test_failures_at_the_head_of_the_queue_are_set_aside_and_tried_again_later(runtime, world, uow, monkeypatch):
    monkeypatch.setattr(rendering, "RENDER_BATCH", 2)
    monkeypatch.setattr(rendering, "_set_aside", {})
    with uow() as session:
        ids = [factories.issued(session).id for _ in range(4)]
    broken = set(ids[:2])
    real = rendering.ensure_documents

    def ensure(factory, invoice_id):  # type: ignore[no-untyped-def]
        if invoice_id in broken:
            raise RuntimeError("a template bug")
        return real(factory, invoice_id)

    monkeypatch.setattr(rendering, "ensure_documents", ensure)
    assert run(runtime, 0) == {"rendered": 0, "failed": ids[:2], "set_aside": 2}
    # the next run takes the invoices behind them
    assert run(runtime, 1) == {"rendered": 2, "failed": [], "set_aside": 2}
    assert rendered_invoices(uow) == ids[2:]
    assert run(runtime, 2) == {"rendered": 0, "failed": [], "set_aside": 2}
    # the bug fixed, an hour later they are tried again
    broken.clear()
    assert run(runtime, 61) == {"rendered": 2, "failed": [], "set_aside": 0}
    assert rendered_invoices(uow) == ids
