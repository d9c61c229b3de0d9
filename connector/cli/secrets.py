"""``jalon secrets``: the keys that seal secrets at rest (``JALON_SECRET_KEYS``)."""

from __future__ import annotations

import click

from jalon.connector.cli.common import Context, domain_errors
from jalon.core import secrets as sealing
from jalon.core.db import rewrite_sqlite_file
from jalon.core.models import Base


@click.group()
def secrets() -> None:
    """The keys that seal webhook secrets, credentials and channel targets in the database."""


@secrets.command("generate-key")
def generate_key() -> None:
    """Print a new key, for JALON_SECRET_KEYS (keep it, and back it up, with the database's backups)."""
    click.echo(sealing.generate_key())


@secrets.command("rotate-key")
@click.option("--dry-run", is_flag=True, help="Check that every secret opens with the keys and count; write nothing.")
@click.pass_obj
def rotate_key(obj: Context, dry_run: bool) -> None:
    """Seal every secret with the first key of JALON_SECRET_KEYS.

    To change keys: put the new key first (JALON_SECRET_KEYS=new,old), run
    this, then drop the old one. Values stored in clear (before sealing
    existed) are sealed too. One transaction; running it again changes
    nothing."""
    with domain_errors():
        with obj.session() as session:
            counts = sealing.reseal(session, Base.metadata, dry_run=dry_run)
        for count in counts:
            click.echo(f"{count.column}: {count.sealed} sealed from clear, {count.resealed} re-sealed, "
                       f"{count.unchanged} unchanged")
        changed = sum(count.sealed + count.resealed for count in counts)
        if dry_run:
            click.echo(f"{changed} secrets to seal with the first key (dry run: nothing written)")
            return
        click.echo(f"{changed} secrets sealed with the first key; the other keys may now be dropped")
        if changed and rewrite_sqlite_file(obj.engine):
            click.echo("database file rewritten (VACUUM): what they replaced no longer lingers in free pages")
