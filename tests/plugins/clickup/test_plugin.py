"""The ClickUp plugin registers through the ``jalon`` entry-point group like a
third party's, validates its settings, adds its options to ``jalon integrations
connect``, and the connector routes only ``clickup``'s source hooks to it."""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points

import jalon.plugins.clickup as plugin
import pytest
from jalon.connector.plugin.manager import get_plugin_manager, sources
from jalon.core.events import TaskCompleted
from marshmallow import ValidationError

from .support import (
    NOW,
    ROOT,
    TEAM,
    delivery,
    fixture_bytes,
    integration,
    rest_client,
    serve_task,
    signed_headers,
)

BODY = fixture_bytes("taskStatusUpdated__closed")


def manager():  # type: ignore[no-untyped-def]
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    return pm


# --- registration -------------------------------------------------------------------------------------


def test_the_package_declares_its_entry_point_in_the_jalon_group():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["entry-points"]["jalon"]["clickup"] == "jalon.plugins.clickup"


def test_the_installed_package_finds_the_plugin_through_the_entry_point_group():
    if not [ep for ep in entry_points(group="jalon") if ep.name == "clickup"]:
        pytest.skip("the installed metadata predates the clickup entry point: run `pip install -e .` again")
    spec = sources(get_plugin_manager())["clickup"]
    assert spec.name == "clickup" and spec.settings_schema is plugin.ClickUpSettings


def test_the_source_is_registered_as_clickup():
    spec = sources(manager())["clickup"]
    assert (spec.name, spec.title) == ("clickup", "ClickUp")
    assert spec.base_url == "https://api.clickup.com/api/v2"  # one API for everyone: connect needs no --site


def test_connect_takes_a_write_only_api_token_and_the_workspace_id():
    options = {option.flag: option for option in plugin.jalon_source_register().connect_options}
    assert set(options) == {"api-token", "team-id"}
    assert (options["api-token"].key, options["api-token"].into) == ("api_token", "credentials")
    assert (options["team-id"].key, options["team-id"].into) == ("team_id", "settings")


# --- settings --------------------------------------------------------------------------------------------


def test_the_settings_have_defaults():
    assert plugin.ClickUpSettings().load({}) == {
        "allow_private_network": False, "team_id": None, "done_statuses": [], "milestone_tags": [],
        "bill_milestone_type": True,
    }


def test_the_settings_take_the_workspace_done_statuses_and_milestone_marks():
    loaded = plugin.ClickUpSettings().load({"team_id": 9012345678, "done_statuses": ["livré", "validé client"],
                                            "milestone_tags": ["jalon"], "bill_milestone_type": False})
    assert loaded["team_id"] == TEAM  # a number becomes the id's text
    assert loaded["done_statuses"] == ["livré", "validé client"]
    assert (loaded["milestone_tags"], loaded["bill_milestone_type"]) == (["jalon"], False)


@pytest.mark.parametrize("settings, field", [
    ({"done_status": ["livré"]}, "done_status"),
    ({"team_id": "acme"}, "team_id"),
    ({"team_id": True}, "team_id"),
    ({"done_statuses": "livré"}, "done_statuses"),
    ({"bill_milestone_type": "peut-être"}, "bill_milestone_type"),
])
def test_unknown_or_bad_settings_are_refused_with_their_name(settings, field):
    with pytest.raises(ValidationError) as refused:
        plugin.ClickUpSettings().load(settings)
    assert field in refused.value.messages


# --- routing ---------------------------------------------------------------------------------------------------


def test_the_source_hooks_answer_for_clickup(api):
    hooks = manager().source("clickup")
    view = integration()
    assert hooks.jalon_source_verify(source="clickup", integration=view, headers=signed_headers(BODY), body=BODY,
                                     now=NOW) is True
    assert hooks.jalon_source_verify(source="clickup", integration=view, headers={}, body=BODY, now=NOW) is False
    assert hooks.jalon_source_idempotency_key(source="clickup", integration=view, headers={}, body=BODY) == \
        "clickup:4b67ac88-9d3e-4f1a-b2c5-0e1f2a3b4c5d:4215567000000000101"
    serve_task("task__milestone")
    translation = hooks.jalon_source_translate(source="clickup", integration=view, delivery=delivery(BODY),
                                               http=rest_client())
    assert [type(event) for event in translation.events] == [TaskCompleted]


def test_the_clickup_hooks_are_never_asked_for_another_source(api):
    pm = manager()
    assert pm.source("jira") is None
    assert pm.source("clickup")._plugin is plugin
    assert len(api.calls) == 0
