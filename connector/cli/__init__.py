"""The ``jalon`` command.

Every command reads the database URL from ``--database-url`` or
``JALON_DATABASE_URL`` (default: ``sqlite:///jalon.db`` in the current folder).
A domain error ends the command with exit code 1 and its stable code, e.g.
``error [config_invalid_yaml]: ...``; nothing is half-written, since each
command is one transaction.
"""

from __future__ import annotations

import click

from jalon.connector.cli import config, db, deliveries, integrations, invoices, jobs, rates, run, secrets, tokens
from jalon.connector.cli.common import Context


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="JALON_DATABASE_URL", default=None, metavar="URL",
              help="SQLAlchemy URL (sqlite:///jalon.db, postgresql+psycopg://...).")
@click.version_option(package_name="jalon")
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """jalon: finished work in your PM tools becomes invoices, followed until paid."""
    ctx.obj = Context(database_url)


for command in (db.db, tokens.token, config.config, run.serve, run.demo, run.worker, invoices.invoices,
                deliveries.deliveries, integrations.integrations, jobs.jobs, secrets.secrets, rates.rates):
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
