"""No loss, no double effect, against a real ``jalon serve``: a server killed
with SIGKILL in the middle of a stream of deliveries, and deliveries that
arrive three times at once."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from jalon.core.models import Delivery, Invoice, Milestone, OutboxMessage, TimeEntry
from tests.reliability import fakesource
from tests.reliability.conftest import drained, wait_until


def deliveries(count: int, *, every_milestone: int = 5) -> dict[str, bytes]:
    """``count`` distinct deliveries: every ``every_milestone``-th completes a
    milestone (T-1, T-2...), the others log time on a worklog of their own
    (WL-i, i minutes)."""
    made: dict[str, bytes] = {}
    for i in range(count):
        if i % every_milestone == 0:
            made[f"d-{i}"] = fakesource.done_body(f"T-{i // every_milestone + 1}")
        else:
            made[f"d-{i}"] = fakesource.time_body(f"WL-{i}", 60 * i)
    return made


def send(session: requests.Session, url: str, key: str, body: bytes) -> int:
    return session.post(url, data=body, headers=fakesource.headers_for(fakesource.SECRET, key, body),
                        timeout=10).status_code


def assert_exactly_once(engine, sent: dict[str, bytes], record_file) -> None:  # type: ignore[no-untyped-def]
    """Every delivery once, every effect once: the database and the hand-offs."""
    milestones = sum(1 for body in sent.values() if b'"done"' in body)
    with engine.connect() as conn:
        keys = Counter(conn.execute(select(Delivery.idempotency_key)).scalars())
        assert set(keys) == set(sent) and set(keys.values()) == {1}
        statuses = Counter(conn.execute(select(Delivery.status)).scalars())
        assert statuses == {"done": len(sent)}, statuses
        # one time entry per worklog, with its own seconds
        entries = dict(conn.execute(select(TimeEntry.worklog_ref, TimeEntry.seconds)).all())
        expected = {f"WL-{key[2:]}": 60 * int(key[2:]) for key, body in sent.items() if b'"time"' in body}
        assert entries == expected
        # one draft invoice per milestone, every milestone done
        per_milestone = Counter(conn.execute(select(Invoice.milestone_id)).scalars())
        assert len(per_milestone) == milestones and set(per_milestone.values()) == {1}
        assert conn.execute(select(func.count()).select_from(Milestone).where(Milestone.status == "done")
                            ).scalar_one() == milestones
        # one finance notification and one write-back per milestone, all handed off
        messages = conn.execute(select(OutboxMessage.kind, OutboxMessage.status, OutboxMessage.idempotency_key)).all()
        assert Counter(kind for kind, _, _ in messages) == {"milestone.done": milestones, "comment": milestones}
        assert {status for _, status, _ in messages} == {"sent"}
        assert len({key for _, _, key in messages}) == len(messages)
    handed = Counter(key for key, _, _ in fakesource.read_records(str(record_file)))
    queued = {key for _, _, key in messages}
    # delivery to channels is at least once (a kill between the send and its record resends it,
    # under the same idempotency key); every message was handed off, none was invented
    assert {key for key in handed if not key.startswith("comment:")} == {
        key for kind, _, key in messages if kind == "milestone.done"}
    assert {key.removeprefix("comment:") for key in handed if key.startswith("comment:")} == {
        key for kind, _, key in messages if kind == "comment"} <= queued


@pytest.mark.slow
def test_a_server_killed_mid_stream_loses_and_doubles_nothing(relay, engine):
    sent = deliveries(300)
    server = relay(milestones=60)
    acked: dict[str, int] = {}
    lock = threading.Lock()
    local = threading.local()

    def post(key: str) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        try:
            status = send(local.session, server.hook_url, key, sent[key])
        except requests.RequestException:
            return  # not acknowledged: the PM tool will retry it
        if status in (200, 202):
            with lock:
                acked[key] = status
                kill_now = len(acked) == 120
            if kill_now:  # from the sending side, so the kill lands mid-stream however fast the server is
                server.kill()

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(post, key) for key in sent]
        for future in futures:
            future.result(timeout=60)
    acked_before = dict(acked)
    assert 120 <= len(acked_before) < len(sent), "the kill must land mid-stream"

    server.start()
    # the PM tool retries what was not acknowledged, and resends a few that were
    retried = [key for key in sent if key not in acked_before]
    again = random.Random(7).sample(sorted(acked_before), 10)
    with requests.Session() as session:
        for key in retried:
            assert send(session, server.hook_url, key, sent[key]) in (200, 202)
        for key in again:
            assert send(session, server.hook_url, key, sent[key]) == 200  # a duplicate, stored once
    wait_until(drained(engine), timeout=90, what="inbox and outbox drained", every=0.5)
    assert_exactly_once(engine, sent, server.record_file)


@pytest.mark.slow
def test_a_delivery_arriving_three_times_at_once_has_one_effect(relay, engine):
    sent = deliveries(40, every_milestone=2)
    server = relay(milestones=20)
    attempts = [key for key in sent for _ in range(3)]
    random.Random(3).shuffle(attempts)
    answers: dict[str, list[int]] = {key: [] for key in sent}
    lock = threading.Lock()
    local = threading.local()
    start = threading.Barrier(12)

    def post(key: str) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            start.wait(timeout=10)  # every thread fires together
        status = send(local.session, server.hook_url, key, sent[key])
        with lock:
            answers[key].append(status)

    with ThreadPoolExecutor(12) as pool:
        for future in [pool.submit(post, key) for key in attempts]:
            future.result(timeout=60)
    # each delivery: stored once (202), recognised twice as a duplicate (200)
    assert {key: sorted(codes) for key, codes in answers.items()} == {key: [200, 200, 202] for key in sent}
    wait_until(drained(engine), timeout=60, what="inbox and outbox drained", every=0.3)
    assert_exactly_once(engine, sent, server.record_file)
    time.sleep(0.5)  # nothing more happens afterwards either
    assert_exactly_once(engine, sent, server.record_file)
