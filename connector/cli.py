"""The ``jalon`` command.

Every command reads the database URL from ``--database-url`` or
``JALON_DATABASE_URL`` (default: ``sqlite:///jalon.db`` in the current folder).
A domain error ends the command with exit code 1 and its stable code, e.g.
``error [config_invalid_yaml]: ...``; nothing is half-written, since each
command is one transaction.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from jalon.core.db import database_url, make_engine, make_sessionmaker, unit_of_work
from jalon.core.errors import JalonError
from jalon.core.migrate import current, upgrade


class Context:
    def __init__(self, url: str | None):
        self.url = database_url(url)
        self._engine = None

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Any]:
        with unit_of_work(make_sessionmaker(self.engine)) as session:
            yield session


@contextmanager
def domain_errors() -> Iterator[None]:
    """Domain and database errors become one clear line and exit code 1."""
    try:
        yield
    except JalonError as error:
        click.echo(f"error [{error.code}]: {error.message}", err=True)
        sys.exit(1)
    except OperationalError as error:
        click.echo(f"error [database_unavailable]: {error.orig}", err=True)
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--database-url", envvar="JALON_DATABASE_URL", default=None, metavar="URL",
              help="SQLAlchemy URL (sqlite:///jalon.db, postgresql+psycopg://...).")
@click.version_option(package_name="jalon")
@click.pass_context
def main(ctx: click.Context, database_url: str | None) -> None:
    """jalon: finished work in your PM tools becomes invoices, followed until paid."""
    ctx.obj = Context(database_url)


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(obj: Context) -> None:
    """Migrate the database to the latest schema (safe to run again)."""
    with domain_errors():
        upgrade(obj.engine)
        click.echo(f"database at revision {current(obj.engine)}")


@db.command("current")
@click.pass_obj
def db_current(obj: Context) -> None:
    """Print the schema revision of the database."""
    with domain_errors():
        click.echo(current(obj.engine) or "empty (run `jalon db upgrade`)")


@main.group()
def token() -> None:
    """API tokens (shown once, stored hashed)."""


@token.command("create")
@click.option("--scope", type=click.Choice(["admin", "finance"]), required=True)
@click.option("--name", default=None, help="Who or what holds the token (shown in the audit trail).")
@click.pass_obj
def token_create(obj: Context, scope: str, name: str | None) -> None:
    """Create a bearer token for the admin API and print it once."""
    from jalon.core.tokens import create_token

    with domain_errors(), obj.session() as session:
        record, plain = create_token(session, name=name or f"{scope} token", scope=scope, actor="cli")
    click.echo(plain)
    click.echo(f"token {record.id} ({scope}, {record.name}): keep it now, it is not shown again", err=True)


@token.command("list")
@click.pass_obj
def token_list(obj: Context) -> None:
    """List tokens (never their secret)."""
    from sqlalchemy import select

    from jalon.core.models import ApiToken

    with domain_errors(), obj.session() as session:
        for record in session.execute(select(ApiToken).order_by(ApiToken.id)).scalars():
            state = "revoked" if record.revoked_at else "active"
            click.echo(f"{record.id}\t{record.scope}\t{state}\t{record.prefix}…\t{record.name}")


@token.command("revoke")
@click.argument("token_id", type=int)
@click.pass_obj
def token_revoke(obj: Context, token_id: int) -> None:
    """Revoke a token by its id."""
    from jalon.core.errors import NotFound
    from jalon.core.models import ApiToken
    from jalon.core.tokens import revoke

    with domain_errors(), obj.session() as session:
        record = session.get(ApiToken, token_id)
        if record is None:
            raise NotFound(f"no token {token_id}", code="token_not_found")
        revoke(session, record, actor="cli")
    click.echo(f"token {token_id} revoked")


@main.group()
def config() -> None:
    """Configuration as code (entities, clients, contracts, integrations, mappings)."""


def _channel_check():  # type: ignore[no-untyped-def]
    """The connector's check of a channel (plugin kinds, target, SSRF guard) for `config apply`."""
    from jalon.connector.channels.config import checker
    from jalon.connector.plugins import get_plugin_manager

    return checker(get_plugin_manager())


