"""A signed delivery whose JSON nests too deeply to be read (100,000 arrays):
accepted (intake does not read bodies), then a dead letter at once with its
reason, never retried, never a traceback; for every source, since the worker
and intake, not each plugin, answer for it."""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from jalon.connector.app import create_app
from jalon.connector.relay import worker
from jalon.core.db import unit_of_work
from jalon.core.models import Delivery
from tests import factories

from .conftest import post

DEEP = b"[" * 100_000 + b"]" * 100_000
REASON = "Unreadable: the body nests too deeply to be read"


def only_delivery(runtime) -> Delivery:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        [delivery] = session.query(Delivery).all()
        return delivery


def no_traceback(caplog) -> None:  # type: ignore[no-untyped-def]
    assert not [record for record in caplog.records if record.exc_info], caplog.text
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("step", ["process_once", "process_one"])
def test_a_fake_source_delivery_nested_too_deeply_is_dead_at_once(make_app, fake, caplog, step):  # type: ignore[no-untyped-def]
    app = make_app(max_body_bytes=len(DEEP) + 1024, max_attempts=5, backoff_base_seconds=0.0)
    runtime = app.extensions["jalon"]
    caplog.set_level(logging.INFO)
    assert post(app.test_client(), DEEP).status_code == 202

    if step == "process_once":
        assert worker.process_once(runtime, owner="w1") == 1
    else:
        [claimed] = worker.claim(runtime, owner="w1", limit=10)
        assert worker.process_one(runtime, claimed) == "dead"

    dead = only_delivery(runtime)
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 1, REASON)
    assert dead.body == DEEP  # kept for the replay after a fix
    assert worker.process_once(runtime, owner="w1") == 0  # never tried again
    assert len(fake.translated) == 1
    no_traceback(caplog)


def test_a_recursion_error_from_any_plugin_is_read_as_too_deep(make_app, fake):  # type: ignore[no-untyped-def]
    app = make_app(max_attempts=5)
    runtime = app.extensions["jalon"]
    post(app.test_client(), b'{"event": "task.done"}')
    fake.translate_error = RecursionError("maximum recursion depth exceeded")
    worker.process_once(runtime, owner="w1")
    dead = only_delivery(runtime)
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 1, REASON)


# ------------------------------------------------------------ the Jira plugin, as installed


@pytest.fixture
def jira_app(db_url):  # type: ignore[no-untyped-def]
    app = create_app(db_url, TESTING=True)
    with unit_of_work(app.extensions["jalon"].sessionmaker) as session:
        factories.seed(session)
    yield app
    app.extensions["jalon"].dispose()


def jira_post(app, body: bytes, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    secret = factories.INTEGRATION["secret"]
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return app.test_client().post(f"/hooks/jira/{factories.INTEGRATION['key']}", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature": signature, **headers})


@pytest.mark.parametrize("headers", [{"X-Atlassian-Webhook-Identifier": "wh-deep-1"}, {}],
                         ids=["cloud (a delivery id)", "data center (keyed on its content)"])
def test_a_signed_jira_delivery_nested_too_deeply_is_dead_at_once(jira_app, caplog, headers):  # type: ignore[no-untyped-def]
    runtime = jira_app.extensions["jalon"]
    caplog.set_level(logging.INFO)

    response = jira_post(jira_app, DEEP, headers)

    assert response.status_code == 202, response.get_data(as_text=True)
    assert worker.process_once(runtime, owner="w1") == 1
    dead = only_delivery(runtime)
    assert (dead.status, dead.attempts, dead.last_error) == ("dead", 1, REASON)
    assert worker.process_once(runtime, owner="w1") == 0
    # sent again, it is the same delivery (keyed by its id, or by its digest when it has none)
    assert jira_post(jira_app, DEEP, headers).status_code == 200
    no_traceback(caplog)
