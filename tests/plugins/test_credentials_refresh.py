"""The kit for tools whose tokens expire and whose limits are a leaky bucket
(Bitrix24): the bucket's pace on a fake clock, a limit said in an error's
body waited out, and the integration's credentials stored sealed with a
compare-and-swap, on SQLite and PostgreSQL, so that two workers refreshing
one token at once never both win and a refused token reaches the audit trail."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jalon.connector.plugin as kit
import pytest
import responses
from jalon.connector.net.http import (
    CredentialsChanged,
    LeakyBucket,
    NoCredentialStore,
    RateBudget,
    RateBudgets,
    RateLimited,
    RestClient,
)
from jalon.connector.plugin.types import IntegrationView
from jalon.connector.runtime import CREDENTIALS_REFUSED, Runtime, SealedCredentials
from jalon.core import catalog
from jalon.core.models import AuditRecord, Integration
from sqlalchemy import Text, cast, select

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
ACCESS = "acc3ss-T0KEN-old"
REFRESH = "refr3sh-T0KEN-old"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# --- the leaky bucket --------------------------------------------------------------------------------


def test_a_leaky_bucket_lets_a_burst_go_then_one_request_per_drain() -> None:
    clock = Clock()
    bucket = LeakyBucket(2.0, burst=3, clock=clock)

    waits = []
    for _ in range(5):
        wait = bucket.reserve()
        waits.append(wait)
        clock.sleep(wait)

    assert waits == [0.0, 0.0, 0.0, 0.5, 0.5]


def test_a_quiet_spell_drains_the_bucket_for_a_new_burst() -> None:
    clock = Clock()
    bucket = LeakyBucket(2.0, burst=2, clock=clock)
    bucket.reserve(), bucket.reserve()

    clock.now += 1.0

    assert [bucket.reserve(), bucket.reserve()] == [0.0, 0.0]


def test_a_turn_beyond_the_wait_allowed_is_not_booked() -> None:
    clock = Clock()
    bucket = LeakyBucket(1.0, burst=1, clock=clock)
    bucket.reserve()

    assert bucket.reserve(max_wait=0.5) == pytest.approx(1.0)
    assert bucket.reserve(max_wait=5) == pytest.approx(1.0)  # the refused turn took nothing


def test_a_bucket_the_tool_says_is_full_waits_then_goes_at_the_drain_rate() -> None:
    clock = Clock()
    bucket = LeakyBucket(2.0, burst=10, clock=clock)

    bucket.throttled(1.0)

    first = bucket.reserve()
    clock.sleep(first)
    assert (first, bucket.reserve()) == (pytest.approx(1.0), pytest.approx(0.5))


def test_a_per_minute_budget_is_throttled_too() -> None:
    clock = Clock()
    budget = RateBudget(100, clock=clock)

    budget.throttled(7.0)

    assert budget.reserve() == pytest.approx(7.0)


def test_clients_of_one_portal_share_one_bucket_whatever_their_credentials() -> None:
    budgets = RateBudgets()
    client = RestClient(None, timeout=1.0, budgets=budgets)

    one = client.using(kit.QueryTokenAuth("auth", "a"), per_second=2, burst=40, shared_by="bitrix24:portal")
    other = client.using(None, per_second=2, burst=40, shared_by="bitrix24:portal")

    assert one.budget is other.budget and isinstance(one.budget, LeakyBucket)


def _throttle(response: Any, now: float) -> float | None:
    return 1.5 if response.json().get("error") == "BUSY" else None


@responses.activate
def test_a_limit_said_in_the_body_is_rate_limited_waited_and_retried() -> None:
    clock = Clock()
    url = "https://tool.example.net/api/x"
    responses.post(url, status=503, json={"error": "BUSY"})
    responses.post(url, json={"ok": True})
    client = RestClient(None, timeout=1.0, max_retries=2, allow_private_network=True, sleep=clock.sleep,
                        clock=clock, budgets=RateBudgets(clock=clock)).using(None, per_second=2, burst=5,
                                                                              throttle=_throttle)

    assert client.post_json(url, {}) == {"ok": True}
    assert clock.slept == [pytest.approx(1.5)]  # the wait asked, once: the bucket agreed with it


@responses.activate
def test_a_503_the_throttle_does_not_recognise_stays_unavailable() -> None:
    clock = Clock()
    url = "https://tool.example.net/api/x"
    responses.post(url, status=400, json={"error": "OTHER"})
    client = RestClient(None, timeout=1.0, max_retries=2, allow_private_network=True, sleep=clock.sleep,
                        clock=clock).using(None, throttle=_throttle)

    with pytest.raises(kit.RemoteError) as raised:
        client.post_json(url, {})
    assert not isinstance(raised.value, RateLimited) and len(responses.calls) == 1


# --- the credential store ---------------------------------------------------------------------------


def test_a_client_made_without_a_store_says_it_cannot_store() -> None:
    client = RestClient(None, timeout=1.0)

    with pytest.raises(NoCredentialStore):
        client.save_credentials({"access_token": "x"})
    with pytest.raises(NoCredentialStore):
        client.stored_credentials()


@pytest.fixture
def integration_key(Session) -> str:  # type: ignore[no-untyped-def]
    with Session() as session, session.begin():
        catalog.upsert_integration(session, {
            "key": "b24-atelier", "source": "bitrix24", "base_url": "https://atelier.bitrix24.eu",
            "secret": "app-token", "credentials": {"access_token": ACCESS, "refresh_token": REFRESH,
                                                   "client_id": "local.1", "client_secret": "cl1ent-S3CRET"}},
            actor="test")
    return "b24-atelier"


def test_saved_tokens_are_stored_sealed_beside_the_other_credentials(Session, integration_key) -> None:  # type: ignore[no-untyped-def]
    store = SealedCredentials(Session, integration_key)

    stored = store.save({"access_token": "acc3ss-new", "refresh_token": "refr3sh-new", "expires_at": 1800003600},
                        expected={"refresh_token": REFRESH})

    assert stored["client_secret"] == "cl1ent-S3CRET" and store.load() == stored
    with Session() as session:
        raw = session.execute(select(cast(Integration.credentials, Text).label("sealed"))).scalar_one()
    assert "fernet:v1:" in raw and "acc3ss-new" not in raw


def test_a_save_from_tokens_already_replaced_gives_the_stored_ones(Session, integration_key) -> None:  # type: ignore[no-untyped-def]
    first = SealedCredentials(Session, integration_key)
    second = SealedCredentials(Session, integration_key)
    first.save({"access_token": "acc3ss-first", "refresh_token": "refr3sh-first"}, expected={"refresh_token": REFRESH})

    with pytest.raises(CredentialsChanged) as raised:
        second.save({"access_token": "acc3ss-second", "refresh_token": "refr3sh-second"},
                    expected={"refresh_token": REFRESH})

    assert raised.value.current["access_token"] == "acc3ss-first"
    assert "acc3ss" not in repr(raised.value)
    assert first.load()["access_token"] == "acc3ss-first"


def test_the_swap_fails_when_the_row_changed_between_read_and_write(Session, integration_key) -> None:  # type: ignore[no-untyped-def]
    store = SealedCredentials(Session, integration_key)
    with Session() as session:
        before = store._read(session)  # this worker reads...
    SealedCredentials(Session, integration_key).save({"access_token": "acc3ss-other"})  # ...another one stores
    reads = iter([before])
    real = store._read
    store._read = lambda session: next(reads, None) or real(session)  # type: ignore[method-assign]

    with pytest.raises(CredentialsChanged) as raised:  # the write from the stale read matches no row
        store.save({"access_token": "acc3ss-mine", "refresh_token": "refr3sh-mine"},
                   expected={"access_token": ACCESS})

    assert raised.value.current["access_token"] == "acc3ss-other"
    assert store.load()["access_token"] == "acc3ss-other"  # nothing of the loser's was written


def test_a_refusal_is_audited_once_without_any_credential(Session, integration_key) -> None:  # type: ignore[no-untyped-def]
    store = SealedCredentials(Session, integration_key)

    store.refused(f"the refresh token {REFRESH} was refused: reconnect the app")
    store.refused(f"the refresh token {REFRESH} was refused: reconnect the app")

    with Session() as session:
        records = session.execute(select(AuditRecord).where(AuditRecord.action == CREDENTIALS_REFUSED)).scalars().all()
        assert len(records) == 1
        assert records[0].actor == "connector" and REFRESH not in (records[0].reason or "")
        assert "reconnect the app" in (records[0].reason or "")


def test_the_connectors_clients_carry_the_integrations_store(Session) -> None:  # type: ignore[no-untyped-def]
    from jalon.connector.settings import Settings

    runtime = Runtime(engine=None, sessionmaker=Session, pm=None, settings=Settings.from_env())  # type: ignore[arg-type]
    view = IntegrationView(key="b24-atelier", source="bitrix24", name="B", base_url=None, settings={})

    client = runtime.rest_client(view)

    assert isinstance(client.credentials, SealedCredentials) and client.credentials.integration_key == "b24-atelier"
    assert client.using(None).credentials is client.credentials


# --- the docs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(kit.__all__))
def test_every_name_of_the_kit_is_documented(name: str) -> None:
    assert re.search(rf"\b{name}\b", DOCS.read_text()), f"docs/plugins.md never names `{name}`"
