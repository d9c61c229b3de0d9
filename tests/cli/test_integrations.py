"""``jalon integrations connect <source>``: one command per installed source
plugin, with the options the plugin declares, ``--setting`` and
``--credential``; the settings checked by the plugin's schema before anything
is stored; the webhook registered through the integration's own REST client
(its SSRF policy), so a tool on the company's network can be connected."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import select

from jalon.connector.cli import main
from jalon.connector.plugin import ConnectOption, IntegrationView, RestClient, SourceSpec, hookimpl
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Integration

SITE = "https://jira.atelier.test"
PUBLIC = "https://jalon.atelier.example"
TOKEN = "ATATT3xFfGF0-admin-token"


def jalon(db_url: str, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", db_url, "integrations", "connect", *args], env=env)


def stored(db_url: str) -> list[Integration]:
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            found = list(session.execute(select(Integration).order_by(Integration.key)).scalars())
            session.expunge_all()
            return found
    finally:
        engine.dispose()


def test_the_connect_help_lists_the_installed_sources(db_url) -> None:  # type: ignore[no-untyped-def]
    result = jalon(db_url, "--help")

    assert result.exit_code == 0
    assert "jira" in result.output and "Jira (Cloud and Data Center)" in result.output


def test_a_source_command_offers_the_options_its_plugin_declares(db_url) -> None:  # type: ignore[no-untyped-def]
    jira = jalon(db_url, "jira", "--help").output
    other = jalon(db_url, "fake", "--help", env=FAKE_ENV).output

    for flag in ("--email", "--api-token", "--pat", "--flavour", "--setting", "--credential", "--site", "--key"):
        assert flag in jira
    assert "--token" in other and "--setting" in other
    assert "--api-token" not in other and "--flavour" not in other  # no tool's flags in the connector


def test_an_unknown_source_is_refused_and_nothing_is_stored(db_url) -> None:  # type: ignore[no-untyped-def]
    result = jalon(db_url, "gitlab", "--site", SITE, "--key", "gl")

    assert result.exit_code == 1
    assert "error [unknown_source]: no installed plugin serves the source 'gitlab' (installed: bitrix24, clickup, jira)" in result.output
    assert stored(db_url) == []


@pytest.mark.parametrize(("option", "says"), [
    ("allow_private_networks=true", "settings.allow_private_networks: Unknown field."),  # misspelt
    ("allow_private_network=yes please", "settings.allow_private_network: Not a valid boolean."),
    ("flavour=server2", "settings.flavour: Must be one of: cloud, datacenter."),
])
@responses.activate
def test_a_bad_setting_is_refused_with_its_name_and_nothing_is_stored(db_url, option, says) -> None:  # type: ignore[no-untyped-def]
    result = jalon(db_url, "jira", "--site", SITE, "--key", "jira-acme", "--email", "a@atelier.example",
                   "--api-token", TOKEN, "--public-url", PUBLIC, "--setting", option)

    assert result.exit_code == 1
    assert "error [settings_invalid]: " in result.output and says in result.output
    assert stored(db_url) == [] and len(responses.calls) == 0


def test_setting_values_are_yaml_and_stored_as_the_schema_reads_them(db_url) -> None:  # type: ignore[no-untyped-def]
    result = jalon(db_url, "jira", "--site", SITE, "--key", "jira-dc", "--no-register", "--flavour", "datacenter",
                   "--setting", "allow_private_network=true", "--setting", "done_statuses=[Accepted, Livré]",
                   "--credential", "pat=pat-123456")

    assert result.exit_code == 0, result.output
    (integration,) = stored(db_url)
    assert integration.settings == {"allow_private_network": True, "done_statuses": ["Accepted", "Livré"],
                                    "flavour": "datacenter"}
    assert integration.credentials == {"pat": "pat-123456"} and "pat-123456" not in result.output


def test_a_plugin_option_and_a_setting_that_disagree_are_a_usage_error(db_url) -> None:  # type: ignore[no-untyped-def]
    result = jalon(db_url, "jira", "--site", SITE, "--key", "j", "--no-register", "--flavour", "cloud",
                   "--setting", "flavour=datacenter")

    assert result.exit_code == 2 and "--flavour" in result.output
    assert stored(db_url) == []


# --- a tool on the company's network: a loopback stand-in of Jira's webhook API ---------


@contextmanager
def jira_on_loopback() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Jira's ``POST /rest/webhooks/1.0/webhook`` on 127.0.0.1; yields its site and what it received."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "body": json.loads(body)})
            answer = json.dumps({"self": f"http://127.0.0.1:{self.server.server_port}{self.path}/1"}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def connect_on(db_url: str, site: str, *args: str):  # type: ignore[no-untyped-def]
    return jalon(db_url, "jira", "--site", site, "--key", "jira-intranet", "--email", "admin@atelier.example",
                 "--api-token", TOKEN, "--public-url", PUBLIC, "--project", "WEB", *args)


def test_a_tool_on_a_private_address_is_connected_when_the_integration_allows_it(db_url) -> None:  # type: ignore[no-untyped-def]
    with jira_on_loopback() as (site, received):
        first = connect_on(db_url, site, "--setting", "allow_private_network=true")
        again = connect_on(db_url, site)  # the setting is kept from the stored integration

    assert first.exit_code == 0, first.output
    assert again.exit_code == 0, again.output
    assert "webhook registered in Jira" in first.output
    assert [r["path"] for r in received] == ["/rest/webhooks/1.0/webhook"] * 2
    (integration,) = stored(db_url)
    assert received[0]["body"]["url"] == f"{PUBLIC}/hooks/jira/jira-intranet"
    assert received[0]["body"]["secret"] == integration.secret
    assert integration.settings == {"allow_private_network": True, "flavour": "cloud"}


def test_a_tool_on_a_private_address_is_refused_naming_the_setting_that_allows_it(db_url) -> None:  # type: ignore[no-untyped-def]
    with jira_on_loopback() as (site, received):
        result = connect_on(db_url, site)

    assert result.exit_code == 1
    assert "error [url_not_allowed]: base_url: " in result.output and "127.0.0.1" in result.output
    assert "--setting allow_private_network=true" in result.output
    assert received == []
    assert stored(db_url) == [] and TOKEN not in result.output  # refused before anything is stored


# --- a third party's source: its own connect options, no settings schema ----------------


class FakeTool:
    """A source plugin that declares a credential option and no settings schema."""

    def __init__(self) -> None:
        self.connected: list[tuple[IntegrationView, RestClient]] = []

    @hookimpl
    def jalon_source_register(self) -> SourceSpec:
        return SourceSpec(name="fake", title="A fake tool", connect_options=(
            ConnectOption("token", "token", "credentials", help="The tool's API token."),))

    @hookimpl
    def jalon_source_connect(self, source: str, integration: IntegrationView, webhook_url: str,
                             projects: Sequence[str], http: RestClient) -> Sequence[str]:
        self.connected.append((integration, http))
        return [f"registered {webhook_url}"]


fake = FakeTool()
FAKE_ENV = {"JALON_EXTRA_PLUGINS": f"{__name__}:fake"}


def test_a_third_party_source_gets_its_options_and_its_own_hook(db_url) -> None:  # type: ignore[no-untyped-def]
    fake.connected.clear()
    result = jalon(db_url, "fake", "--site", "https://fake.example", "--key", "f", "--public-url", PUBLIC,
                   "--token", "tok-123456", "--setting", "allow_private_network=true", env=FAKE_ENV)

    assert result.exit_code == 0, result.output
    assert f"registered {PUBLIC}/hooks/fake/f" in result.output and "tok-123456" not in result.output
    ((view, http),) = fake.connected
    assert view.credentials == {"token": "tok-123456"} and view.settings == {"allow_private_network": True}
    assert http.allow_private_network is True  # the integration's own REST client


def test_a_source_without_a_settings_schema_has_the_settings_every_integration_has(db_url) -> None:  # type: ignore[no-untyped-def]
    result = jalon(db_url, "fake", "--site", "https://fake.example", "--key", "f", "--setting", "colour=blue",
                   env=FAKE_ENV)

    assert result.exit_code == 1 and "error [settings_invalid]: settings.colour: Unknown field." in result.output
    assert stored(db_url) == []

