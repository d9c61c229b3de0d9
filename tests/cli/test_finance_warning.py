"""The admin hears it once when finance has no channel: `jalon config apply`
says so on standard error, `jalon serve` logs it at start-up."""

from __future__ import annotations

import logging
import subprocess
import textwrap
from pathlib import Path

from click.testing import CliRunner

from jalon.connector.cli import main
from jalon.connector.web import server
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import NotificationChannel
from tests.e2e.conftest import JALON, Server, free_port, stop, wait_until_up

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jalon.yaml"
WARNING = "no enabled notification channel receives milestone.done"
NO_CHANNEL = """\
entities:
  - {code: atelier, name: Atelier, invoice_prefix: F}
"""


def jalon(db_url: str, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", db_url, *args], catch_exceptions=False)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def add_channel(db_url: str, **data) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            session.add(NotificationChannel(**{"name": data["key"], "target": {"to": ["x@atelier.example"]},
                                               "events": [], "enabled": True, **data}))
    finally:
        engine.dispose()


def test_config_apply_warns_on_stderr_when_no_channel_receives_milestone_done(db_url, tmp_path):  # type: ignore[no-untyped-def]
    result = jalon(db_url, "config", "apply", str(write(tmp_path, NO_CHANNEL)))
    assert result.exit_code == 0
    assert "entities      1 created" in result.stdout
    assert WARNING not in result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith(f"warning: {WARNING}: finance will not hear")
    # a dry run says it too: that is what applying would leave
    dry = jalon(db_url, "config", "apply", "--dry-run", str(write(tmp_path, NO_CHANNEL)))
    assert dry.stderr.startswith(f"warning: {WARNING}")


def test_config_apply_says_nothing_once_a_channel_receives_it(db_url, tmp_path):  # type: ignore[no-untyped-def]
    result = jalon(db_url, "config", "apply", str(EXAMPLE))  # finance-email and billing-chat receive it
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    # the channels were there before: a file without any says nothing either
    assert jalon(db_url, "config", "apply", str(write(tmp_path, NO_CHANNEL))).stderr == ""


def test_a_channel_for_other_events_or_disabled_does_not_count(db_url, tmp_path):  # type: ignore[no-untyped-def]
    add_channel(db_url, key="ops", kind="email", events=["invoice.draft_cancelled"])
    add_channel(db_url, key="off", kind="email", enabled=False)
    assert WARNING in jalon(db_url, "config", "apply", str(write(tmp_path, NO_CHANNEL))).stderr


def test_serve_start_up_warnings(db_url):  # type: ignore[no-untyped-def]
    assert [w[:len(WARNING)] for w in server.start_up_warnings(db_url)] == [WARNING]
    add_channel(db_url, key="finance", kind="email", events=["milestone.done"])
    assert server.start_up_warnings(db_url) == []


def test_serve_says_nothing_of_a_database_it_cannot_read_yet(tmp_path):  # type: ignore[no-untyped-def]
    assert server.start_up_warnings(f"sqlite:///{tmp_path}/not-migrated.db") == []


def test_serve_logs_the_warning_once_before_starting_its_processes(db_url, monkeypatch, caplog):  # type: ignore[no-untyped-def]
    started = []
    monkeypatch.setattr(server.JalonServer, "run", lambda self: started.append(self.options["workers"]))
    with caplog.at_level(logging.WARNING, logger="jalon.connector.web.server"):
        server.run(database_url=db_url, host="127.0.0.1", port=free_port(), workers=3, threads=2)
    assert started == [3]
    [record] = [r for r in caplog.records if WARNING in r.getMessage()]
    assert record.levelno == logging.WARNING


def test_a_real_serve_says_it_once_whatever_its_processes(db_url, tmp_path):  # type: ignore[no-untyped-def]
    workers = "1" if db_url.startswith("sqlite") else "2"
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [JALON, "--database-url", db_url, "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", workers, "--no-worker", "--no-scheduler"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_until_up(Server(f"http://127.0.0.1:{port}", db_url, process, log))
    finally:
        stop(process)
    assert log.read_text(errors="replace").count(WARNING) == 1
