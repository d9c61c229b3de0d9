"""``jalon secrets`` and the keys every process needs: secrets sealed at rest
after ``config apply`` and ``integrations connect`` (nothing in clear in the
database file nor in its rows), a key rotated and the old one dropped, a
missing or wrong key a clear error line, and the SQLite file its owner's only."""

from __future__ import annotations

import os
import stat
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import make_url, select

from jalon.connector.app import create_app
from jalon.connector.cli import main
from jalon.core import secrets
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Integration, NotificationChannel

WEBHOOK_SECRET = "whsec-sealed-webhook-7Qm2Lx"
API_TOKEN = "ATATT3xFfGF0-sealed-api-token"
CHANNEL_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CHAT_URL = "https://hooks.chat.test/services/T0/B0/SEALED-CHAT-PATH"
CONNECT_TOKEN = "ATATT3xFfGF0-connect-api-token"
MISSING = "error [secret_keys_missing]: set JALON_SECRET_KEYS (generate one with jalon secrets generate-key)"

CONFIG = f"""
integrations:
  - key: jira-sealed
    source: jira
    name: Jira
    base_url: https://sealed.atlassian.net
    secret: {WEBHOOK_SECRET}
    credentials: {{email: bot@atelier.example, api_token: {API_TOKEN}}}
channels:
  - key: finance-chat
    kind: chat
    target: {{url: "{CHAT_URL}"}}
    events: [milestone.done]
  - key: books
    kind: webhook
    target: {{url: "https://93.184.215.14/hooks/jalon"}}
    secret: {CHANNEL_SECRET}
"""


def jalon(db_url: str, *args: str, env: dict[str, str | None] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, ["--database-url", db_url, *args], env=env)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "jalon.yaml"
    path.write_text(textwrap.dedent(CONFIG), encoding="utf-8")
    return path


@pytest.fixture
def no_keys(monkeypatch):  # type: ignore[no-untyped-def]
    """A process given no key (the run's key comes back after the test)."""
    monkeypatch.delenv(secrets.KEYS_SETTING)
    secrets.forget_keys()


def _stored(db_url: str) -> tuple[list[Integration], list[NotificationChannel]]:
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            found = (list(session.scalars(select(Integration).order_by(Integration.key))),
                     list(session.scalars(select(NotificationChannel).order_by(NotificationChannel.key))))
            session.expunge_all()
            return found
    finally:
        engine.dispose()


def _at_rest(db_url: str) -> str:
    """Everything the database holds, as bytes: on SQLite its files (the
    database, its write-ahead log), and on every engine each row of each
    table through the driver alone."""
    chunks = []
    if db_url.startswith("sqlite"):
        path = Path(make_url(db_url).database or "")
        chunks += [file.read_bytes().decode("latin-1") for file in path.parent.glob(path.name + "*")]
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in ("integrations", "notification_channels", "audit_records", "mappings", "deliveries",
                          "outbox_messages"):
                chunks += [repr(tuple(row)) for row in conn.exec_driver_sql(f"SELECT * FROM {table}")]
    finally:
        engine.dispose()
    return "\n".join(chunks)


def test_nothing_secret_is_in_clear_after_config_apply_and_integrations_connect(db_url, config) -> None:  # type: ignore[no-untyped-def]
    applied = jalon(db_url, "config", "apply", str(config))
    assert applied.exit_code == 0, applied.output
    connected = jalon(db_url, "integrations", "connect", "jira", "--site", "https://acme.atlassian.net",
                      "--key", "jira-acme", "--email", "admin@atelier.example", "--api-token", CONNECT_TOKEN,
                      "--no-register")
    assert connected.exit_code == 0, connected.output

    (acme, sealed), (books, chat) = _stored(db_url)
    generated = acme.secret  # the webhook secret connect made
    assert generated and acme.credentials["api_token"] == CONNECT_TOKEN
    assert (sealed.secret, sealed.credentials["api_token"]) == (WEBHOOK_SECRET, API_TOKEN)
    assert (books.secret, chat.target["url"]) == (CHANNEL_SECRET, CHAT_URL)
    at_rest = _at_rest(db_url)
    assert "jira-acme" in at_rest and secrets.PREFIX in at_rest  # the scan sees the rows
    for secret in (WEBHOOK_SECRET, API_TOKEN, CHANNEL_SECRET, CHAT_URL, CONNECT_TOKEN, generated):
        assert secret not in at_rest


