"""``jalon token``: the admin API's bearer tokens."""

from __future__ import annotations


import click

from jalon.connector.cli.common import Context, domain_errors


@click.group()
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
