"""``jalon integrations``: connecting PM tools.

``jalon integrations connect <source>`` has one subcommand per installed
source plugin, built when the command runs: the options every source has
(``--site``, ``--key``, ``--project``...), ``--setting KEY=VALUE`` and
``--credential KEY=VALUE``, and the options the plugin declares in its
``SourceSpec.connect_options`` (Jira's ``--email``, ``--api-token``...). The
connector knows no tool's flags.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import click
import yaml

from jalon.core.db import unit_of_work
from jalon.connector.cli.common import Context, domain_errors
from jalon.connector.redaction import scrub


@click.group()
def integrations() -> None:
    """Integrations with PM tools."""


def plugin_manager():  # type: ignore[no-untyped-def]
    """The plugin manager a command sees, as ``jalon serve`` would: the
    installed plugins, then those named in ``JALON_EXTRA_PLUGINS``."""
    from jalon.connector.plugin.manager import get_plugin_manager
    from jalon.connector.runtime import load_extra_plugins
    from jalon.connector.settings import Settings

    return get_plugin_manager(extra=load_extra_plugins(Settings.from_env().extra_plugins))


class SourceCommands(click.Group):
    """``connect <source>``: one subcommand per source an installed plugin registers."""

    def _pm(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        if "jalon.pm" not in ctx.meta:
            with domain_errors():
                ctx.meta["jalon.pm"] = plugin_manager()
        return ctx.meta["jalon.pm"]

    def _specs(self, ctx: click.Context) -> dict[str, Any]:
        from jalon.connector.plugin.manager import sources

        return sources(self._pm(ctx))

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self._specs(ctx))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = self._specs(ctx).get(name)
        return None if spec is None else _connect_command(spec)

    def resolve_command(self, ctx: click.Context, args: list[str]):  # type: ignore[no-untyped-def]
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            from jalon.connector.integrations import settings_schema

            with domain_errors():
                settings_schema(self._pm(ctx), name)  # unknown_source, exit 1
        return super().resolve_command(ctx, args)


@integrations.group("connect", cls=SourceCommands)
def integrations_connect() -> None:
    """Create or update an integration with a generated secret, then register
    its webhook in the tool. One command per installed source: see 'jalon
    integrations connect SOURCE --help' for its options."""


def _setting_value(key: str, raw: str) -> Any:
    """A ``--setting`` value is YAML: ``true``, ``12``, ``[a, b]``; text stays text."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise click.BadParameter(f"the value of {key} is not a YAML value (quote it: {key}='...')") from None
    return raw if isinstance(value, date) else value  # a date as written: the settings schema reads it


def _pairs(parse: Callable[[str, str], Any]) -> Callable[[click.Context, click.Parameter, tuple[str, ...]], dict]:
    def callback(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
        pairs: dict[str, Any] = {}
        for text in values:
            key, sep, raw = text.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter("expected KEY=VALUE", ctx=ctx, param=param)
            pairs[key.strip()] = parse(key.strip(), raw)
        return pairs

    return callback


def _common_options() -> list[click.Option]:
    return [
        click.Option(["--site"], default=None, metavar="URL",
                     help="The tool's site, e.g. https://acme.example.net (default: the integration's, else the "
                          "address the plugin gives for a tool with one API for everyone, such as ClickUp)."),
        click.Option(["--key"], required=True, help="The integration's key (the <key> of /hooks/<source>/<key>)."),
        click.Option(["--name"], default=None, help="A display name (default: the key)."),
        click.Option(["--project", "projects"], multiple=True, metavar="KEY",
                     help="A PM project to receive events of (repeatable; default: the integration's mapped projects)."),
        click.Option(["--public-url"], default=None, metavar="URL",
                     help="Where the tool reaches jalon (default: JALON_PUBLIC_URL)."),
        click.Option(["--register/--no-register"], default=True, show_default=True,
                     help="Register the webhook in the tool (needs admin credentials)."),
        click.Option(["--setting", "settings"], multiple=True, metavar="KEY=VALUE",
                     callback=_pairs(_setting_value),
                     help="A setting of the integration (repeatable); the value is YAML (true, 12, [a, b]). "
                          "Checked by the plugin's settings schema; e.g. allow_private_network=true for a tool "
                          "on your own network."),
        click.Option(["--credential", "credentials"], multiple=True, metavar="KEY=VALUE",
                     callback=_pairs(lambda key, raw: raw),
                     help="An API credential (repeatable; stored write-only, never printed)."),
    ]


def _connect_command(spec: Any) -> click.Command:
    """``connect <spec.name>``: the common options, then the plugin's own."""
    params = _common_options()
    taken = {"-h", "--help", *(flag for p in params for flag in (*p.opts, *p.secondary_opts))}
    for index, option in enumerate(spec.connect_options):
        flag = f"--{option.flag}"
        if flag in taken:
            raise click.ClickException(f"the {spec.name} plugin declares {flag}, an option the connector already has")
        taken.add(flag)
        params.append(click.Option(
            [flag, f"plugin_option_{index}"], default=None, metavar=None if option.choices else "VALUE",
            type=click.Choice(option.choices) if option.choices else None,
            help=f"{option.help} ({option.into[:-1]} {option.key})".strip()))

    @click.pass_obj
    def callback(obj: Context, site: str | None, key: str, name: str | None, projects: tuple[str, ...],
                 public_url: str | None, register: bool, settings: dict[str, Any], credentials: dict[str, Any],
                 **named: Any) -> None:
        given = {"settings": dict(settings), "credentials": dict(credentials)}
        for index, option in enumerate(spec.connect_options):
            value = named[f"plugin_option_{index}"]
            if value is None:
                continue
            target = given[option.into]
            if option.key in target and target[option.key] != value:
                raise click.UsageError(f"--{option.flag} and --{option.into[:-1]} {option.key}=... say different "
                                       "things: give one")
            target[option.key] = value
        _connect(obj, spec, site=site, key=key, name=name, projects=projects, public_url=public_url,
                 register=register, settings=given["settings"], credentials=given["credentials"])

    return click.Command(
        spec.name, params=params, callback=callback, short_help=spec.title,
        help=f"Connect {spec.title}: create or update the integration with a generated secret, then register "
             f"its webhook in the tool.")


