"""``jalon rates``: the ECB's euro reference rates, for invoices in other currencies."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import BinaryIO

import click
from jalon.connector.cli.common import Context, domain_errors
from jalon.connector.cli.jobs import table

HEADERS = ("DAY", "CURRENCY", "RATE", "SOURCE", "LOADED AT")
DAY = click.DateTime(formats=["%Y-%m-%d"])


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.group()
def rates() -> None:
    """Exchange rates (units of a currency for 1 EUR) that convert a foreign invoice's VAT into euros."""


@rates.command("load")
@click.argument("file", type=click.File("rb"))
@click.option("--replace", is_flag=True, help="Overwrite the rates an admin typed too (kept otherwise).")
@click.pass_obj
def rates_load(obj: Context, file: BinaryIO, replace: bool) -> None:
    """Load the ECB's eurofxref-hist.csv (or eurofxref.csv, or an SDMX CSV of
    data-api.ecb.europa.eu), downloaded from the ECB; ``-`` reads standard input.
    All or nothing; loading the same file again changes nothing."""
    from jalon.core import fx

    with domain_errors():
        rows = fx.parse_ecb_csv(fx.decode(file.read()))
        with obj.session() as session:
            result = fx.load(session, rows, replace=replace, actor="cli")
    click.echo(f"added {result.added}, updated {result.updated}, unchanged {result.unchanged}, "
               f"kept manual {result.skipped_manual}")


@rates.command("set", context_settings={"ignore_unknown_options": True})  # a negative RATE is refused, not an option
@click.argument("currency")
@click.argument("day", type=DAY, metavar="DAY")
@click.argument("rate")
@click.pass_obj
def rates_set(obj: Context, currency: str, day: datetime, rate: str) -> None:
    """Type the rate of CURRENCY on DAY (YYYY-MM-DD): RATE units for 1 EUR, as the ECB writes it.
    Loads keep it unless run with --replace."""
    from jalon.core import fx

    with domain_errors(), obj.session() as session:
        found, created = fx.set_rate(session, currency.upper(), day.date(), rate, actor="cli")
        shown = f"{found.currency} {found.day} {_rate(found.rate)}"
    click.echo(f"{shown} ({'added' if created else 'set'}, manual)")


@rates.command("delete")
@click.argument("currency")
@click.argument("day", type=DAY, metavar="DAY")
@click.pass_obj
def rates_delete(obj: Context, currency: str, day: datetime) -> None:
    """Delete the rate of CURRENCY on DAY. Issued invoices keep the rate they used."""
    from jalon.core import fx

    with domain_errors(), obj.session() as session:
        fx.delete_rate(session, currency.upper(), day.date(), actor="cli")
    click.echo(f"{currency.upper()} {day.date()} deleted")


@rates.command("list")
@click.option("--currency", default=None, help="One currency (USD, GBP...).")
@click.option("--since", type=DAY, default=None, help="From this day (YYYY-MM-DD), included.")
@click.option("--until", type=DAY, default=None, help="Up to this day (YYYY-MM-DD), included.")
@click.pass_obj
def rates_list(obj: Context, currency: str | None, since: datetime | None, until: datetime | None) -> None:
    """The rates, newest day first. Times in UTC."""
    from jalon.core import fx

    with domain_errors(), obj.session() as session:
        rows = [(str(found.day), found.currency, _rate(found.rate), found.source, f"{found.loaded_at:%Y-%m-%d %H:%M}Z")
                for found in fx.list_rates(session, currency.upper() if currency else None, _day(since), _day(until))]
    if not rows:
        click.echo("no rates: load the ECB's with `jalon rates load eurofxref-hist.csv`", err=True)
        return
    for line in table(HEADERS, rows):
        click.echo(line)


def _rate(value: Decimal) -> str:
    # PostgreSQL hands back NUMERIC(24, 6): "1.084200" is shown "1.0842" on every engine
    return format(value.normalize(), "f")
