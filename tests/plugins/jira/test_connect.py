"""Connecting in minutes: ``jalon integrations connect jira ...`` creates the
integration with a generated secret and registers the webhook in Jira,
printing what it did and never a secret."""

from __future__ import annotations

import base64
import json
import socket

import pytest
import responses
from click.testing import CliRunner
from sqlalchemy import select

from jalon.connector.net import ssrf
from jalon.connector.cli import main
from jalon.connector.net.http import RestClient
from jalon.connector.plugin.types import IntegrationView
from jalon.connector.plugin.manager import get_plugin_manager
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Integration
from jalon.plugins.jira.connect import EVENTS
from tests import factories

SITE = "https://jira.atelier.test"
WEBHOOKS = f"{SITE}/rest/webhooks/1.0/webhook"
TOKEN = "ATATT3xFfGF0-admin-token"


@pytest.fixture(autouse=True)
def public_jira(monkeypatch):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host == "jira.atelier.test":
            return ["93.184.215.14"]
        raise socket.gaierror(socket.EAI_NONAME, "not a test name")

    monkeypatch.setattr(ssrf, "resolve_host", resolve)


@pytest.fixture
def uow(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    yield lambda: unit_of_work(make_sessionmaker(engine))
    engine.dispose()


def connect(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", db_url, "integrations", "connect", "jira",
                                     "--site", SITE, "--key", "jira-acme", "--email", "admin@atelier.example",
                                     "--api-token", TOKEN, "--public-url", "https://jalon.atelier.example", *args])


def stored(uow, key: str = "jira-acme") -> Integration:  # type: ignore[no-untyped-def]
    with uow() as session:
        integration = session.execute(select(Integration).where(Integration.key == key)).scalar_one()
        session.expunge(integration)
        return integration


@responses.activate
def test_connect_creates_the_integration_and_registers_a_signed_filtered_webhook(db_url, uow) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json={"self": f"{WEBHOOKS}/7", "name": "jalon jira-acme"}, status=201)

    result = connect(db_url, "--project", "WEB", "--project", "APP")

    assert result.exit_code == 0, result.output
    integration = stored(uow)
    assert integration.source == "jira" and integration.base_url == SITE
    assert integration.settings == {"flavour": "cloud"}
    assert integration.credentials == {"email": "admin@atelier.example", "api_token": TOKEN}
    assert len(integration.secret) >= 40
    request = responses.calls[0].request
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"admin@atelier.example:{TOKEN}".encode()).decode()
    assert json.loads(request.body) == {
        "name": "jalon jira-acme", "url": "https://jalon.atelier.example/hooks/jira/jira-acme",
        "events": list(EVENTS), "excludeBody": False, "secret": integration.secret,
        "filters": {"issue-related-events-section": 'project in ("WEB", "APP")'}}
    assert "integration jira-acme created" in result.output
    assert "webhook registered in Jira" in result.output
    assert integration.secret not in result.output and TOKEN not in result.output


@responses.activate
def test_running_it_again_updates_and_keeps_the_secret_jira_signs_with(db_url, uow) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json={}, status=201)
    assert connect(db_url, "--project", "WEB").exit_code == 0
    first = stored(uow).secret

    result = connect(db_url, "--project", "WEB", "--flavour", "cloud")

    assert result.exit_code == 0, result.output
    assert "integration jira-acme updated" in result.output and "kept" in result.output
    assert stored(uow).secret == first
    assert json.loads(responses.calls[1].request.body)["secret"] == first


@responses.activate
def test_the_mapped_projects_are_the_filter_when_none_is_given(db_url, uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        factories.seed(session)
    responses.post(WEBHOOKS, json={}, status=201)

    result = CliRunner().invoke(main, ["--database-url", db_url, "integrations", "connect", "jira", "--site", SITE,
                                       "--key", "jira-atelier", "--email", "a@atelier.example", "--api-token", TOKEN])

    assert result.exit_code == 0, result.output
    body = json.loads(responses.calls[0].request.body)
    assert body["filters"] == {"issue-related-events-section": 'project in ("WEB")'}
    assert body["secret"] == "s3cret"  # the existing secret is kept
    assert "s3cret" not in result.output


@pytest.mark.parametrize("status, answer, says", [
    (401, {}, "Jira refused the credentials"),
    (403, {}, "may not manage webhooks"),
    (409, {"errorMessages": ["A webhook with this URL already exists"]}, "already exists"),
    (400, {"errorMessages": ["Invalid JQL"], "errors": {"url": "must be https"}}, "url: must be https"),
])
@responses.activate
def test_jira_refusing_exits_1_with_its_reason_and_keeps_the_integration(db_url, uow, status, answer, says) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=answer, status=status)

    result = connect(db_url, "--project", "WEB")

    assert result.exit_code == 1
    assert "error [webhook_not_registered]" in result.output and says in result.output
    secret = stored(uow).secret
    assert secret and secret not in result.output and TOKEN not in result.output


@responses.activate
def test_a_refusal_that_echoes_the_secret_shows_it_masked(db_url, uow) -> None:  # type: ignore[no-untyped-def]
    def echo(request):  # type: ignore[no-untyped-def]
        return 400, {}, json.dumps({"errorMessages": [f"bad secret {json.loads(request.body)['secret']}"]})

    responses.add_callback(responses.POST, WEBHOOKS, callback=echo)

    result = connect(db_url)

    assert result.exit_code == 1 and "bad secret ********" in result.output
    assert stored(uow).secret not in result.output


@responses.activate
def test_without_admin_credentials_nothing_is_sent_and_the_command_says_why(db_url, uow) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["--database-url", db_url, "integrations", "connect", "jira",
                                       "--site", SITE, "--key", "jira-bare"])

    assert result.exit_code == 1 and "admin credentials are needed" in result.output
    assert len(responses.calls) == 0
    assert stored(uow, "jira-bare").secret


def test_no_register_only_creates_the_integration_and_prints_the_url(db_url, uow) -> None:  # type: ignore[no-untyped-def]
    with responses.RequestsMock() as mock:
        result = connect(db_url, "--no-register")
        assert len(mock.calls) == 0

    assert result.exit_code == 0, result.output
    assert "https://jalon.atelier.example/hooks/jira/jira-acme" in result.output
    assert stored(uow).secret not in result.output


def test_an_unknown_source_is_refused(db_url) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["--database-url", db_url, "integrations", "connect", "nosuchtool",
                                       "--site", SITE, "--key", "x"])

    assert result.exit_code == 1 and "unknown_source" in result.output


def test_the_hook_is_routed_to_the_jira_plugin_only() -> None:
    import jalon.plugins.jira

    pm = get_plugin_manager()
    assert pm.source("jira")._plugin is jalon.plugins.jira
    assert pm.source("nosuchtool") is None


@responses.activate
def test_the_plugin_answers_the_hook_through_the_entry_point() -> None:
    responses.post(WEBHOOKS, json={"self": f"{WEBHOOKS}/9"}, status=201)
    view = IntegrationView(key="k", source="jira", name="n", base_url=SITE, settings={}, secrets=("s",),
                           credentials={"email": "a@atelier.example", "api_token": TOKEN})
    pm = get_plugin_manager()

    lines = pm.source("jira").jalon_source_connect(source="jira", integration=view,
                                                   webhook_url="https://x/hooks/jira/k", projects=["WEB"],
                                                   http=RestClient(SITE, timeout=1.0))

    assert lines[0] == f"webhook registered in Jira ({WEBHOOKS}/9): https://x/hooks/jira/k"
    assert all("s" != line and TOKEN not in line for line in lines)
