"""Signed deliveries through a running `jalon serve`, as a PM tool sends them."""

from __future__ import annotations

import json
import subprocess

import requests
from sqlalchemy import select

from jalon.core import catalog
from jalon.core.db import make_sessionmaker, unit_of_work
from jalon.core.models import Delivery, Invoice
from tests.e2e.conftest import JALON
from tests.reliability import fakesource
from tests.reliability.conftest import wait_until


def deliveries(engine) -> list[Delivery]:  # type: ignore[no-untyped-def]
    with make_sessionmaker(engine)() as session:
        return list(session.execute(select(Delivery).order_by(Delivery.id)).scalars())


def send(server, key: str, body: bytes, secret: str = fakesource.SECRET) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.post(server.hook_url, data=body, headers=fakesource.headers_for(secret, key, body), timeout=10)


def status_of(engine, key: str) -> str | None:  # type: ignore[no-untyped-def]
    return next((d.status for d in deliveries(engine) if d.idempotency_key == key), None)


def test_refused_deliveries_are_stored_nowhere(relay, engine):
    server = relay(milestones=2)
    body = fakesource.done_body("T-1")
    forged = send(server, "forged", body, secret="not-the-secret")
    assert forged.status_code == 401 and forged.json()["code"] == "signature_invalid"
    big = b'{"type": "noise", "pad": "' + b"x" * (1024 * 1024) + b'"}'
    oversized = send(server, "big", big)
    assert oversized.status_code == 413
    unknown = requests.post(f"{server.url}/hooks/fake/no-such-integration", data=body, timeout=10,
                            headers=fakesource.headers_for(fakesource.SECRET, "nowhere", body))
    assert unknown.status_code == 404
    assert deliveries(engine) == []


def test_a_duplicate_is_stored_once_and_an_ignored_event_is_acknowledged(relay, engine):
    server = relay(milestones=2)
    body = fakesource.done_body("T-1")
    assert send(server, "d-1", body).status_code == 202
    again = send(server, "d-1", body)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    noise = json.dumps({"type": "noise"}).encode()
    assert send(server, "n-1", noise).status_code == 202
    wait_until(lambda: status_of(engine, "n-1") == "ignored" and status_of(engine, "d-1") == "done",
               timeout=30, what="both deliveries processed")
    assert [d.idempotency_key for d in deliveries(engine)] == ["d-1", "n-1"]


def test_an_unreadable_delivery_is_a_dead_letter_and_replays_once_after_the_fix(relay, engine):
    server = relay(milestones=2)
    body = json.dumps({"type": "done", "project": "FIX", "task": "T-2", "requires": "ready"}).encode()
    assert send(server, "strict-1", body).status_code == 202
    wait_until(lambda: status_of(engine, "strict-1") == "dead", timeout=30, what="a dead letter")
    [dead] = [d for d in deliveries(engine) if d.idempotency_key == "strict-1"]
    assert "'ready' is missing" in dead.last_error

    # the admin fixes the integration, then replays the dead letter
    with unit_of_work(make_sessionmaker(engine)) as session:
        catalog.upsert_integration(session, {"key": fakesource.INTEGRATION_KEY, "source": fakesource.SOURCE,
                                             "name": "Fake", "settings": {"ready": True}}, actor="admin")
    for _ in range(2):  # replaying twice still bills once
        subprocess.run([JALON, "--database-url", server.database_url, "deliveries", "replay", str(dead.id)],
                       check=True, capture_output=True, timeout=60)
        wait_until(lambda: status_of(engine, "strict-1") == "done", timeout=30, what="the replay processed")
    with make_sessionmaker(engine)() as session:
        drafts = session.execute(select(Invoice).where(Invoice.status == "draft")).scalars().all()
        assert [invoice.milestone.reference for invoice in drafts] == ["M2"]