@config.command("apply")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check and report, then roll back.")
@click.pass_obj
def config_apply(obj: Context, path: Path, dry_run: bool) -> None:
    """Apply a YAML configuration file, idempotently, in one transaction."""
    from jalon.connector.configfile import load
    from jalon.core.catalog import apply_config

    class DryRun(Exception):
        pass

    with domain_errors():
        data = load(path)
        try:
            with obj.session() as session:
                summary = apply_config(session, data, actor=f"config:{path.name}",
                                       channel_check=_channel_check() if data.get("channels") else None)
                if dry_run:
                    raise DryRun
        except DryRun:
            pass
    for section, counts in summary.items():
        click.echo(f"{section:<13} {counts['created']} created, {counts['updated']} updated, "
                   f"{counts['unchanged']} unchanged")
    if dry_run:
        click.echo("dry run: nothing was written")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Processes. More than one needs PostgreSQL.")
@click.option("--threads", default=16, show_default=True, type=click.IntRange(1, 256),
              help="Threads per process: a slow client holds one thread, not the server.")
@click.option("--migrate/--no-migrate", default=True, show_default=True,
              help="Upgrade the schema before serving (turn off when several hosts start at once).")
@click.option("--worker/--no-worker", "run_worker", default=None,
              help="Process deliveries and dispatch the outbox in this process (default: yes; "
                   "JALON_RUN_WORKER). Turn off when `jalon worker` runs elsewhere.")
@click.option("--scheduler/--no-scheduler", "run_scheduler", default=None,
              help="Run the scheduled jobs from this process too (default: yes; JALON_RUN_SCHEDULER).")
@click.option("--cpu-affinity/--no-cpu-affinity", "cpu_affinity", default=None,
              help="Bind each process to one CPU, its threads with it (default: yes; JALON_CPU_AFFINITY).")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One line per request on standard output.")
@click.pass_obj
def serve(obj: Context, host: str, port: int, workers: int, threads: int, migrate: bool,
          run_worker: bool | None, run_scheduler: bool | None, cpu_affinity: bool | None, access_log: bool) -> None:
    """Serve the API and webhook intake with gunicorn (threaded workers), and by
    default a worker, the outbox dispatcher and the scheduler in each process."""
    import os

    from jalon.connector.server import run
    from jalon.core.errors import Invalid

    with domain_errors():
        if workers > 1 and obj.url.startswith("sqlite"):
            raise Invalid("--workers above 1 needs PostgreSQL: SQLite serves one process "
                          "(use --threads for concurrency)", code="sqlite_single_process")
        # the gunicorn workers read their settings from the environment after the fork
        for name, flag in (("RUN_WORKER", run_worker), ("RUN_SCHEDULER", run_scheduler),
                           ("CPU_AFFINITY", cpu_affinity)):
            if flag is not None:
                os.environ[f"JALON_{name}"] = "1" if flag else "0"
        if migrate:
            upgrade(obj.engine)
        obj.engine.dispose()
        run(database_url=obj.url, host=host, port=port, workers=workers, threads=threads, access_log=access_log)


@main.command()
@click.option("--database", "database_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keep the demo's SQLite file here (default: a temporary file, removed afterwards).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The configuration to start from (default: the bundled example).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write every invoice the demo issues here, as <number>.pdf (Factur-X).")
def demo(database_path: Path | None, config_path: Path | None, out_dir: Path | None) -> None:
    """The one-command tour: configure, complete a milestone, approve, issue, get paid."""
    from jalon.connector.demo import run_demo

    with domain_errors():
        run_demo(database_path=database_path, config_path=config_path, out_dir=out_dir, echo=click.echo)


@main.group()
def invoices() -> None:
    """Issued invoices: send them to the clients."""


@invoices.command("send")
@click.argument("numbers", nargs=-1, metavar="[NUMBER]...")
@click.option("--id", "ids", type=click.IntRange(min=1), multiple=True, metavar="ID",
              help="An invoice by its id (repeatable): for a number that two entities share.")
@click.option("--all-issued", is_flag=True, help="Every issued invoice and credit note not sent yet.")
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
@click.pass_obj
def invoices_send(obj: Context, numbers: tuple[str, ...], ids: tuple[int, ...], all_issued: bool,
                  dry_run: bool) -> None:
    """E-mail invoices to their clients' billing addresses, the PDF attached:
    each invoice once, whatever the runs. Interrupted (Ctrl-C finishes the
    message in flight), run it again: it goes on where it stopped."""
    from jalon.connector import sending
    from jalon.connector.runtime import build_runtime
    from jalon.core.errors import Invalid

    with domain_errors():
        if bool(numbers or ids) == all_issued:
            raise Invalid("give invoice numbers (or --id), or --all-issued (not both)", code="send_target_required")
        runtime = build_runtime(obj.url)
        try:
            with unit_of_work(runtime.sessionmaker) as session:
                if all_issued:
                    chosen = sending.issued_invoices(session)
                else:  # an invoice named twice (by number and by id) is sent once
                    named = sending.by_numbers(session, numbers) + sending.by_ids(session, ids)
                    chosen = list({invoice.id: invoice for invoice in named}.values())
                plan = sending.plan(session, chosen, strict=not all_issued)
                if dry_run:
                    _print_plan(plan)
                    return
            sys.exit(_send(runtime, plan))
        finally:
            runtime.dispose()


