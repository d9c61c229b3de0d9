"""``jalon invoices``: sending issued invoices to the clients."""

from __future__ import annotations

import sys
from typing import Any

import click

from jalon.core.db import unit_of_work
from jalon.connector.cli.common import Context, domain_errors


@click.group()
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
    from jalon.connector.outbox import sending
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

    from jalon.connector.outbox import sending
    from jalon.connector.outbox.dispatcher import send_these
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
