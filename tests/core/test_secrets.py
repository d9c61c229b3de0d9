"""Secrets sealed at rest (jalon.core.secrets): an integration's webhook
secrets and credentials, a channel's secret and target are stored encrypted
with the first of the configured keys and read with any of them; a value
stored in clear before is still read, and re-sealing seals it; a key that
opens nothing is a clear error, never a silent None."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from jalon.core import catalog, secrets
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.migrate import upgrade
from jalon.core.models import Base, Integration, NotificationChannel

WEBHOOK_SECRET = "whsec-sealed-webhook-7Qm2Lx"
API_TOKEN = "ATATT3xFfGF0-sealed-api-token"
CHANNEL_SECRET = "chsec-sealed-channel-9Zx4"
CHAT_URL = "https://hooks.chat.test/services/T0/B0/SEALED-CHAT-PATH"
IN_CLEAR = (WEBHOOK_SECRET, API_TOKEN, CHANNEL_SECRET, CHAT_URL)


@pytest.fixture
def keys() -> list[str]:
    """Two keys of the test's own (the run's key is given back after each test)."""
    return [secrets.generate_key(), secrets.generate_key()]


def _store(Session) -> None:  # type: ignore[no-untyped-def]  # noqa: N803
    with unit_of_work(Session) as session:
        catalog.upsert_integration(session, {"key": "jira-sealed", "source": "jira", "name": "Jira",
                                             "secret": WEBHOOK_SECRET,
                                             "credentials": {"email": "bot@atelier.example", "api_token": API_TOKEN}},
                                   actor="test")
        session.add(NotificationChannel(key="chat", kind="chat", name="#billing", target={"url": CHAT_URL},
                                        secret=CHANNEL_SECRET))


def _raw(engine) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    """The sealed columns as the database holds them, through the driver alone."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT secret, previous_secret, credentials FROM integrations").fetchall()
        rows += conn.exec_driver_sql("SELECT secret, target, NULL FROM notification_channels").fetchall()
    return [tuple(row) for row in rows]


def _read(Session, *, channel: bool = True) -> tuple[Integration, NotificationChannel | None]:  # type: ignore[no-untyped-def]  # noqa: N803
    with unit_of_work(Session) as session:
        integration = session.scalars(select(Integration)).one()
        found = session.scalars(select(NotificationChannel)).one() if channel else None
        session.expunge_all()
    return integration, found


def test_secrets_are_stored_sealed_and_read_in_clear(Session, engine) -> None:  # type: ignore[no-untyped-def]  # noqa: N803
    _store(Session)

    raw = _raw(engine)
    stored = " ".join(str(value) for row in raw for value in row)
    assert not [secret for secret in IN_CLEAR if secret in stored]
    assert "bot@atelier.example" not in stored  # the whole document is sealed, not its values one by one
    assert stored.count(secrets.PREFIX) == 4
    integration, channel = _read(Session)
    assert integration.secret == WEBHOOK_SECRET and integration.previous_secret is None
    assert integration.credentials == {"email": "bot@atelier.example", "api_token": API_TOKEN}
    assert channel.secret == CHANNEL_SECRET and channel.target == {"url": CHAT_URL}


def test_the_same_secret_is_sealed_differently_each_time() -> None:
    assert secrets.seal("same") != secrets.seal("same")
    assert secrets.unseal(secrets.seal("same")) == "same"


def test_rotating_with_two_keys_lets_the_old_one_be_dropped(Session, engine, keys) -> None:  # type: ignore[no-untyped-def]  # noqa: N803
    old, new = keys
    secrets.configure_keys([old])
    _store(Session)
    secrets.configure_keys([new, old])  # the new key first: it seals, both open
    assert _read(Session)[0].secret == WEBHOOK_SECRET
    with unit_of_work(Session) as session:
        counts = {count.column: count for count in secrets.reseal(session, Base.metadata)}

    assert {column: (c.sealed, c.resealed, c.unchanged) for column, c in counts.items()} == {
        "integrations.secret": (0, 1, 0), "integrations.previous_secret": (0, 0, 0),
        "integrations.credentials": (0, 1, 0), "notification_channels.target": (0, 1, 0),
        "notification_channels.secret": (0, 1, 0)}
    secrets.configure_keys([new])  # the old key dropped
    integration, channel = _read(Session)
    assert (integration.secret, integration.credentials["api_token"]) == (WEBHOOK_SECRET, API_TOKEN)
    assert (channel.secret, channel.target["url"]) == (CHANNEL_SECRET, CHAT_URL)
    # again: nothing left to do
    with unit_of_work(Session) as session:
        again = secrets.reseal(session, Base.metadata)
    assert sum(c.sealed + c.resealed for c in again) == 0 and sum(c.unchanged for c in again) == 4


