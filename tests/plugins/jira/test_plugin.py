"""The Jira plugin registers through the ``jalon`` entry-point group like a
third party's, and the connector routes only ``jira``'s source hooks to it."""

from __future__ import annotations

import responses

from jalon.connector.plugin.manager import get_plugin_manager, sources
from jalon.core.events import TaskCompleted

from .support import NOW, delivery, fixture_bytes, integration, rest_client, signed_headers

BODY = fixture_bytes("jira_issue_updated__cloud_done")


def test_the_plugin_is_found_through_the_entry_point_group():
    pm = get_plugin_manager()
    spec = sources(pm)["jira"]
    assert spec.name == "jira" and spec.settings_schema is not None
    assert spec.settings_schema().load({"flavour": "datacenter"})["flavour"] == "datacenter"


def test_the_source_hooks_answer_for_jira():
    pm = get_plugin_manager().source("jira")
    view = integration()
    assert pm.jalon_source_verify(source="jira", integration=view, headers=signed_headers(BODY),
                                       body=BODY, now=NOW) is True
    assert pm.jalon_source_verify(source="jira", integration=view, headers={}, body=BODY, now=NOW) is False
    assert pm.jalon_source_idempotency_key(source="jira", integration=view,
                                                headers={"x-atlassian-webhook-identifier": "d-1"},
                                                body=BODY) == "jira-delivery:d-1"
    translation = pm.jalon_source_translate(source="jira", integration=view, delivery=delivery(BODY),
                                                 http=rest_client())
    assert [type(e) for e in translation.events] == [TaskCompleted]


@responses.activate
def test_the_jira_hooks_are_never_asked_for_another_source():
    import jalon.plugins.jira as plugin

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    assert pm.source("clickup") is None
    assert pm.source("jira")._plugin is plugin
    assert len(responses.calls) == 0
