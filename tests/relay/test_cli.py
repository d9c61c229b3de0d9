"""jalon deliveries list / replay, and jalon worker."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from click.testing import CliRunner
from sqlalchemy import select

from jalon.connector.cli import main
from jalon.connector.relay.worker import process_once
from jalon.core.models import AuditRecord, Delivery
from tests.e2e.conftest import JALON

from .conftest import payload, post


def jalon(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", db_url, *args])


def dead_letters(app, runtime) -> None:  # type: ignore[no-untyped-def]
    client = app.test_client()
    post(client, b"{broken", delivery="x")
    post(client, b"[also broken", delivery="y")
    post(client, payload(), delivery="z")
    process_once(runtime, owner="w1")


def statuses(runtime) -> list[str]:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return list(session.execute(select(Delivery.status).order_by(Delivery.id)).scalars())


def test_list_shows_the_dead_letters_and_their_reason(app, runtime, db_url):  # type: ignore[no-untyped-def]
    dead_letters(app, runtime)
    result = jalon(db_url, "deliveries", "list", "--status", "dead")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["2", "1"]
    assert all("\tdead\tfake-atelier\t" in line and "Unreadable: not JSON" in line for line in lines)
    assert "broken" not in result.output  # never the body


def test_replay_puts_one_delivery_back_and_audits_it(app, runtime, db_url):  # type: ignore[no-untyped-def]
    dead_letters(app, runtime)
    result = jalon(db_url, "deliveries", "replay", "1", "--reason", "parser fixed")
    assert result.exit_code == 0, result.output
    assert "delivery 1 queued for replay" in result.output
    assert statuses(runtime) == ["pending", "dead", "done"]
    with runtime.sessionmaker() as session:
        [record] = session.execute(select(AuditRecord).where(AuditRecord.action == "delivery.replayed")).scalars()
    assert (record.actor, record.subject_id, record.reason) == ("cli", "1", "parser fixed")


def test_replay_all_dead(app, runtime, db_url):  # type: ignore[no-untyped-def]
    dead_letters(app, runtime)
    result = jalon(db_url, "deliveries", "replay", "--all-dead")
    assert result.exit_code == 0, result.output
    assert statuses(runtime) == ["pending", "pending", "done"]
    assert jalon(db_url, "deliveries", "replay", "--all-dead").output.strip() == "no dead letters"


def test_replay_needs_exactly_one_target(app, db_url):  # type: ignore[no-untyped-def]
    for args in ([], ["1", "--all-dead"]):
        result = jalon(db_url, "deliveries", "replay", *args)
        assert result.exit_code == 1 and "error [replay_target_required]" in result.output


def test_replaying_an_unknown_delivery_fails_with_its_code(app, db_url):  # type: ignore[no-untyped-def]
    result = jalon(db_url, "deliveries", "replay", "42")
    assert result.exit_code == 1 and "error [delivery_not_found]" in result.output


def test_worker_once_processes_what_is_due_and_exits(app, runtime, db_url):  # type: ignore[no-untyped-def]
    post(app.test_client(), payload())
    # the CLI loads installed plugins only: no one translates the test's "fake" source, so it is retried later
    result = jalon(db_url, "worker", "--once", "--owner", "cli-test")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 deliveries processed")
    with runtime.sessionmaker() as session:
        delivery = session.get(Delivery, 1)
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_error == "LookupError: no installed plugin translates 'fake' deliveries"
    assert jalon(db_url, "worker", "--once").output.startswith("0 deliveries processed")


def test_worker_runs_until_sigterm(app, db_url, tmp_path):  # type: ignore[no-untyped-def]
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen([JALON, "--database-url", db_url, "worker", "--owner", "sig-test"],
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while "running" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        assert "worker sig-test running" in log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert "worker sig-test stopped" in log.read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
