"""Invoice numbers stay continuous, chronological and unique when several
processes issue at once (row lock on PostgreSQL, BEGIN IMMEDIATE on SQLite)."""

from __future__ import annotations

import multiprocessing
import queue
import time
from datetime import date

import pytest
from sqlalchemy import select

from jalon.core import catalog
from jalon.core.db import unit_of_work
from jalon.core.invoicing import LineSpec, create_draft
from jalon.core.models import AuditRecord, Invoice, InvoiceSequence

from tests.core.issuing_worker import issue_all
from tests.factories import line

DRAFTS = 500
WORKERS = 4
ISSUE_DATE = date(2026, 11, 2)
DEADLINE_SECONDS = 120


def _prepare_drafts(Session, count: int) -> list[int]:  # noqa: N803
    with unit_of_work(Session) as session:
        entity = catalog.get_entity(session, "atelier")
        client = catalog.get_client(session, "lumiere")
        lines: list[LineSpec] = [line("100.00")]
        ids = [create_draft(session, entity=entity, client=client, lines=lines, actor="test").id
               for _ in range(count)]
    return ids


def _race(url: str, ids: list[int]) -> tuple[dict[str, list[int]], int, float]:
    """Every worker tries to issue every draft. Workers 0 and 2 walk the drafts from
    the first, 1 and 3 from the middle: pairs race for the same drafts, and
    the pairs for the sequence."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS + 1)
    results = context.Queue()
    half = len(ids) // 2
    processes = [
        context.Process(
            target=issue_all,
            args=(url, ids[(k % 2) * half:] + ids[:(k % 2) * half], ISSUE_DATE, f"worker-{k}", start, results),
            daemon=True,
        )
        for k in range(WORKERS)
    ]
    issued: dict[str, list[int]] = {}
    conflicts = 0
    errors = []
    try:
        for process in processes:
            process.start()
        start.wait(timeout=60)
        began = time.monotonic()
        deadline = began + DEADLINE_SECONDS
        while len(issued) + len(errors) < WORKERS:
            try:
                name, done, refused, error = results.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"workers did not finish within {DEADLINE_SECONDS} s")
            if error:
                errors.append(f"{name}: {error}")
            else:
                issued[name] = done
                conflicts += refused
        elapsed = time.monotonic() - began
    finally:
        for process in processes:
            process.join(timeout=10)
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        results.close()
    assert errors == []
    shares = ", ".join(f"{name} {len(done)}" for name, done in sorted(issued.items()))
    print(f"\n{len(ids)} drafts, {WORKERS} processes: issued in {elapsed:.1f} s ({shares}), {conflicts} lost races")
    return issued, conflicts, elapsed


@pytest.mark.slow
def test_concurrent_processes_issue_every_draft_once_with_gap_free_numbers(world, db_url):
    ids = _prepare_drafts(world, DRAFTS)
    issued, _conflicts, _elapsed = _race(db_url, ids)

    by_worker = [set(done) for done in issued.values()]
    assert sum(len(done) for done in by_worker) == len(ids), "a draft was issued twice"
    assert set().union(*by_worker) == set(ids), "a draft was never issued"

    with unit_of_work(world) as session:
        invoices = session.execute(select(Invoice).order_by(Invoice.sequence_no)).scalars().all()
        assert {i.status for i in invoices} == {"issued"}
        assert [i.sequence_no for i in invoices] == list(range(1, len(ids) + 1))
        assert [i.number for i in invoices] == [f"F2026-{n:05d}" for n in range(1, len(ids) + 1)]
        # issue order is number order: each was issued while holding the sequence
        issued_at = [i.issued_at for i in invoices]
        assert issued_at == sorted(issued_at)
        issue_dates = [i.issue_date for i in invoices]
        assert issue_dates == sorted(issue_dates)
        # whoever issued an invoice is the one who says so
        assert all(i.id in issued[i.issued_by] for i in invoices)
        records = session.execute(
            select(AuditRecord).where(AuditRecord.action == "invoice.issued").order_by(AuditRecord.id)
        ).scalars().all()
        assert [r.details["number"] for r in records] == [i.number for i in invoices]
        sequence = session.execute(select(InvoiceSequence)).scalar_one()
        assert (sequence.year, sequence.last_no, sequence.last_issue_date) == (2026, len(ids), ISSUE_DATE)
