"""``jalon db``: the database schema."""

from __future__ import annotations


import click

from jalon.core.migrate import current, upgrade
from jalon.connector.cli.common import Context, domain_errors


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Context) -> None:
    """Migrate the database to the latest schema (safe to run again)."""
    with domain_errors():
        upgrade(obj.schema_engine)
        click.echo(f"database at revision {current(obj.schema_engine)}")


@db.command("current")
@click.pass_obj
def db_current(obj: Context) -> None:
    """Print the schema revision of the database."""
    with domain_errors():
        click.echo(current(obj.schema_engine) or "empty (run `jalon db upgrade`)")
