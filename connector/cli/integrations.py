"""``jalon integrations``: connecting PM tools."""

from __future__ import annotations

import sys
from typing import Any

import click

from jalon.core.db import unit_of_work
from jalon.connector.cli.common import Context, domain_errors
from jalon.connector.redaction import scrub


@click.group()
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

    from jalon.connector.net.http import RemoteError, RestClient
    from jalon.connector.relay.intake import integration_view
    from jalon.connector.plugin.types import PermanentFailure
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
                click.echo(f"error [webhook_not_registered]: {scrub(str(error), view.secrets)}", err=True)
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