def _print_plan(plan: Any) -> None:
    for invoice in plan.to_queue:
        click.echo(f"would send {invoice.number} to {', '.join(invoice.client.billing_emails)} "
                   f"({invoice.amount_due.quantize()} due)")
    for invoice, message in plan.with_status("pending", "sending"):
        click.echo(f"would send {invoice.number} (queued {message.created_at:%Y-%m-%d %H:%M}, not sent yet)")
    for invoice, message in plan.with_status("sent"):
        click.echo(f"already sent {invoice.number} on {message.sent_at:%Y-%m-%d %H:%M} ({message.external_id})")
    for invoice, message in plan.with_status("failed"):
        click.echo(f"failed before {invoice.number}: {message.last_error} (retry: POST /api/v1/outbox/{message.id}/retry)")
    for invoice in plan.no_email:
        click.echo(f"skipped {invoice.number}: client {invoice.client.code} has no billing e-mail")
    click.echo("dry run: nothing was sent")


def _send(runtime: Any, plan: Any) -> int:
    """Queue each unqueued invoice (a transaction each), then send the queued
    ones with a progress bar; SIGINT or SIGTERM stops after the message in
    flight. Returns the exit code: 0 all sent, 1 some failed or wait for a
    retry, 130 interrupted."""
    import os
    import signal
    import socket
    import threading

    from jalon.connector import sending
    from jalon.connector.dispatcher import send_these
    from jalon.core.models import OutboxMessage

    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)}
    owner = f"cli:{socket.gethostname()}:{os.getpid()}"[:100]
    targets = {message.id: invoice.number for invoice, message in plan.with_status("pending", "sending")}
    wanted = len(plan.to_queue) + len(targets)
    try:
        for invoice in plan.to_queue:
            if stop.is_set():
                break
            [message_id] = sending.queue_each(runtime.sessionmaker, [invoice.id], actor="cli")
            targets[message_id] = invoice.number
        with click.progressbar(length=len(targets), label="Sending invoices", show_pos=True,
                               file=sys.stderr) as bar:
            outcome = send_these(runtime, list(targets), owner=owner, stopping=stop.is_set,
                                 progress=lambda message_id, status: bar.update(1))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    settled: dict[str, list[int]] = {}
    for message_id, status in outcome.items():
        settled.setdefault(status, []).append(message_id)
    sent, failed = settled.get("sent", []), sorted(settled.get("failed", []))
    waiting = settled.get("pending", []) + settled.get("sending", [])
    failed_before = plan.with_status("failed")
    click.echo(f"sent {len(sent)}, already sent {len(plan.with_status('sent'))}, "
               f"skipped without e-mail {len(plan.no_email)}, failed {len(failed) + len(failed_before)}, "
               f"to retry later {len(waiting)}")
    with unit_of_work(runtime.sessionmaker) as session:
        for message_id in failed:
            message = session.get(OutboxMessage, message_id)
            click.echo(f"failed {targets[message_id]}: {message.last_error} "
                       f"(retry: POST /api/v1/outbox/{message_id}/retry)", err=True)
    for invoice, message in failed_before:
        click.echo(f"failed before {invoice.number}: {message.last_error} "
                   f"(retry: POST /api/v1/outbox/{message.id}/retry)", err=True)
    for message_id in sorted(waiting):
        click.echo(f"not sent yet {targets[message_id]}: the dispatcher retries it, or run the command again",
                   err=True)
    for invoice in plan.no_email:
        click.echo(f"skipped {invoice.number}: client {invoice.client.code} has no billing e-mail", err=True)
    if stop.is_set():
        click.echo(f"interrupted: {wanted - len(sent)} left; run the command again to send them", err=True)
        return 130
    return 1 if failed or failed_before or waiting else 0


