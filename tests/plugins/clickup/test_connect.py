"""Connecting in minutes: ``jalon integrations connect clickup ...`` creates
the integration and registers its webhook in the ClickUp Workspace; ClickUp
generates the secret it signs with, which jalon stores as the integration's
secret and never prints."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence

import pytest
import requests
import responses
from click.testing import CliRunner
from jalon.connector.cli import main
from jalon.connector.net import ssrf
from jalon.connector.net.http import RATE_BUDGETS, RestClient
from jalon.connector.plugin import Connected, IntegrationView, SourceSpec, hookimpl
from jalon.connector.plugin.manager import get_plugin_manager, sources
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Integration
from jalon.plugins.clickup.client import API
from jalon.plugins.clickup.connect import EVENTS, register
from sqlalchemy import select

TEAM = "9012345678"
TOKEN = "pk_81942_CONNECTTESTTOKEN"
WEBHOOKS = f"{API}/team/{TEAM}/webhook"
PUBLIC = "https://jalon.atelier.example"
HOOK_URL = f"{PUBLIC}/hooks/clickup/clickup-lumen"
CLICKUP_SECRET = "O94IM25S7PXBPYTMNXLLET230SRP0S89COR7B1YOJ2ZIE8LQV2AG3ASZ48OFNU7A"
SECOND_SECRET = "Q3ZK8M1N0P5R7T9V2X4Z6B8D0F2H4J6L8N0P2R4T6V8X0Z2B4D6F8H0J2L4N6P"


def created(webhook_id: str = "4b67ac88-e506-4a29-9d42-26e504e3435e", secret: str | None = CLICKUP_SECRET) -> dict:
    """ClickUp's answer to ``POST /team/{team_id}/webhook``."""
    webhook = {"id": webhook_id, "userid": 81942, "team_id": int(TEAM), "endpoint": HOOK_URL,
               "client_id": "QVOQP06ZXC6CMGVFKB0ZT7J9Y7APOYGO", "events": list(EVENTS), "task_id": None,
               "list_id": None, "folder_id": None, "space_id": None,
               "health": {"status": "active", "fail_count": 0}}
    if secret is not None:
        webhook["secret"] = secret
    return {"id": webhook_id, "webhook": webhook}


@pytest.fixture(autouse=True)
def fresh_budgets():  # type: ignore[no-untyped-def]
    """The token's budget is the process's: no test pays for the calls of the ones before it."""
    RATE_BUDGETS.clear()
    yield
    RATE_BUDGETS.clear()


@pytest.fixture(autouse=True)
def public_clickup(monkeypatch):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int) -> list[str]:
        if host in ("api.clickup.com", "fake-tool.test"):
            return ["93.184.215.14"]
        raise socket.gaierror(socket.EAI_NONAME, "not a test name")

    monkeypatch.setattr(ssrf, "resolve_host", resolve)


def plugins_env(*extra: str) -> dict[str, str]:
    """ClickUp through its entry point once jalon is installed with it, else named as an extra plugin."""
    installed = "clickup" in sources(get_plugin_manager())
    names = [*extra, *([] if installed else ["jalon.plugins.clickup"])]
    return {"JALON_EXTRA_PLUGINS": ",".join(names)} if names else {}


def connect(db_url: str, *args: str, token: str = TOKEN):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [
        "--database-url", db_url, "integrations", "connect", "clickup", "--site", API, "--key", "clickup-lumen",
        "--name", "Atelier Lumen", "--public-url", PUBLIC, "--team-id", TEAM, "--api-token", token, *args],
        env=plugins_env())


def stored(db_url: str, key: str = "clickup-lumen") -> Integration:
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            integration = session.execute(select(Integration).where(Integration.key == key)).scalar_one()
            session.expunge(integration)
            return integration
    finally:
        engine.dispose()


