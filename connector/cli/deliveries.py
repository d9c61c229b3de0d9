"""``jalon deliveries``: the delivery log, and replaying dead letters."""

from __future__ import annotations


import click

from jalon.connector.cli.common import Context, domain_errors


@click.group()
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

    from jalon.connector.relay.worker import replay
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
