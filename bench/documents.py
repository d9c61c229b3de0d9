"""Documents benchmark: rendering and storing the Factur-X PDF and XML of
issued invoices.

    .venv/bin/python bench/documents.py                  # 500 invoices of 10 lines
    .venv/bin/python bench/documents.py --invoices 100 --lines 3 --processes 4

In a temporary SQLite database it creates the drafts, issues them one by one
(the numbering lock keeps issuing serial; it is fast), then renders and stores
their documents twice, each time in a database of its own so that every
invoice really is rendered:

1. **single process**: one process renders and stores them all;
2. **all cores**: ``--processes`` processes (default ``os.cpu_count()``), each
   rendering a share, forked after the template, stylesheet, fonts and
   schema are loaded once, as a server process would have them.

Each invoice goes through :func:`jalon.core.documents.ensure_committed`: read
in a short transaction, rendered with no transaction open, stored in a second
one. It prints invoices/s and elapsed seconds for each phase, the peak RSS
(``resource.getrusage``) of this process and of the rendering children, and
whether the target holds: the rendering of 500 invoices finishes in under 60 s
on a 2-core machine. It is a script, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jalon.core import catalog, documents, invoicing  # noqa: E402
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from jalon.core.invoicing import LineSpec  # noqa: E402
from jalon.core.migrate import upgrade  # noqa: E402
from jalon.core.vat import Vat  # noqa: E402
from tests.factories import CLIENT, ENTITY  # noqa: E402

TARGET_SECONDS = 60
TARGET_INVOICES = 500
ISSUE_DATE = date(2026, 11, 2)


def prepare(url: str, invoices: int, lines: int) -> tuple[list[int], float]:
    """A migrated database with ``invoices`` issued invoices; the seconds issuing took."""
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with unit_of_work(factory) as session:
        catalog.apply_config(session, {"entities": [ENTITY], "clients": [CLIENT]}, actor="bench")
    ids = []
    with unit_of_work(factory) as session:
        entity, client = catalog.get_entity(session, "atelier"), catalog.get_client(session, "lumiere")
        for n in range(invoices):
            specs = [
                LineSpec(f"Prestation {n}-{i} : développement et recette", Decimal(i % 4 + 1),
                         Decimal("85.50") + i, "HUR", Vat("S", Decimal("20") if i % 3 else Decimal("10")))
                for i in range(lines)
            ]
            ids.append(invoicing.create_draft(session, entity=entity, client=client, lines=specs, actor="bench").id)
    started = time.perf_counter()
    for invoice_id in ids:
        with unit_of_work(factory) as session:
            invoicing.issue(session, invoice_id, actor="bench", issue_date=ISSUE_DATE)
    issuing = time.perf_counter() - started
    engine.dispose()
    return ids, issuing


def render_all(url: str, ids: list[int]) -> int:
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    for invoice_id in ids:
        documents.ensure_committed(factory, invoice_id)
    engine.dispose()
    return len(ids)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _child(args: tuple[str, list[int]]) -> tuple[int, int]:
    url, ids = args
    done = render_all(url, ids)
    return done, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def warm_up(url: str, invoice_id: int) -> None:
    """Load what a running server has loaded already: template, stylesheet,
    fonts, the EN 16931 schema (rendering one invoice, outside the timings)."""
    from jalon.core.documents import view
    from jalon.core.models import Invoice

    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        invoice = session.get(Invoice, invoice_id)
        documents.render(invoice)
        view.build(invoice)
    engine.dispose()


def stored_count(url: str) -> int:
    from sqlalchemy import func, select

    from jalon.core.models import InvoiceDocument

    engine = make_engine(url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        count = session.scalar(select(func.count()).select_from(InvoiceDocument))
    engine.dispose()
    return count or 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=TARGET_INVOICES)
    parser.add_argument("--lines", type=int, default=10)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="jalon-bench-documents-") as folder:
        single_url, multi_url = f"sqlite:///{folder}/single.db", f"sqlite:///{folder}/multi.db"
        print(f"documents bench: {args.invoices} invoices of {args.lines} lines, SQLite, {cores} CPU(s)")
        ids, issuing = prepare(single_url, args.invoices, args.lines)
        multi_ids, _ = prepare(multi_url, args.invoices, args.lines)
        print(f"issuing (serial, numbering lock): {len(ids) / issuing:8.1f} invoices/s  {issuing:6.1f} s")
        warm_up(single_url, ids[0])

        started, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
        render_all(single_url, ids)
        single, single_cpu = time.perf_counter() - started, _cpu(resource.RUSAGE_SELF) - cpu
        assert stored_count(single_url) == 2 * len(ids)
        print(f"render+store, 1 process:          {len(ids) / single:8.1f} invoices/s  {single:6.1f} s  "
              f"(CPU {1000 * single_cpu / len(ids):.0f} ms/invoice)")

        shares = [(multi_url, multi_ids[i::args.processes]) for i in range(args.processes)]
        started, cpu = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
        pool = multiprocessing.get_context("fork").Pool(args.processes)
        results = pool.map(_child, shares)
        pool.close()
        pool.join()
        multi, multi_cpu = time.perf_counter() - started, _cpu(resource.RUSAGE_CHILDREN) - cpu
        assert stored_count(multi_url) == 2 * len(multi_ids)
        print(f"render+store, {args.processes} processes:        {len(multi_ids) / multi:8.1f} invoices/s  "
              f"{multi:6.1f} s  (CPU {1000 * multi_cpu / len(multi_ids):.0f} ms/invoice)")

        parent_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_rss = max(rss for _done, rss in results) / 1024
        print(f"peak RSS: this process {parent_rss:.0f} MiB, largest rendering child {child_rss:.0f} MiB")
        projected = multi * TARGET_INVOICES / len(multi_ids)
        verdict = "holds" if projected < TARGET_SECONDS else "does NOT hold"
        print(f"target (500 invoices rendered in < {TARGET_SECONDS} s on 2 cores): {verdict} here "
              f"({projected:.1f} s for 500 with {args.processes} processes on {cores} CPU(s))")
        # what two idle cores would take: the CPU the work needs, shared by two
        print(f"CPU needed for 500 on 2 idle cores: {multi_cpu * TARGET_INVOICES / len(multi_ids) / 2:.1f} s "
              f"each (load average now {os.getloadavg()[0]:.1f}: other processes share these cores)")


if __name__ == "__main__":
    main()
