"""Connecting: an app binds jalon's handler to the task events itself; an
inbound webhook cannot, so the admin is told the manual way. Neither the
webhook's code, a token nor the application token is ever printed; the
application token given becomes the integration's secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from jalon.connector.net.http import RateBudgets, RestClient
from jalon.connector.plugin.types import Connected, IntegrationView, PermanentFailure
from jalon.plugins.bitrix24 import connect

CODE = "c0nn3ctC0de"
WEBHOOK = f"https://atelier.bitrix24.eu/rest/1/{CODE}/"
PORTAL = "https://atelier.bitrix24.eu/rest/"
HOOK = "https://jalon.atelier.example/hooks/bitrix24/b24-atelier"
ACCESS = "app-acc3ss-t0ken"
APP_TOKEN = "app-appl1cation-t0ken"


def integration(credentials: dict[str, Any]) -> IntegrationView:
    return IntegrationView(key="b24-atelier", source="bitrix24", name="Bitrix24", base_url="https://atelier.bitrix24.eu",
                           settings={"domain": "atelier.bitrix24.eu"}, secrets=("generated-s3cret",),
                           credentials=credentials)


def http() -> RestClient:
    return RestClient(None, timeout=2.0, max_retries=0, allow_private_network=True, sleep=lambda _s: None,
                      budgets=RateBudgets())


def printed(answer: Connected) -> str:
    return "\n".join(answer.lines)


def hidden(text: str) -> None:
    for secret in (CODE, ACCESS, APP_TOKEN, "generated-s3cret"):
        assert secret not in text


@responses.activate
def test_an_app_binds_the_task_events_to_jalons_handler() -> None:
    responses.post(f"{PORTAL}event.get.json", json={"result": []})
    responses.post(f"{PORTAL}event.bind.json", json={"result": True})

    answer = connect.register(integration({"access_token": ACCESS}), HOOK, ["group:12"], http())

    binds = [json.loads(call.request.body) for call in responses.calls[1:]]
    assert binds == [{"event": "ONTASKUPDATE", "handler": HOOK, "event_type": "online"},
                     {"event": "ONTASKDELETE", "handler": HOOK, "event_type": "online"}]
    assert f"ONTASKUPDATE, ONTASKDELETE -> {HOOK}" in printed(answer) and "group:12" in printed(answer)
    assert answer.secret is None and "--credential application_token=TOKEN" in printed(answer)
    hidden(printed(answer))


@responses.activate
def test_events_already_bound_are_not_bound_twice() -> None:
    responses.post(f"{PORTAL}event.get.json", json={"result": [
        {"event": "ONTASKUPDATE", "handler": HOOK, "auth_type": "0"},
        {"event": "ONTASKDELETE", "handler": "https://elsewhere.example/hook", "auth_type": "0"}]})
    responses.post(f"{PORTAL}event.bind.json", json={"result": True})

    connect.register(integration({"access_token": ACCESS}), HOOK, [], http())

    assert [json.loads(call.request.body)["event"] for call in responses.calls[1:]] == ["ONTASKDELETE"]


@responses.activate
def test_the_application_token_given_becomes_the_integrations_secret_unprinted() -> None:
    responses.post(f"{PORTAL}event.get.json", json={"result": []})
    responses.post(f"{PORTAL}event.bind.json", json={"result": True})

    answer = connect.register(integration({"access_token": ACCESS, "application_token": APP_TOKEN}), HOOK,
                              ["group:12"], http())

    assert answer.secret == APP_TOKEN and APP_TOKEN not in repr(answer)
    hidden(printed(answer))


@responses.activate
def test_an_app_without_the_right_to_bind_is_told_why() -> None:
    responses.post(f"{PORTAL}event.get.json", status=401,
                   json={"error": "insufficient_scope", "error_description": "The request requires higher privileges"})

    with pytest.raises(PermanentFailure) as raised:
        connect.register(integration({"access_token": ACCESS}), HOOK, [], http())

    assert "insufficient_scope" in str(raised.value) and "task scope" in str(raised.value)
    hidden(str(raised.value))


@responses.activate
def test_an_inbound_webhook_gets_the_manual_way_and_nothing_secret_printed() -> None:
    responses.post(f"{WEBHOOK}scope.json", json={"result": ["task", "user"]})

    answer = connect.register(integration({"webhook_url": WEBHOOK}), HOOK, ["group:12"], http())

    text = printed(answer)
    assert "Outgoing webhook" in text and f"handler URL: {HOOK}" in text
    assert "ONTASKUPDATE, ONTASKDELETE" in text and "--credential application_token=TOKEN" in text
    assert [call.request.url for call in responses.calls] == [f"{WEBHOOK}scope.json"]  # no event.bind tried
    hidden(text)


@responses.activate
def test_an_inbound_webhook_that_cannot_read_tasks_is_refused() -> None:
    responses.post(f"{WEBHOOK}scope.json", json={"result": ["crm"]})

    with pytest.raises(PermanentFailure, match="no access to tasks"):
        connect.register(integration({"webhook_url": WEBHOOK}), HOOK, [], http())


@responses.activate
def test_a_deleted_inbound_webhook_is_refused_without_its_code() -> None:
    responses.post(f"{WEBHOOK}scope.json", status=401, json={"error": "NO_AUTH_FOUND",
                                                           "error_description": "Wrong authorization data"})

    with pytest.raises(PermanentFailure) as raised:
        connect.register(integration({"webhook_url": WEBHOOK}), HOOK, [], http())

    assert "NO_AUTH_FOUND" in str(raised.value)
    hidden(str(raised.value))


@pytest.mark.parametrize("ref", ["12", "list:12", "group:", "group:abc"])
def test_a_project_that_is_not_a_group_is_refused(ref: str) -> None:
    with pytest.raises(PermanentFailure, match="group:<id>"):
        connect.register(integration({"webhook_url": WEBHOOK}), HOOK, [ref], http())


def test_without_credentials_nothing_is_asked() -> None:
    with pytest.raises(PermanentFailure, match="credentials are needed"):
        connect.register(integration({}), HOOK, [], http())
