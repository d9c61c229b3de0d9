"""``jalon config apply``: configuration as code."""

from __future__ import annotations

from pathlib import Path

import click

from jalon.connector.cli.common import Context, domain_errors


@click.group()
def config() -> None:
    """Configuration as code (entities, clients, contracts, integrations, mappings)."""


@config.command("apply")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and report, then roll back.")
@click.pass_obj
def config_apply(obj: Context, path: Path, dry_run: bool) -> None:
    """Apply a YAML configuration file, idempotently, in one transaction.

    Each item is checked as the admin API checks a PUT (the same schemas, a
    plugin's settings schema for an integration), then by the catalog's domain
    rules; the first refusal names the field's path and nothing is written."""
    from jalon.connector.cli.integrations import plugin_manager
    from jalon.connector.configfile import apply_file
    from jalon.connector.outbox.notify import finance_channel_warning

    class DryRun(Exception):
        pass

    with domain_errors():
        pm = plugin_manager()
        try:
            with obj.session() as session:
                summary = apply_file(session, path, pm, actor=f"config:{path.name}")
                warning = finance_channel_warning(session)
                if dry_run:
                    raise DryRun
        except DryRun:
            pass
    for section, counts in summary.items():
        click.echo(f"{section:<13} {counts['created']} created, {counts['updated']} updated, "
                   f"{counts['unchanged']} unchanged")
    if dry_run:
        click.echo("dry run: nothing was written")
    if warning:
        click.echo(f"warning: {warning}", err=True)