@main.group()
def deliveries() -> None:
    """Received webhook deliveries: list them, replay dead letters."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(["pending", "processing", "done", "ignored", "dead"]), default=None)
@click.option("--integration", default=None, help="Integration key.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@click.pass_obj
def deliveries_list(obj: Context, status: str | None, integration: str | None, limit: int) -> None:
    """List deliveries, newest first (never their body)."""
    from sqlalchemy import select

    from jalon.core.models import Delivery, Integration

    with domain_errors(), obj.session() as session:
        query = (select(Delivery, Integration.key).join(Integration, Integration.id == Delivery.integration_id)
                 .order_by(Delivery.id.desc()).limit(limit))
        if status:
            query = query.where(Delivery.status == status)
        if integration:
            query = query.where(Integration.key == integration)
        for delivery, key in session.execute(query):
            error = (delivery.last_error or "").splitlines()[0][:120] if delivery.last_error else ""
            click.echo(f"{delivery.id}\t{delivery.status}\t{key}\t{delivery.event_name or '-'}\t"
                       f"attempts={delivery.attempts}\t{delivery.received_at:%Y-%m-%dT%H:%M:%SZ}\t{error}")


@deliveries.command("replay")
@click.argument("delivery_id", type=int, required=False)
@click.option("--all-dead", is_flag=True, help="Replay every dead letter.")
@click.option("--reason", default=None, help="Why, for the audit trail.")
@click.pass_obj
def deliveries_replay(obj: Context, delivery_id: int | None, all_dead: bool, reason: str | None) -> None:
    """Put a delivery (or every dead letter) back in the queue; a worker runs it again."""
    from sqlalchemy import select

    from jalon.connector.worker import replay
    from jalon.core.errors import Invalid, NotFound
    from jalon.core.models import Delivery

    with domain_errors():
        if (delivery_id is None) == (not all_dead):
            raise Invalid("give a delivery id or --all-dead (not both)", code="replay_target_required")
        with obj.session() as session:
            if all_dead:
                targets = list(session.execute(
                    select(Delivery).where(Delivery.status == "dead").order_by(Delivery.id)).scalars())
            else:
                found = session.get(Delivery, delivery_id)
                if found is None:
                    raise NotFound(f"no delivery {delivery_id}", code="delivery_not_found")
                targets = [found]
            for delivery in targets:
                replay(session, delivery, actor="cli", reason=reason)
    for delivery in targets:
        click.echo(f"delivery {delivery.id} queued for replay")
    if not targets:
        click.echo("no dead letters")


@main.group()
def integrations() -> None:
    """Integrations with PM tools."""


@integrations.command("connect")
@click.argument("source")
@click.option("--site", required=True, metavar="URL", help="The tool's site, e.g. https://acme.atlassian.net.")
@click.option("--key", required=True, help="The integration's key (the <key> of /hooks/<source>/<key>).")
@click.option("--name", default=None, help="A display name (default: the key).")
@click.option("--email", default=None, help="Admin e-mail (Jira Cloud basic auth, with --api-token).")
@click.option("--api-token", default=None, help="Admin API token (stored write-only, never printed).")
@click.option("--pat", default=None, help="Personal access token (Jira Data Center; stored write-only).")
@click.option("--flavour", type=click.Choice(["cloud", "datacenter"]), default=None,
              help="Jira flavour (kept when omitted; cloud for a new integration).")
@click.option("--project", "projects", multiple=True, metavar="KEY",
              help="A PM project to receive events of (repeatable; default: the integration's mapped projects).")
@click.option("--public-url", default=None, metavar="URL",
              help="Where the tool reaches jalon (default: JALON_PUBLIC_URL).")
@click.option("--register/--no-register", default=True, show_default=True,
              help="Register the webhook in the tool (needs admin credentials).")
@click.pass_obj
def integrations_connect(obj: Context, source: str, site: str, key: str, name: str | None, email: str | None,
                         api_token: str | None, pat: str | None, flavour: str | None, projects: tuple[str, ...],
                         public_url: str | None, register: bool) -> None:
    """Create or update an integration with a generated secret, then register its webhook in the tool."""
    import secrets as secrets_module

    from sqlalchemy import select

    from jalon.connector.http import RemoteError, RestClient
    from jalon.connector.intake import integration_view
    from jalon.connector.plugin_types import PermanentFailure
    from jalon.connector.runtime import build_runtime
    from jalon.core import catalog
    from jalon.core.models import Integration, Mapping
    from jalon.core.types import utcnow

    with domain_errors():
        runtime = build_runtime(obj.url)
        try:
            known = {spec.name for spec in runtime.pm.hook.jalon_source_register() if spec is not None}
            if source not in known:
                click.echo(f"error [unknown_source]: no installed plugin serves {source!r} "
                           f"(installed: {', '.join(sorted(known)) or 'none'})", err=True)
                sys.exit(1)
            with unit_of_work(runtime.sessionmaker) as session:
                existing = session.execute(select(Integration).where(Integration.key == key)).scalar_one_or_none()
                settings = dict(existing.settings or {}) if existing is not None else {}
                if flavour or "flavour" not in settings:
                    settings["flavour"] = flavour or "cloud"
                credentials = dict(existing.credentials or {}) if existing is not None else {}
                credentials.update({k: v for k, v in (("email", email), ("api_token", api_token), ("pat", pat)) if v})
                data: dict[str, Any] = {"key": key, "source": source, "base_url": site.rstrip("/"),
                                        "name": name or (existing.name if existing is not None else key),
                                        "settings": settings, "credentials": credentials,
                                        "enabled": existing.enabled if existing is not None else True}
                generated = existing is None or not existing.secret
                if generated:  # an existing secret is kept: the tool already signs with it
                    data["secret"] = secrets_module.token_urlsafe(32)
                integration, created = catalog.upsert_integration(session, data, actor="cli")
                session.flush()
                mapped = sorted(session.execute(select(Mapping.pm_project).where(
                    Mapping.integration_id == integration.id)).scalars())
                view = integration_view(integration, runtime.settings, utcnow())
            click.echo(f"integration {key} {'created' if created else 'updated'} ({source}, {data['base_url']})")
            click.echo("secret: " + ("generated and stored (write-only, not shown)" if generated
                                     else "kept (write-only, not shown)"))
            webhook_url = f"{(public_url or runtime.settings.public_url).rstrip('/')}/hooks/{source}/{key}"
            chosen = list(projects) or mapped
            if not register:
                click.echo(f"webhook not registered (--no-register): point the tool at {webhook_url}")
                return
            http = RestClient(data["base_url"], timeout=runtime.settings.http_timeout_seconds, max_retries=1,
                              max_wait=5.0)
            try:
                lines = runtime.pm.hook.jalon_source_connect(
                    source=source, integration=view, webhook_url=webhook_url, projects=chosen, http=http)
            except (RemoteError, PermanentFailure) as error:
                message = str(error)
                for secret in view.secrets:
                    message = message.replace(secret, "********")
                click.echo(f"error [webhook_not_registered]: {message}", err=True)
                click.echo(f"the integration is saved; fix the cause and run the command again, "
                           f"or register {webhook_url} by hand (see the plugin's README)", err=True)
                sys.exit(1)
            finally:
                http.session.close()
            if lines is None:
                click.echo(f"the {source} plugin cannot register webhooks: point the tool at {webhook_url}")
                return
            for line in lines:
                click.echo(line)
        finally:
            runtime.dispose()


@main.command()
@click.option("--once", is_flag=True, help="Process what is due now, then exit.")
@click.option("--owner", default=None, help="Lease owner name (default: hostname:pid).")
@click.option("--scheduler/--no-scheduler", default=True, show_default=True,
              help="Also run the scheduled jobs (only one scheduler acts at a time, whatever the number of processes).")
@click.pass_obj
def worker(obj: Context, once: bool, owner: str | None, scheduler: bool) -> None:
    """Process deliveries and dispatch the outbox (and run the scheduler) until SIGTERM or SIGINT."""
    import os
    import signal
    import socket
    import threading

    from jalon.connector.dispatcher import dispatch_once
    from jalon.connector.runtime import build_runtime
    from jalon.connector.worker import process_once

    owner = (owner or f"{socket.gethostname()}:{os.getpid()}")[:100]
    with domain_errors():
        runtime = build_runtime(obj.url)
        try:
            if once:
                handled = sent = 0
                for _ in range(10_000):  # bounded: stops as soon as a round finds nothing due
                    round_handled = process_once(runtime, owner=owner)
                    round_sent = dispatch_once(runtime, owner=owner, limit=None)
                    handled, sent = handled + round_handled, sent + round_sent
                    if not round_handled and not round_sent:
                        break
                click.echo(f"{handled} deliveries processed, {sent} messages dispatched")
                return
            from jalon.connector.runners import Runners

            stopping = threading.Event()
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stopping.set())
            runners = Runners(runtime, worker=True, dispatcher=True, scheduler=scheduler, owner=owner).start()
            click.echo(f"worker {owner} running ({', '.join(runners.names)}); SIGTERM or Ctrl-C stops it", err=True)
            try:
                while not stopping.wait(1.0):
                    pass
            finally:
                runners.stop()
            click.echo(f"worker {owner} stopped", err=True)
        finally:
            runtime.dispose()


if __name__ == "__main__":  # pragma: no cover
    main()
