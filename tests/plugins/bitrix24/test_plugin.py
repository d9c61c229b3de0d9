"""The Bitrix24 plugin registers through the ``jalon`` entry-point group like a
third party's, validates its settings, adds its options to ``jalon
integrations connect``, and the connector routes only ``bitrix24``'s source
hooks to it."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points

import jalon.plugins.bitrix24 as plugin
import pytest
from jalon.connector.plugin.manager import get_plugin_manager, sources
from jalon.core.events import TaskCompleted
from marshmallow import ValidationError

from .support import (
    DOMAIN,
    MEMBER_ID,
    NOW,
    ROOT,
    delivery,
    fixture_bytes,
    integration,
    rest_client,
    serve_task,
)

BODY = fixture_bytes("ONTASKUPDATE__outgoing_webhook")


def manager():  # type: ignore[no-untyped-def]
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    return pm


# --- registration -------------------------------------------------------------------------------------


def test_the_package_declares_its_entry_point_in_the_jalon_group():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["jalon"]["bitrix24"] == "jalon.plugins.bitrix24"


def test_the_installed_package_finds_the_plugin_through_the_entry_point_group():
    if not [ep for ep in entry_points(group="jalon") if ep.name == "bitrix24"]:
        pytest.skip("the installed metadata predates the bitrix24 entry point: run `pip install -e .` again")
    spec = sources(get_plugin_manager())["bitrix24"]
    assert spec.name == "bitrix24" and spec.settings_schema is plugin.Bitrix24Settings


def test_the_source_is_registered_as_bitrix24_with_no_address_of_its_own():
    spec = sources(manager())["bitrix24"]
    assert (spec.name, spec.title) == ("bitrix24", "Bitrix24")
    assert spec.base_url is None  # every portal has its own address: connect needs --site


def test_connect_takes_an_inbound_webhook_or_an_apps_tokens_write_only_and_the_portal():
    options = {option.flag: option for option in plugin.jalon_source_register().connect_options}
    assert set(options) == {"webhook-url", "application-token", "access-token", "refresh-token", "client-id",
                            "client-secret", "domain", "member-id"}
    for flag in ("webhook-url", "application-token", "access-token", "refresh-token", "client-id", "client-secret"):
        assert options[flag].into == "credentials", flag
    assert (options["webhook-url"].key, options["access-token"].key) == ("webhook_url", "access_token")
    assert options["application-token"].key == "application_token"  # what connect.py makes the secret
    assert (options["domain"].into, options["member-id"].into) == ("settings", "settings")


# --- settings --------------------------------------------------------------------------------------------


def test_the_settings_have_defaults():
    assert plugin.Bitrix24Settings().load({}) == {
        "allow_private_network": False, "domain": None, "member_id": None, "awaiting_control_is_done": False,
        "milestone_tags": [],
    }


def test_the_settings_take_the_portal_and_what_completes_a_task():
    loaded = plugin.Bitrix24Settings().load({"domain": f"https://{DOMAIN.upper()}/", "member_id": MEMBER_ID.upper(),
                                             "awaiting_control_is_done": True, "milestone_tags": ["jalon"]})
    assert (loaded["domain"], loaded["member_id"]) == (DOMAIN, MEMBER_ID)  # a pasted URL becomes the host
    assert (loaded["awaiting_control_is_done"], loaded["milestone_tags"]) == (True, ["jalon"])


@pytest.mark.parametrize("settings, field", [
    ({"done_statuses": ["5"]}, "done_statuses"),
    ({"domain": "not a domain"}, "domain"),
    ({"domain": ""}, "domain"),
    ({"member_id": "portal-lumen"}, "member_id"),
    ({"member_id": 12}, "member_id"),
    ({"awaiting_control_is_done": "peut-être"}, "awaiting_control_is_done"),
    ({"milestone_tags": "jalon"}, "milestone_tags"),
])
def test_unknown_or_bad_settings_are_refused_with_their_name(settings, field):
    with pytest.raises(ValidationError) as refused:
        plugin.Bitrix24Settings().load(settings)
    assert field in refused.value.messages


# --- routing ---------------------------------------------------------------------------------------------------


def test_the_source_hooks_answer_for_bitrix24(api):
    hooks = manager().source("bitrix24")
    view = integration(settings={"domain": DOMAIN, "member_id": MEMBER_ID})
    assert hooks.jalon_source_verify(source="bitrix24", integration=view, headers={}, body=BODY, now=NOW) is True
    assert hooks.jalon_source_verify(source="bitrix24", integration=integration(secrets=("x",)), headers={},
                                     body=BODY, now=NOW) is False
    assert hooks.jalon_source_idempotency_key(source="bitrix24", integration=view, headers={}, body=BODY) == \
        "bitrix24:ONTASKUPDATE:4711:1793952900"
    serve_task("task__completed")
    translation = hooks.jalon_source_translate(source="bitrix24", integration=view, delivery=delivery(BODY),
                                               http=rest_client())
    assert [type(event) for event in translation.events] == [TaskCompleted]


def test_the_bitrix24_hooks_are_never_asked_for_another_source(api):
    pm = manager()
    assert pm.source("clickup") is None
    assert pm.source("bitrix24")._plugin is plugin
    assert len(api.calls) == 0
