"""``jalon jobs``: the scheduled jobs, their last run and next tick."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import click

from jalon.connector.cli.common import Context, domain_errors

HEADERS = ("JOB", "EVERY", "LAST RUN", "AT", "NEXT TICK", "ERROR")
ERROR_WIDTH = 100


@click.group()
def jobs() -> None:
    """Scheduled jobs (the connector's and the plugins')."""


@jobs.command("list")
@click.pass_obj
def jobs_list(obj: Context) -> None:
    """Every scheduled job: how often, its last run (status, time, error), its next tick. Times in UTC."""
    from jalon.connector.jobs.overview import first_line, job_statuses
    from jalon.connector.jobs.scheduler import collect_jobs
    from jalon.connector.runtime import build_runtime
    from jalon.core.db import unit_of_work
    from jalon.core.errors import Invalid
    from jalon.core.types import utcnow

    with domain_errors():
        runtime = build_runtime(obj.url)
        try:
            try:
                specs = collect_jobs(runtime)
            except ValueError as error:  # two plugins gave a job the same name...
                raise Invalid(str(error), code="scheduler_jobs_invalid") from None
            with unit_of_work(runtime.sessionmaker) as session:
                rows = [
                    (status.name, every(status.interval),
                     status.last_run.status if status.last_run else "never",
                     when(status.last_run.started_at) if status.last_run else "-",
                     when(status.next_tick),
                     _cut(first_line(status.last_run.error) if status.last_run else None))
                    for status in job_statuses(session, specs, utcnow())
                ]
        finally:
            runtime.dispose()
    for line in table(HEADERS, rows):
        click.echo(line)


def every(interval: timedelta) -> str:
    """3600 s -> "1h", 90 s -> "1m30s"."""
    seconds = int(interval.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or f"{interval.total_seconds()}s"


def when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}Z"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    return ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
            for row in (headers, *rows)]


def _cut(error: str | None) -> str:
    if not error:
        return ""
    return error if len(error) <= ERROR_WIDTH else error[:ERROR_WIDTH - 3] + "..."
