"""The plugin API is enough on its own: a source plugin registered in-process,
knowing nothing of the connector's insides, drives a delivery from the webhook
to a draft invoice, and its dead letters replay after a fix."""

from __future__ import annotations

import pluggy
import pytest
from sqlalchemy import select

from jalon.connector.app import create_app
from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.types import Comment, SendResult
from jalon.connector.plugin.manager import get_plugin_manager, sources
from jalon.connector.relay.worker import process_once
from jalon.core.models import Delivery, Invoice, TimeEntry

from .conftest import payload, post, token
from .fake_source import FakeSource, OtherSource


def rows(runtime, model) -> list:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return list(session.execute(select(model).order_by(model.id)).scalars())


def test_a_fake_source_drives_a_delivery_from_webhook_to_draft_invoice(app, runtime, fake):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload("task.done", task="WEB-1"), delivery="e2e-1").status_code == 202
    assert post(client, payload("worklog.created", task="WEB-5", worklog="WL-9", seconds=1800),
                delivery="e2e-2").status_code == 202
    assert process_once(runtime, owner="w1") == 2
    [invoice] = rows(runtime, Invoice)
    assert invoice.status == "draft" and str(invoice.total_net) in ("7200.00", "7200", "7200.000000")
    [entry] = rows(runtime, TimeEntry)
    assert entry.seconds == 1800
    assert [d.status for d in rows(runtime, Delivery)] == ["done", "done"]
    assert fake.translated == [1, 2]
    assert [delivery_id for delivery_id, _ in fake.processed] == [1, 2]


def test_the_translate_hook_gets_a_rest_client_for_thin_payloads(app, runtime, fake):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload())
    process_once(runtime, owner="w1")
    [http] = fake.http_seen
    assert http is not None and hasattr(http, "request")


def test_an_unknown_event_is_acknowledged_and_ignored(app, runtime):  # type: ignore[no-untyped-def]
    assert post(app.test_client(), payload("sprint.started")).status_code == 202
    process_once(runtime, owner="w1")
    [delivery] = rows(runtime, Delivery)
    assert delivery.status == "ignored"
    assert rows(runtime, Invoice) == []


def test_an_unreadable_delivery_replays_once_after_the_plugin_is_fixed(app, runtime, fake):  # type: ignore[no-untyped-def]
    client = app.test_client()
    admin = {"Authorization": f"Bearer {token(runtime, 'admin')}"}
    post(client, payload("task.done", version=2))
    process_once(runtime, owner="w1")
    dead = client.get("/api/v1/deliveries?status=dead", headers=admin).get_json()["items"]
    assert [d["id"] for d in dead] == [1]
    assert dead[0]["last_error"] == "Unreadable: payload version 2 is not supported"

    fake.reads_version_2 = True  # the fix ships
    assert client.post("/api/v1/deliveries/1/replay", headers=admin).status_code == 200
    assert process_once(runtime, owner="w1") == 1
    [delivery] = rows(runtime, Delivery)
    assert delivery.status == "done" and delivery.attempts == 1
    assert len(rows(runtime, Invoice)) == 1
    # replaying it once more changes nothing twice
    client.post("/api/v1/deliveries/1/replay", headers=admin)
    process_once(runtime, owner="w1")
    assert len(rows(runtime, Invoice)) == 1


def test_source_hooks_reach_only_the_plugin_that_registered_the_source(runtime, fake):  # type: ignore[no-untyped-def]
    assert set(sources(runtime.pm)) == {"fake", "other"}
    comment = Comment(task_ref="WEB-1", text="Invoice drafted", idempotency_key="c-1")
    result = runtime.pm.source("fake").jalon_source_comment(source="fake", integration=None, comment=comment,
                                                           http=None)
    assert result == SendResult(external_id="comment-1") and fake.comments == [comment]
    # plugins check no name: each is asked for its own source only
    other = next(p for p in runtime.pm.get_plugins() if isinstance(p, OtherSource))
    assert other.comments == []
    runtime.pm.source("other").jalon_source_comment(source="other", integration=None, comment=comment, http=None)
    assert other.comments == [comment] and fake.comments == [comment]
    assert runtime.pm.source("gitlab") is None


def test_a_plugin_that_registers_no_source_still_sees_every_call(db_url):  # type: ignore[no-untyped-def]
    seen: list[str] = []

    class Timing:
        @hookimpl(wrapper=True)
        def jalon_source_idempotency_key(self, source, integration, headers, body):  # type: ignore[no-untyped-def]
            seen.append(source)
            return (yield)

    pm = get_plugin_manager(load_entrypoints=False, extra=[FakeSource(), OtherSource(), Timing()])
    assert pm.source("fake").jalon_source_idempotency_key(
        source="fake", integration=None, headers={"x-fake-delivery": "d-1"}, body=b"x") == "d-1"
    assert seen == ["fake"]


def test_two_plugins_registering_one_source_fail_at_start_up():  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="two plugins register the source 'fake'"):
        get_plugin_manager(load_entrypoints=False, extra=[FakeSource(), FakeSource()])


def test_a_misspelt_hook_fails_loudly_at_start_up(db_url):  # type: ignore[no-untyped-def]
    class Typo:
        @hookimpl
        def jalon_source_verfy(self, source, integration, headers, body, now):  # type: ignore[no-untyped-def]
            return True

    with pytest.raises(pluggy.PluginValidationError):
        create_app(db_url, plugins=[Typo()], load_entrypoints=False)


def test_every_test_gets_a_fresh_plugin_manager():  # type: ignore[no-untyped-def]
    first = get_plugin_manager(load_entrypoints=False, extra=[FakeSource()])
    second = get_plugin_manager(load_entrypoints=False, extra=[OtherSource()])
    assert set(sources(first)) == {"fake"} and set(sources(second)) == {"other"}