def test_rotate_key_re_seals_so_that_the_old_key_can_be_dropped(db_url, config) -> None:  # type: ignore[no-untyped-def]
    old, new = secrets.generate_key(), secrets.generate_key()
    assert jalon(db_url, "config", "apply", str(config), env={secrets.KEYS_SETTING: old}).exit_code == 0

    rotated = jalon(db_url, "secrets", "rotate-key", env={secrets.KEYS_SETTING: f"{new},{old}"})
    assert rotated.exit_code == 0, rotated.output
    assert "integrations.secret: 0 sealed from clear, 1 re-sealed, 0 unchanged" in rotated.output
    assert "notification_channels.target: 0 sealed from clear, 2 re-sealed, 0 unchanged" in rotated.output
    assert "5 secrets sealed with the first key" in rotated.output
    assert old not in rotated.output and new not in rotated.output
    again = jalon(db_url, "secrets", "rotate-key", env={secrets.KEYS_SETTING: f"{new},{old}"})
    assert "0 secrets sealed with the first key" in again.output

    secrets.configure_keys([new])  # the old key dropped
    (integration,), (books, chat) = _stored(db_url)
    assert (integration.secret, books.secret, chat.target["url"]) == (WEBHOOK_SECRET, CHANNEL_SECRET, CHAT_URL)


@pytest.fixture
def served(monkeypatch) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """``jalon serve`` up to the moment it would serve: what it would have served with."""
    calls: list[dict[str, object]] = []
    monkeypatch.setattr("jalon.connector.web.server.run", lambda **options: calls.append(options))
    return calls


def test_a_wrong_key_is_an_error_line_not_a_traceback(db_url, config, served) -> None:  # type: ignore[no-untyped-def]
    assert jalon(db_url, "config", "apply", str(config)).exit_code == 0
    wrong = {secrets.KEYS_SETTING: secrets.generate_key()}

    for args in (("secrets", "rotate-key"), ("secrets", "rotate-key", "--dry-run"), ("config", "apply", str(config)),
                 ("serve",), ("worker", "--once")):
        result = jalon(db_url, *args, env=wrong)
        assert result.exit_code == 1, result.output
        assert result.output.startswith("error [secret_unreadable]: ") and "Traceback" not in result.output
        assert wrong[secrets.KEYS_SETTING] not in result.output
    assert served == []  # checked before serving
    secrets.configure_keys([os.environ[secrets.KEYS_SETTING]])
    assert _stored(db_url)[0][0].secret == WEBHOOK_SECRET  # nothing was changed


def test_serve_warns_of_secrets_still_in_clear_and_rotate_key_seals_them(db_url, config, served) -> None:  # type: ignore[no-untyped-def]
    assert jalon(db_url, "config", "apply", str(config)).exit_code == 0
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:  # as stored before sealing existed
            conn.exec_driver_sql(f"UPDATE integrations SET secret = '{WEBHOOK_SECRET}'")
    finally:
        engine.dispose()

    serving = jalon(db_url, "serve", "--no-migrate")
    assert serving.exit_code == 0 and len(served) == 1
    assert "warning: 1 secrets are stored in clear (from before sealing): run jalon secrets rotate-key" \
        in serving.output
    checked = jalon(db_url, "secrets", "rotate-key", "--dry-run")
    assert "integrations.secret: 1 sealed from clear, 0 re-sealed, 0 unchanged" in checked.output
    assert "1 secrets to seal with the first key (dry run: nothing written)" in checked.output
    assert WEBHOOK_SECRET in _at_rest(db_url)
    rotated = jalon(db_url, "secrets", "rotate-key")
    assert "integrations.secret: 1 sealed from clear, 0 re-sealed, 0 unchanged" in rotated.output
    assert WEBHOOK_SECRET not in _at_rest(db_url)
    assert _stored(db_url)[0][0].secret == WEBHOOK_SECRET
    again = jalon(db_url, "serve", "--no-migrate")
    assert again.exit_code == 0 and "warning" not in again.output