@responses.activate
def test_connect_registers_the_webhook_and_stores_the_secret_clickup_returns_without_printing_it(db_url) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=created())

    result = connect(db_url, "--project", "list:901200000001")

    assert result.exit_code == 0, result.output
    request = responses.calls[0].request
    assert request.headers["Authorization"] == TOKEN
    assert json.loads(request.body) == {"endpoint": HOOK_URL, "list_id": 901200000001,
                                        "events": ["taskStatusUpdated", "taskTimeTrackedUpdated", "taskDeleted"]}
    integration = stored(db_url)
    assert integration.secret == CLICKUP_SECRET  # what ClickUp signs with
    assert integration.previous_secret is None  # the one generated first was never given to anyone
    assert (integration.name, integration.base_url) == ("Atelier Lumen", API)
    assert integration.settings["team_id"] == TEAM and integration.credentials == {"api_token": TOKEN}
    assert "webhook registered in ClickUp (4b67ac88-e506-4a29-9d42-26e504e3435e)" in result.output
    assert "filter: list 901200000001" in result.output
    assert "secret: the one ClickUp generated for the webhook, stored" in result.output
    assert CLICKUP_SECRET not in result.output and TOKEN not in result.output


@responses.activate
def test_the_command_needs_no_site_clickup_has_one_api_for_everyone(db_url) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=created())

    result = CliRunner().invoke(main, [
        "--database-url", db_url, "integrations", "connect", "clickup", "--key", "clickup-lumen", "--name", "Lumen",
        "--public-url", PUBLIC, "--team-id", TEAM, "--api-token", TOKEN, "--project", "list:123",
        "--project", "space:9"], env=plugins_env())

    assert result.exit_code == 0, result.output
    assert stored(db_url).base_url == API and stored(db_url).secret == CLICKUP_SECRET


@pytest.mark.parametrize("project, location", [("space:90120000003", {"space_id": 90120000003}),
                                               ("folder:90120000002", {"folder_id": 90120000002})])
@responses.activate
def test_one_mapped_space_or_folder_narrows_the_webhook_to_it(db_url, project, location) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=created())

    result = connect(db_url, "--project", project)

    assert result.exit_code == 0, result.output
    body = json.loads(responses.calls[0].request.body)
    assert {k: v for k, v in body.items() if k.endswith("_id")} == location


@responses.activate
def test_several_mapped_locations_register_no_filter_and_say_so(db_url) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=created())

    result = connect(db_url, "--project", "list:123", "--project", "space:9")

    assert result.exit_code == 0, result.output
    assert json.loads(responses.calls[0].request.body).keys() == {"endpoint", "events"}
    assert "filter: none (ClickUp narrows a webhook to one location and 2 are mapped: list:123, space:9" \
        in result.output


@responses.activate
def test_connecting_again_stores_the_new_secret_and_accepts_the_previous_one_for_the_overlap(db_url) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=created("wh-1"))
    responses.post(WEBHOOKS, json=created("wh-2", SECOND_SECRET))
    assert connect(db_url, "--project", "list:123").exit_code == 0

    result = connect(db_url, "--project", "list:123")

    assert result.exit_code == 0, result.output
    integration = stored(db_url)
    assert (integration.secret, integration.previous_secret) == (SECOND_SECRET, CLICKUP_SECRET)
    assert integration.secret_rotated_at is not None
    assert "the previous one is accepted for 24 more hours" in result.output
    assert "delete older ones pointing at this URL in ClickUp" in result.output
    assert SECOND_SECRET not in result.output and CLICKUP_SECRET not in result.output


@responses.activate
def test_a_refused_token_exits_1_with_a_clear_message_and_stores_nothing_new(db_url) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=created())
    assert connect(db_url, "--project", "list:123").exit_code == 0
    before = stored(db_url)
    responses.replace(responses.POST, WEBHOOKS, json={"err": "Token invalid", "ECODE": "OAUTH_025"}, status=401)

    result = connect(db_url, "--project", "list:123", token="pk_revoked_TOKEN")

    assert result.exit_code == 1
    assert "error [webhook_not_registered]: ClickUp refused the token, or it has no access to Workspace " \
           f"{TEAM}" in result.output
    assert "Token invalid (OAUTH_025)" in result.output
    after = stored(db_url)
    assert (after.secret, after.previous_secret) == (before.secret, None)  # ClickUp's secret stays the one
    assert "pk_revoked_TOKEN" not in result.output and CLICKUP_SECRET not in result.output


@pytest.mark.parametrize("status, answer, says", [
    (400, {"err": "Team ID is invalid", "ECODE": "OAUTH_023"}, "Team ID is invalid (OAUTH_023)"),
    (404, {"err": "Team not found"}, f"ClickUp knows no Workspace {TEAM}: Team not found"),
    (403, {}, "may not manage the webhooks"),
])
@responses.activate
def test_clickup_refusing_the_workspace_exits_1_with_its_reason(db_url, status, answer, says) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=answer, status=status)

    result = connect(db_url, "--project", "list:123")

    assert result.exit_code == 1 and says in result.output
    assert TOKEN not in result.output and stored(db_url).previous_secret is None


