"""The dispatcher: leases, fencing, backoff, the failed state, write-backs."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import responses

from jalon.connector.outbox.dispatcher import claim, dispatch_once, send_claimed
from jalon.connector.backoff import backoff_seconds
from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.outbox.enqueue import enqueue
from jalon.connector.plugin.types import ChannelSpec, PermanentFailure, RetryLater, SendResult, SourceSpec
from jalon.connector.runtime import build_runtime
from jalon.core.models import OutboxMessage
from jalon.core.types import utcnow

from .conftest import CHAT, add_channel, outbox


class Recorder:
    """A channel plugin named "fake" that answers what the test tells it."""

    def __init__(self, *answers):  # type: ignore[no-untyped-def]
        self.answers = list(answers)
        self.sent: list = []

    @hookimpl
    def jalon_channel_register(self):  # type: ignore[no-untyped-def]
        return ChannelSpec(name="fake", title="Fake")

    @hookimpl
    def jalon_channel_send(self, channel, message, settings):  # type: ignore[no-untyped-def]
        self.sent.append(message)
        answer = self.answers.pop(0) if self.answers else SendResult(external_id=f"ext-{message.id}")
        if isinstance(answer, Exception):
            raise answer
        return answer


def _runtime(db_url, settings, *plugins):  # type: ignore[no-untyped-def]
    return build_runtime(db_url, settings=settings, plugins=plugins, load_entrypoints=False)


def _queue(uow, key: str = "k1", channel: str = "fake", **kw) -> int:  # type: ignore[no-untyped-def]
    with uow() as session:
        message = enqueue(session, channel=channel, kind="test.event", idempotency_key=key,
                          destination={"to": "x"}, payload={"text": "hello"}, **kw)
        session.flush()
        return message.id


def _expire(uow, message_id: int) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        session.get(OutboxMessage, message_id).lease_expires_at = utcnow() - timedelta(seconds=1)


def test_a_due_message_is_sent_and_recorded(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    plugin = Recorder()
    runtime = _runtime(db_url, settings, plugin)
    try:
        message_id = _queue(uow)
        assert dispatch_once(runtime, owner="a") == 1
        [message] = outbox(uow)
        assert (message.status, message.attempts, message.external_id) == ("sent", 1, f"ext-{message_id}")
        assert message.lease_token is None and message.sent_at is not None
        assert plugin.sent[0].idempotency_key == "k1"
        assert dispatch_once(runtime, owner="a") == 0
    finally:
        runtime.dispose()


def test_a_message_not_yet_due_waits(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(db_url, settings, Recorder())
    try:
        message_id = _queue(uow)
        with uow() as session:
            session.get(OutboxMessage, message_id).next_attempt_at = utcnow() + timedelta(minutes=5)
        assert dispatch_once(runtime, owner="a") == 0
    finally:
        runtime.dispose()


def test_an_expired_lease_is_claimed_again(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(db_url, settings, Recorder())
    try:
        message_id = _queue(uow)
        [dead] = claim(runtime, owner="dead-worker", limit=10)  # claimed, then its worker dies
        assert claim(runtime, owner="b", limit=10) == []  # the lease holds
        _expire(uow, message_id)
        assert dispatch_once(runtime, owner="b") == 1
        [message] = outbox(uow)
        assert message.status == "sent" and message.attempts == 2
        assert dead.token != message.lease_token
    finally:
        runtime.dispose()


def test_a_stale_sender_cannot_record_over_the_new_owner(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    plugin = Recorder(RetryLater("slow"), SendResult(external_id="new-owner"))
    runtime = _runtime(db_url, settings, plugin)
    try:
        message_id = _queue(uow)
        [stale] = claim(runtime, owner="stale", limit=10)
        _expire(uow, message_id)
        [fresh] = claim(runtime, owner="fresh", limit=10)
        # the stale sender finishes late: its "retry later" is fenced off
        assert send_claimed(runtime, stale) is False
        [message] = outbox(uow)
        assert (message.status, message.lease_owner) == ("sending", "fresh")
        assert send_claimed(runtime, fresh) is True
        [message] = outbox(uow)
        assert (message.status, message.external_id) == ("sent", "new-owner")
    finally:
        runtime.dispose()


def test_retry_later_backs_off_exponentially_and_honours_after(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    assert [backoff_seconds(n, settings) for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff_seconds(10, replace(settings, backoff_max_seconds=5)) == 5
    runtime = _runtime(db_url, settings, Recorder(RetryLater("busy"), RetryLater("wait", after=90)))
    try:
        message_id = _queue(uow)
        before = utcnow()
        dispatch_once(runtime, owner="a")
        [message] = outbox(uow)
        assert message.status == "pending" and message.last_error == "busy"
        assert before + timedelta(seconds=2) <= message.next_attempt_at <= utcnow() + timedelta(seconds=2)
        with uow() as session:
            session.get(OutboxMessage, message_id).next_attempt_at = utcnow()
        dispatch_once(runtime, owner="a")
        [message] = outbox(uow)
        assert message.next_attempt_at >= utcnow() + timedelta(seconds=85)
    finally:
        runtime.dispose()


def test_the_last_attempt_fails_the_message_and_keeps_it(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(db_url, settings, Recorder(*[RetryLater("down")] * settings.max_attempts))
    try:
        message_id = _queue(uow)
        for _ in range(settings.max_attempts):
            with uow() as session:
                session.get(OutboxMessage, message_id).next_attempt_at = utcnow()
            dispatch_once(runtime, owner="a")
        [message] = outbox(uow)
        assert message.status == "failed" and message.attempts == settings.max_attempts
        assert message.last_error == f"gave up after {settings.max_attempts} attempts: down"
        assert dispatch_once(runtime, owner="a") == 0
    finally:
        runtime.dispose()


def test_a_permanent_failure_fails_at_once(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(db_url, settings, Recorder(PermanentFailure("401 from the tool")))
    try:
        _queue(uow)
        dispatch_once(runtime, owner="a")
        [message] = outbox(uow)
        assert (message.status, message.attempts, message.last_error) == ("failed", 1, "401 from the tool")
    finally:
        runtime.dispose()


def test_a_plugin_that_raises_is_retried_not_lost(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(db_url, settings, Recorder(KeyError("oops")))
    try:
        _queue(uow)
        dispatch_once(runtime, owner="a")
        [message] = outbox(uow)
        assert message.status == "pending" and "KeyError" in message.last_error
    finally:
        runtime.dispose()


def test_a_channel_without_plugin_fails_with_its_name(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(db_url, settings, Recorder())
    try:
        _queue(uow, channel="pigeon")
        dispatch_once(runtime, owner="a")
        [message] = outbox(uow)
        assert (message.status, message.last_error) == ("failed", "no plugin for channel pigeon")
    finally:
        runtime.dispose()


def test_the_sender_of_the_last_attempt_dying_ends_failed_not_resent(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    plugin = Recorder()
    runtime = _runtime(db_url, settings, plugin)
    try:
        message_id = _queue(uow)
        with uow() as session:
            session.get(OutboxMessage, message_id).attempts = settings.max_attempts - 1
        claim(runtime, owner="dies", limit=10)
        _expire(uow, message_id)
        assert dispatch_once(runtime, owner="b") == 0
        [message] = outbox(uow)
        assert message.status == "failed" and "lease expired" in message.last_error
        assert plugin.sent == []
    finally:
        runtime.dispose()


def test_two_dispatchers_never_claim_the_same_message(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    runtime = _runtime(db_url, settings, Recorder())
    try:
        for n in range(5):
            _queue(uow, key=f"k{n}")
        first = claim(runtime, owner="a", limit=3)
        second = claim(runtime, owner="b", limit=10)
        assert len(first) == 3 and len(second) == 2
        assert not {c.id for c in first} & {c.id for c in second}
    finally:
        runtime.dispose()


@responses.activate
def test_a_disabled_channel_fails_its_messages_with_the_reason(
        runtime, world, uow, public_dns) -> None:  # type: ignore[no-untyped-def]
    from jalon.core import catalog

    channel_id = add_channel(uow, **CHAT)
    _queue(uow, key="c1", channel="chat", channel_id=channel_id)
    with uow() as session:
        catalog.upsert_channel(session, {**CHAT, "enabled": False}, actor="test")
    dispatch_once(runtime, owner="a")
    [message] = outbox(uow)
    assert message.status == "failed" and "disabled" in message.last_error


class FakeSource:
    """A source plugin that can comment, registered in-process."""

    def __init__(self) -> None:
        self.calls: list = []

    @hookimpl
    def jalon_source_register(self):  # type: ignore[no-untyped-def]
        return SourceSpec(name="jira", title="Jira")

    @hookimpl
    def jalon_source_comment(self, source, integration, comment, http):  # type: ignore[no-untyped-def]
        self.calls.append((integration, comment, http))
        answer = http.post_json(f"issue/{comment.task_ref}/comment", {"body": comment.text})
        return SendResult(external_id=answer["id"])


@responses.activate
def test_a_write_back_goes_through_the_source_plugin_with_a_rest_client(db_url, settings, uow, world,
                                                                       public_dns) -> None:  # type: ignore[no-untyped-def]
    from jalon.core import catalog

    from .conftest import complete_milestone

    with uow() as session:
        catalog.upsert_integration(session, {"key": "jira-atelier", "source": "jira",
                                             "base_url": "https://jira.atelier.test/rest/api/3",
                                             "credentials": {"api_token": "tok-SECRET"}}, actor="test")
    complete_milestone(uow, settings)
    responses.post("https://jira.atelier.test/rest/api/3/issue/WEB-1/comment", json={"id": "10042"})
    source = FakeSource()
    runtime = _runtime(db_url, settings, source)
    try:
        dispatch_once(runtime, owner="a")
    finally:
        runtime.dispose()
    [(integration, comment, http)] = source.calls
    assert integration.key == "jira-atelier" and integration.credentials == {"api_token": "tok-SECRET"}
    assert comment.task_ref == "WEB-1" and "facture brouillon" in comment.text
    assert comment.task_url == "https://jira.atelier.test/browse/WEB-1"
    [message] = outbox(uow, channel="jira")
    assert (message.status, message.external_id) == ("sent", "10042")
    assert comment.idempotency_key == message.idempotency_key


def _write_back(db_url, settings, uow, *, base_url: str, settings_of_integration: dict | None = None):  # type: ignore[no-untyped-def]
    """A milestone's comment sent through FakeSource, which lets the REST client's errors through."""
    from jalon.core import catalog

    from .conftest import complete_milestone

    with uow() as session:
        catalog.upsert_integration(session, {"key": "jira-atelier", "source": "jira", "base_url": base_url,
                                             "settings": settings_of_integration or {}}, actor="test")
    complete_milestone(uow, settings)
    runtime = _runtime(db_url, settings, FakeSource())
    try:
        dispatch_once(runtime, owner="a")
    finally:
        runtime.dispose()
    [message] = outbox(uow, channel="jira")
    return message


@pytest.mark.parametrize("answer, status, error", [
    ({"status": 401}, "failed", "HTTP 401"),
    ({"status": 404}, "failed", "HTTP 404"),
    ({"status": 400}, "failed", "HTTP 400"),
    ({"status": 503}, "pending", "HTTP 503"),
    ({"status": 429, "headers": {"Retry-After": "120"}}, "pending", "HTTP 429"),
    ({"status": 201, "body": "<html>created</html>"}, "sent", None),
    ({"status": 302, "headers": {"Location": "http://169.254.169.254/latest"}}, "failed",
     "HTTP 302 redirect to 169.254.169.254 not followed"),
    ({"status": 301, "headers": {"Location": "https://jira.elsewhere.test/issue/WEB-1/comment"}}, "failed",
     "HTTP 301 redirect to jira.elsewhere.test not followed"),
])
@responses.activate
def test_the_dispatcher_decides_from_the_tools_answer_to_a_write_back(db_url, settings, uow, world, public_dns,
                                                                     answer, status, error) -> None:  # type: ignore[no-untyped-def]
    responses.post("https://jira.atelier.test/issue/WEB-1/comment", **answer)
    message = _write_back(db_url, settings, uow, base_url="https://jira.atelier.test")
    assert message.status == status
    assert (error in (message.last_error or "")) if error else message.last_error is None


def test_a_write_back_to_a_private_address_fails_naming_the_setting_that_allows_it(db_url, settings, uow,
                                                                                  world) -> None:  # type: ignore[no-untyped-def]
    message = _write_back(db_url, settings, uow, base_url="http://127.0.0.1:9/jira")
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error.startswith("url_not_allowed: ")
    assert "allow_private_network: true in the integration's settings" in message.last_error


class Leaky:
    @hookimpl
    def jalon_channel_register(self):  # type: ignore[no-untyped-def]
        return ChannelSpec(name="webhook", title="Leaky webhook")

    @hookimpl
    def jalon_channel_send(self, channel, message, settings):  # type: ignore[no-untyped-def]
        raise RetryLater(f"failed posting to {message.destination['url']} signed with {message.secret}")


def test_the_channel_url_and_secret_never_reach_last_error(db_url, settings, uow, world) -> None:  # type: ignore[no-untyped-def]
    from .conftest import WEBHOOK

    channel_id = add_channel(uow, **WEBHOOK)
    _queue(uow, key="w1", channel="webhook", channel_id=channel_id)
    runtime = _runtime(db_url, settings, Leaky())
    try:
        dispatch_once(runtime, owner="a")
    finally:
        runtime.dispose()
    [message] = outbox(uow)
    assert message.last_error == "failed posting to *** signed with ***"


def test_on_postgresql_a_row_locked_by_another_dispatcher_is_skipped_not_waited_for(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    if not db_url.startswith("postgresql"):
        import pytest

        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite serialises writers with BEGIN IMMEDIATE")
    from sqlalchemy import select

    runtime = _runtime(db_url, settings, Recorder())
    try:
        ids = [_queue(uow, key=f"k{n}") for n in range(3)]
        holder = runtime.sessionmaker()
        try:
            holder.execute(select(OutboxMessage).where(OutboxMessage.id == ids[0]).with_for_update()).scalar_one()
            claimed = claim(runtime, owner="b", limit=10)  # returns at once, without ids[0]
            assert sorted(c.id for c in claimed) == ids[1:]
        finally:
            holder.rollback()
            holder.close()
        assert [c.id for c in claim(runtime, owner="c", limit=10)] == ids[:1]
    finally:
        runtime.dispose()


def test_a_batch_is_recorded_in_one_transaction_each_result_on_its_own(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import event

    plugin = Recorder(SendResult(external_id="a"), RuntimeError("plugin bug"), SendResult(external_id="c"))
    runtime = _runtime(db_url, settings, plugin)
    try:
        ids = [_queue(uow, key=f"k{n}") for n in range(3)]
        begun = []
        listener = lambda conn: begun.append(1)  # noqa: E731
        event.listen(runtime.engine, "begin", listener)
        try:
            assert dispatch_once(runtime, owner="d1") == 3
        finally:
            event.remove(runtime.engine, "begin", listener)
        assert len(begun) == 2  # the claim, then the record of all three
        messages = {m.id: m for m in outbox(uow)}
        assert [messages[i].status for i in ids] == ["sent", "pending", "sent"]
        assert [messages[i].external_id for i in ids] == ["a", None, "c"]
        assert messages[ids[1]].last_error == "RuntimeError: plugin bug" and messages[ids[1]].attempts == 1
        assert len(plugin.sent) == 3
    finally:
        runtime.dispose()


def test_a_lost_lease_in_a_batch_skips_only_that_result(db_url, settings, uow) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from jalon.connector.outbox.dispatcher import outcome_of, record_results

    plugin = Recorder()
    runtime = _runtime(db_url, settings, plugin)
    try:
        ids = [_queue(uow, key=f"k{n}") for n in range(3)]
        claims = claim(runtime, owner="slow", limit=10)
        assert [c.id for c in claims] == ids
        with uow() as session:
            session.execute(update(OutboxMessage).where(OutboxMessage.id == ids[1])
                            .values(lease_owner="fast", lease_token="newer"))
        assert record_results(runtime, [outcome_of(runtime, c) for c in claims]) == [True, False, True]
        messages = {m.id: m for m in outbox(uow)}
        assert [messages[i].status for i in ids] == ["sent", "sending", "sent"]
        assert (messages[ids[1]].lease_owner, messages[ids[1]].external_id) == ("fast", None)
    finally:
        runtime.dispose()
