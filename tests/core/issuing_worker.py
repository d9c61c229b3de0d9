"""A worker process for the concurrent-issuing test (imported by spawned children,
so it lives in a module of its own, not in the test file)."""

from __future__ import annotations

from datetime import date

from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.errors import Conflict
from jalon.core.invoicing import issue


def issue_all(url: str, invoice_ids: list[int], issue_date: date, name: str, start, results) -> None:  # type: ignore[no-untyped-def]
    """Try to issue every draft of ``invoice_ids``; another worker may have been
    first, which is the only refusal accepted. Reports what this worker issued."""
    engine = make_engine(url)
    Session = make_sessionmaker(engine)  # noqa: N806
    issued: list[int] = []
    conflicts = 0
    try:
        with engine.connect():
            pass  # connected before the start, so that every worker races from the first draft
        start.wait(timeout=60)  # a barrier: all workers and the parent pass it together
        for invoice_id in invoice_ids:
            try:
                with unit_of_work(Session) as session:
                    issue(session, invoice_id, actor=name, issue_date=issue_date)
                issued.append(invoice_id)
            except Conflict as error:
                if error.code != "invoice_not_draft":
                    raise
                conflicts += 1
        results.put((name, issued, conflicts, None))
    except BaseException as error:  # the parent must hear of any failure, not wait for it
        results.put((name, issued, conflicts, f"{type(error).__name__}: {error}"))
    finally:
        engine.dispose()
