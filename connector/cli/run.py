"""The commands that run jalon: ``serve``, ``worker`` and the ``demo``."""

from __future__ import annotations

from pathlib import Path

import click

from jalon.core.migrate import upgrade
from jalon.connector.cli.common import Context, domain_errors


@click.command()
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

    from jalon.connector.web.server import run
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
        _check_secret_keys(obj.engine)
        obj.engine.dispose()
        run(database_url=obj.url, host=host, port=port, workers=workers, threads=threads, access_log=access_log)


@click.command()
@click.option("--database", "database_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Keep the demo's SQLite file here (default: a temporary file, removed afterwards).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The configuration to start from (default: the bundled example).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write every invoice the demo issues here, as <number>.pdf (Factur-X).")
def demo(database_path: Path | None, config_path: Path | None, out_dir: Path | None) -> None:
    """The one-command tour: configure, complete a milestone, approve, issue, get paid."""
    from jalon.connector.demo.tour import run_demo

    with domain_errors():
        run_demo(database_path=database_path, config_path=config_path, out_dir=out_dir, echo=click.echo)


@click.command()
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

    from jalon.connector.outbox.dispatcher import dispatch_once
    from jalon.connector.runtime import build_runtime
    from jalon.connector.relay.worker import process_once

    owner = (owner or f"{socket.gethostname()}:{os.getpid()}")[:100]
    with domain_errors():
        runtime = build_runtime(obj.url)
        try:
            _check_secret_keys(runtime.engine)
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
            from jalon.connector.jobs.runners import Runners

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


def _check_secret_keys(engine) -> None:  # type: ignore[no-untyped-def]
    """Every sealed secret opens with JALON_SECRET_KEYS, or the process does not start."""
    from jalon.connector.runtime import check_secret_keys

    in_clear = check_secret_keys(engine)
    if in_clear:
        click.echo(f"warning: {in_clear} secrets are stored in clear (from before sealing): "
                   "run jalon secrets rotate-key to seal them", err=True)