def test_a_key_that_opens_nothing_is_a_clear_error(Session, keys) -> None:  # type: ignore[no-untyped-def]  # noqa: N803
    sealing, other = keys
    secrets.configure_keys([sealing])
    _store(Session)
    secrets.configure_keys([other])

    with pytest.raises(secrets.SecretUnreadable) as refused:
        _read(Session)
    assert refused.value.code == "secret_unreadable"
    assert "JALON_SECRET_KEYS" in refused.value.message and "rotate-key" in refused.value.message
    assert sealing not in str(refused.value) and other not in str(refused.value)
    # re-sealing with it changes nothing, and says which row
    with pytest.raises(secrets.SecretUnreadable, match=r"integrations\.secret of integrations \d+"), \
            unit_of_work(Session) as session:
        secrets.reseal(session, Base.metadata)
    secrets.configure_keys([sealing])
    assert _read(Session)[0].secret == WEBHOOK_SECRET


def test_no_key_is_a_clear_error_naming_the_setting(Session, keys) -> None:  # type: ignore[no-untyped-def]  # noqa: N803
    secrets.forget_keys()
    with pytest.raises(secrets.SecretKeysMissing) as refused:
        secrets.seal("x")
    assert refused.value.code == "secret_keys_missing"
    assert refused.value.message == "set JALON_SECRET_KEYS (generate one with jalon secrets generate-key)"
    with pytest.raises(secrets.SecretKeysMissing):
        secrets.configure_keys([])


@pytest.mark.parametrize("bad", ["not-a-key", Fernet.generate_key().decode()[:-4], ""])
def test_a_malformed_key_is_refused_without_being_repeated(bad: str) -> None:
    good = secrets.generate_key()
    with pytest.raises(secrets.Invalid) as refused:
        secrets.configure_keys([good, bad])
    assert refused.value.code == "secret_keys_invalid" and "key 2 of 2" in refused.value.message
    assert good not in refused.value.message and (not bad or bad not in refused.value.message)


def test_values_stored_in_clear_before_sealing_are_read_then_sealed(Session, engine) -> None:  # type: ignore[no-untyped-def]  # noqa: N803
    with engine.begin() as conn:  # as 0005 left them: in clear
        conn.execute(text("INSERT INTO integrations (key, source, name, settings, secret, credentials, enabled, "
                          "created_at) VALUES ('old', 'jira', 'Old', '{}', :secret, :credentials, true, :now)"),
                     {"secret": WEBHOOK_SECRET, "credentials": f'{{"api_token": "{API_TOKEN}"}}',
                      "now": "2026-01-01T00:00:00+00:00"})
        conn.execute(text("INSERT INTO notification_channels (key, kind, name, target, events, secret, "
                          "allow_private_network, enabled, created_at) VALUES ('chat', 'chat', 'Chat', :target, "
                          "'[]', :secret, false, true, :now)"),
                     {"target": f'{{"url": "{CHAT_URL}"}}', "secret": CHANNEL_SECRET,
                      "now": "2026-01-01T00:00:00+00:00"})
    integration, channel = _read(Session)
    assert (integration.secret, integration.credentials) == (WEBHOOK_SECRET, {"api_token": API_TOKEN})
    assert (channel.secret, channel.target) == (CHANNEL_SECRET, {"url": CHAT_URL})

    with unit_of_work(Session) as session:
        counts = secrets.reseal(session, Base.metadata)
    assert sum(c.sealed for c in counts) == 4 and sum(c.resealed for c in counts) == 0
    stored = " ".join(str(value) for row in _raw(engine) for value in row)
    assert not [secret for secret in IN_CLEAR if secret in stored]
    integration, channel = _read(Session)
    assert (integration.secret, integration.credentials) == (WEBHOOK_SECRET, {"api_token": API_TOKEN})
    assert (channel.secret, channel.target) == (CHANNEL_SECRET, {"url": CHAT_URL})


def test_the_migration_keeps_secrets_stored_in_clear(empty_db_url) -> None:  # type: ignore[no-untyped-def]
    """0007 widens the secret columns (SQLite: a column swapped in) and keeps their values."""
    engine = make_engine(empty_db_url)
    try:
        upgrade(engine, "0006")
        long_secret = "s" * 500  # as long as the column allowed
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO integrations (key, source, name, settings, secret, previous_secret, "
                              "credentials, enabled, created_at) VALUES ('old', 'jira', 'Old', '{}', :secret, "
                              "'before', '{}', true, :now)"), {"secret": long_secret, "now": "2026-01-01T00:00:00+00:00"})
        upgrade(engine)
        integration = _read_integration(engine)
        assert (integration.secret, integration.previous_secret) == (long_secret, "before")
        with unit_of_work(make_sessionmaker(engine)) as session:
            session.scalars(select(Integration)).one().secret = "t" * 2000  # sealed: longer than 500 characters
        assert _read_integration(engine).secret == "t" * 2000
    finally:
        engine.dispose()


def _read_integration(engine) -> Integration:  # type: ignore[no-untyped-def]
    return _read(make_sessionmaker(engine), channel=False)[0]