def test_a_malformed_key_is_refused_at_start(db_url) -> None:  # type: ignore[no-untyped-def]
    result = jalon(db_url, "token", "list", env={secrets.KEYS_SETTING: "change-me"})
    assert result.exit_code == 1
    assert result.output.startswith("error [secret_keys_invalid]: JALON_SECRET_KEYS: key 1 of 1 is not a Fernet key")
    assert "change-me" not in result.output


@pytest.mark.parametrize("args", [
    ("config", "apply", "CONFIG"), ("token", "list"), ("worker", "--once"), ("serve",), ("serve", "--no-migrate"),
    ("secrets", "rotate-key"), ("deliveries", "list"), ("jobs", "list"),
])
def test_without_a_key_every_command_that_opens_the_database_stops_at_once(db_url, config, no_keys, served,
                                                                             args) -> None:  # type: ignore[no-untyped-def]
    result = jalon(db_url, *(str(config) if arg == "CONFIG" else arg for arg in args))

    assert result.exit_code == 1, result.output
    assert result.output.strip() == MISSING
    assert served == []


def test_without_a_key_the_app_is_not_built(db_url, no_keys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(secrets.SecretKeysMissing, match="set JALON_SECRET_KEYS"):
        create_app(db_url)


@pytest.mark.parametrize("args", [
    ("--help",), ("serve", "--help"), ("worker", "--help"), ("secrets", "rotate-key", "--help"), ("--version",),
    ("db", "upgrade"), ("db", "current"),
])
def test_without_a_key_help_and_the_schema_commands_still_work(tmp_path, no_keys, args) -> None:  # type: ignore[no-untyped-def]
    result = jalon(f"sqlite:///{tmp_path / 'jalon.db'}", *args)
    assert result.exit_code == 0, result.output


def test_generate_key_prints_a_new_key_and_needs_none(tmp_path, no_keys) -> None:  # type: ignore[no-untyped-def]
    first = jalon(f"sqlite:///{tmp_path / 'jalon.db'}", "secrets", "generate-key")
    second = jalon(f"sqlite:///{tmp_path / 'jalon.db'}", "secrets", "generate-key")
    assert first.exit_code == second.exit_code == 0
    assert first.output != second.output
    Fernet(first.output.strip())  # a key Fernet takes
    assert not (tmp_path / "jalon.db").exists()  # no database opened


def test_the_sqlite_database_is_created_readable_by_its_owner_only(tmp_path, config) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'data' / 'jalon.db'}"
    old_umask = os.umask(0o022)  # what most shells give
    try:
        assert jalon(url, "db", "upgrade").exit_code == 0
        engine = make_engine(url)  # a connection held open: the -wal and -shm files stay
        try:
            with engine.connect():
                assert jalon(url, "config", "apply", str(config)).exit_code == 0
                files = sorted(path.name for path in (tmp_path / "data").iterdir())
                modes = {name: stat.S_IMODE((tmp_path / "data" / name).stat().st_mode) for name in files}
        finally:
            engine.dispose()
    finally:
        os.umask(old_umask)
    assert files == ["jalon.db", "jalon.db-shm", "jalon.db-wal"]
    assert modes == dict.fromkeys(files, 0o600)
