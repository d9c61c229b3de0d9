"""The ``channels`` section of ``jalon config apply``: idempotent, secrets kept
out of the audit trail, and the SSRF guard applied before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from jalon.connector.cli import main
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import AuditRecord, NotificationChannel

from .conftest import WEBHOOK_SECRET

CHANNELS = """
channels:
  - key: finance-email
    kind: email
    target: {to: [finance@atelier.example]}
    events: [milestone.done]
  - key: books
    kind: webhook
    target: {url: "https://93.184.215.14/hooks/jalon"}
    secret: ${BOOKS_SECRET}
"""


def _apply(db_url: str, path: Path, monkeypatch) -> object:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BOOKS_SECRET", WEBHOOK_SECRET)
    return CliRunner().invoke(main, ["--database-url", db_url, "config", "apply", str(path)])


def _channels(db_url: str) -> dict[str, NotificationChannel]:
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            return {c.key: c for c in session.execute(select(NotificationChannel)).scalars()}
    finally:
        engine.dispose()


def test_channels_are_applied_once_and_their_secret_stays_out_of_the_audit(db_url, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "jalon.yaml"
    path.write_text(CHANNELS, encoding="utf-8")
    first = _apply(db_url, path, monkeypatch)
    assert first.exit_code == 0, first.output
    assert "channels      2 created, 0 updated, 0 unchanged" in first.output
    second = _apply(db_url, path, monkeypatch)
    assert "channels      0 created, 0 updated, 2 unchanged" in second.output
    channels = _channels(db_url)
    assert channels["books"].secret == WEBHOOK_SECRET and channels["finance-email"].events == ["milestone.done"]
    engine = make_engine(db_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            audits = session.execute(select(AuditRecord).where(
                AuditRecord.action.like("notification_channel.%"))).scalars().all()
            assert len(audits) == 2 and all(WEBHOOK_SECRET not in str(a.details) for a in audits)
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:5432/",
                                 "http://[::ffff:10.0.0.1]/x"])
def test_a_private_url_fails_the_whole_apply_with_url_not_allowed(db_url, tmp_path, monkeypatch, url) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "jalon.yaml"
    path.write_text(CHANNELS + f"""  - key: chat
    kind: chat
    target: {{url: "{url}"}}
""", encoding="utf-8")
    result = _apply(db_url, path, monkeypatch)
    assert result.exit_code == 1
    assert "error [url_not_allowed]: channels[2]:" in result.output
    assert _channels(db_url) == {}


def test_allow_private_network_is_explicit_in_the_file(db_url, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "jalon.yaml"
    path.write_text("""
channels:
  - key: intranet
    kind: chat
    target: {url: "http://10.0.0.12/hooks/billing"}
    allow_private_network: true
""", encoding="utf-8")
    result = _apply(db_url, path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert _channels(db_url)["intranet"].allow_private_network is True


def test_the_example_configuration_holds_a_finance_mail_and_a_chat_channel(db_url, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    example = Path(__file__).resolve().parents[2] / "examples" / "jalon.yaml"
    result = _apply(db_url, example, monkeypatch)
    assert result.exit_code == 0, result.output
    channels = _channels(db_url)
    assert channels["finance-email"].kind == "email" and channels["billing-chat"].kind == "chat"