def _connect(obj: Context, spec: Any, *, site: str | None, key: str, name: str | None, projects: tuple[str, ...],
             public_url: str | None, register: bool, settings: Mapping[str, Any],
             credentials: Mapping[str, Any]) -> None:
    import secrets as secrets_module

    from sqlalchemy import select

    from jalon.connector.integrations import checker, setting_default, settings_schema
    from jalon.connector.net.http import RemoteError
    from jalon.connector.net.ssrf import UrlNotAllowed
    from jalon.connector.plugin.types import Connected, PermanentFailure
    from jalon.connector.relay.intake import integration_view
    from jalon.connector.runtime import build_runtime
    from jalon.core import catalog
    from jalon.core.models import Integration, Mapping
    from jalon.core.types import utcnow

    source = spec.name
    with domain_errors():
        runtime = build_runtime(obj.url)
        try:
            hooks = runtime.pm.source(source)
            if hooks is None:
                settings_schema(runtime.pm, source)  # unknown_source
            with unit_of_work(runtime.sessionmaker) as session:
                existing = session.execute(select(Integration).where(Integration.key == key)).scalar_one_or_none()
                kept_settings: dict[str, Any] = {}
                kept_credentials: dict[str, Any] = {}
                if existing is not None:
                    kept_credentials = dict(existing.credentials or {})
                    if existing.source == source:  # else the catalog refuses the change of source
                        kept_settings = dict(existing.settings or {})
                site = site or (existing.base_url if existing is not None and existing.source == source
                                else None) or getattr(spec, "base_url", None)
                if not site:
                    raise click.UsageError(f"Missing option '--site': the address of the {spec.title} site")
                merged = {**kept_settings, **settings}
                for option in spec.connect_options:  # what the plugin offers at connect time is written out
                    if option.into == "settings" and option.key not in merged:
                        default = setting_default(runtime.pm, source, option.key)
                        if default is not None:
                            merged[option.key] = default
                data: dict[str, Any] = {
                    "key": key, "source": source, "base_url": site.rstrip("/"),
                    "name": name or (existing.name if existing is not None else key),
                    "settings": merged,
                    "credentials": {**kept_credentials, **credentials},
                    "enabled": existing.enabled if existing is not None else True}
                generated = existing is None or not existing.secret
                if generated:  # an existing secret is kept: the tool already signs with it
                    data["secret"] = secrets_module.token_urlsafe(32)
                try:
                    integration, created = catalog.upsert_integration(session, data, actor="cli",
                                                                      check=checker(runtime.pm))
                except UrlNotAllowed as error:  # the site, checked by the SSRF guard: nothing is stored
                    click.echo(f"error [url_not_allowed]: {error.message}", err=True)
                    click.echo(f"nothing is stored; if {data['base_url']} is on your own network, run the command "
                               f"again with --setting allow_private_network=true", err=True)
                    sys.exit(1)
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
            # the integration's own SSRF policy (its allow_private_network), as every other call to the tool
            http = runtime.rest_client(view, max_retries=1, max_wait=5.0)
            try:
                answer = hooks.jalon_source_connect(
                    source=source, integration=view, webhook_url=webhook_url, projects=chosen, http=http)
            except UrlNotAllowed as error:
                click.echo(f"error [url_not_allowed]: {error.message}", err=True)
                click.echo(f"the integration is saved; if {data['base_url']} is on your own network, run the "
                           f"command again with --setting allow_private_network=true", err=True)
                sys.exit(1)
            except (RemoteError, PermanentFailure) as error:
                click.echo(f"error [webhook_not_registered]: {scrub(str(error), view.secrets)}", err=True)
                click.echo(f"the integration is saved; fix the cause and run the command again, "
                           f"or register {webhook_url} by hand (see the plugin's README)", err=True)
                sys.exit(1)
            finally:
                http.session.close()
            if answer is None:
                click.echo(f"the {source} plugin cannot register webhooks: point the tool at {webhook_url}")
                return
            lines, chosen_secret = (answer.lines, answer.secret) if isinstance(answer, Connected) else (answer, None)
            if chosen_secret:  # the tool generated the secret it signs with (ClickUp): it becomes the integration's
                with unit_of_work(runtime.sessionmaker) as session:
                    integration, _ = catalog.upsert_integration(session, {**data, "secret": chosen_secret},
                                                                actor="cli", check=checker(runtime.pm))
                    if generated:  # the secret made above was never given to any tool: nothing to keep accepting
                        integration.previous_secret = None
                        integration.secret_rotated_at = None
                    kept = integration.previous_secret is not None
                click.echo(f"secret: the one {spec.title} generated for the webhook, stored (write-only, not shown)"
                           + (f"; the previous one is accepted for {runtime.settings.secret_overlap_hours} more "
                              "hours" if kept else ""))
            for line in lines:
                click.echo(scrub(line, (*view.secrets, chosen_secret or "")))
        finally:
            runtime.dispose()