@responses.activate
def test_clickup_out_of_reach_exits_1_saying_to_try_again(db_url) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, body=requests.ConnectionError("refused"))

    result = connect(db_url, "--project", "list:123")

    assert result.exit_code == 1 and "ClickUp could not be reached or is busy" in result.output


@responses.activate
def test_a_webhook_clickup_gives_no_secret_for_is_reported_and_no_secret_stored(db_url) -> None:  # type: ignore[no-untyped-def]
    responses.post(WEBHOOKS, json=created("wh-9", secret=None))

    result = connect(db_url, "--project", "list:123")

    assert result.exit_code == 1
    assert "ClickUp registered webhook wh-9 but gave no secret" in result.output
    assert stored(db_url).previous_secret is None


def test_a_project_that_is_no_clickup_location_is_refused_before_any_call(db_url) -> None:  # type: ignore[no-untyped-def]
    with responses.RequestsMock() as mock:
        result = connect(db_url, "--project", "WEB")
        assert len(mock.calls) == 0

    assert result.exit_code == 1 and "'WEB' is not a ClickUp location" in result.output


def test_without_a_workspace_id_nothing_is_sent(db_url) -> None:  # type: ignore[no-untyped-def]
    with responses.RequestsMock() as mock:
        result = CliRunner().invoke(main, [
            "--database-url", db_url, "integrations", "connect", "clickup", "--site", API, "--key", "c",
            "--public-url", PUBLIC, "--api-token", TOKEN], env=plugins_env())
        assert len(mock.calls) == 0

    assert result.exit_code == 1 and "Workspace id is needed" in result.output and "--team-id" in result.output


# --- the hook itself and the kit's Connected ---------------------------------------------------------


@responses.activate
def test_the_hook_answers_connected_with_the_lines_and_the_secret() -> None:
    responses.post(WEBHOOKS, json=created())
    view = IntegrationView(key="k", source="clickup", name="n", base_url=API, settings={"team_id": TEAM},
                           secrets=("generated-by-jalon",), credentials={"api_token": TOKEN})

    answer = register(view, "https://x/hooks/clickup/k", ["list:1"], RestClient(None, timeout=1.0,
                                                                                allow_private_network=True))

    assert isinstance(answer, Connected) and answer.secret == CLICKUP_SECRET
    assert answer.lines[0].startswith("webhook registered in ClickUp")
    assert all(CLICKUP_SECRET not in line and TOKEN not in line for line in answer.lines)
    assert CLICKUP_SECRET not in repr(answer)


class ApiTool:
    """A source whose API has one address for everyone: --site may be left out."""

    def __init__(self) -> None:
        self.connected: list[IntegrationView] = []

    @hookimpl
    def jalon_source_register(self) -> SourceSpec:
        return SourceSpec(name="apitool", title="An API tool", base_url="https://fake-tool.test/api/v1")

    @hookimpl
    def jalon_source_connect(self, source: str, integration: IntegrationView, webhook_url: str,
                             projects: Sequence[str], http: RestClient) -> Connected:
        self.connected.append(integration)
        return Connected(lines=[f"registered {webhook_url}"], secret="tool-made-secret")


api_tool = ApiTool()


def test_without_site_the_address_the_plugin_gives_is_stored(db_url) -> None:  # type: ignore[no-untyped-def]
    api_tool.connected.clear()

    result = CliRunner().invoke(main, ["--database-url", db_url, "integrations", "connect", "apitool", "--key", "t",
                                       "--public-url", PUBLIC], env=plugins_env(f"{__name__}:api_tool"))

    assert result.exit_code == 0, result.output
    assert stored(db_url, "t").base_url == "https://fake-tool.test/api/v1"
    assert api_tool.connected[0].base_url == "https://fake-tool.test/api/v1"
    assert stored(db_url, "t").secret == "tool-made-secret" and "tool-made-secret" not in result.output


def test_a_source_without_an_address_of_its_own_still_needs_site(db_url) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["--database-url", db_url, "integrations", "connect", "jira", "--key", "j",
                                       "--no-register"])

    assert result.exit_code == 2 and "Missing option '--site'" in result.output
