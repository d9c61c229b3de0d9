"""POST /hooks/<source>/<integration-key>: size, endpoint, authenticity, then
the inbox; each refusal stores nothing."""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from jalon.connector.relay.intake import accepted_secrets
from jalon.connector.settings import Settings
from jalon.core import catalog
from jalon.core.db import unit_of_work
from jalon.core.models import Delivery, Integration
from jalon.core.types import utcnow
from tests.api.support import assert_problem

from .conftest import KEY, SECRET, count_deliveries, payload, post
from .fake_source import signature


def stored(runtime) -> list[Delivery]:  # type: ignore[no-untyped-def]
    with runtime.sessionmaker() as session:
        return list(session.execute(select(Delivery).order_by(Delivery.id)).scalars())


def test_an_authentic_delivery_is_stored_raw_then_acknowledged_202(app, runtime):  # type: ignore[no-untyped-def]
    body = payload()
    runtime.wake_worker.clear()
    response = post(app.test_client(), body, headers={"Authorization": "Basic eHg6eXk=", "Cookie": "a=b",
                                                       "X-Trace": "t-1"})
    assert response.status_code == 202
    [delivery] = stored(runtime)
    assert response.get_json() == {"status": "accepted", "delivery": delivery.id}
    assert delivery.body == body
    assert delivery.body_sha256 == hashlib.sha256(body).hexdigest()
    assert delivery.status == "pending" and delivery.attempts == 0
    assert delivery.idempotency_key == "d-1"
    assert delivery.headers["x-trace"] == "t-1"
    assert delivery.headers["x-fake-signature"] == signature(body, SECRET)
    assert "authorization" not in delivery.headers and "cookie" not in delivery.headers
    assert all(name == name.lower() for name in delivery.headers)
    assert runtime.wake_worker.is_set()


def test_a_header_carrying_the_secret_itself_is_not_stored(app, runtime):  # type: ignore[no-untyped-def]
    assert post(app.test_client(), payload(), headers={"X-Fake-Token": SECRET}).status_code == 202
    [delivery] = stored(runtime)
    assert "x-fake-token" not in delivery.headers
    assert SECRET not in repr(delivery.headers)


# ------------------------------------------------------------- 413


def test_a_body_over_the_limit_is_refused_413_and_not_stored(app, runtime):  # type: ignore[no-untyped-def]
    body = payload(padding="x" * 5000)
    assert len(body) > runtime.settings.max_body_bytes
    assert_problem(post(app.test_client(), body), 413, "payload_too_large")
    assert count_deliveries(runtime) == 0


def test_a_body_of_exactly_the_limit_is_accepted(app, runtime):  # type: ignore[no-untyped-def]
    body = payload(padding="")
    body = payload(padding="x" * (runtime.settings.max_body_bytes - len(body)))
    assert len(body) == runtime.settings.max_body_bytes
    assert post(app.test_client(), body).status_code == 202


def test_a_chunked_body_over_the_limit_is_refused_without_a_content_length(app, runtime):  # type: ignore[no-untyped-def]
    body = payload(padding="x" * 5000)
    headers = {"X-Fake-Signature": signature(body, SECRET), "X-Fake-Delivery": "chunked"}
    # a server that de-chunks sets wsgi.input_terminated and no Content-Length: the limit still holds
    response = app.test_client().post(
        f"/hooks/fake/{KEY}", input_stream=io.BytesIO(body), headers=headers,
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert_problem(response, 413, "payload_too_large")
    assert count_deliveries(runtime) == 0


def test_a_chunked_body_under_the_limit_is_accepted(app, runtime):  # type: ignore[no-untyped-def]
    body = payload()
    headers = {"X-Fake-Signature": signature(body, SECRET), "X-Fake-Delivery": "chunked"}
    response = app.test_client().post(
        f"/hooks/fake/{KEY}", input_stream=io.BytesIO(body), headers=headers,
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 202
    assert stored(runtime)[0].body == body


def test_the_intake_limit_is_the_setting_not_the_admin_api_limit(make_app):  # type: ignore[no-untyped-def]
    app = make_app(max_body_bytes=2 * 1024 * 1024)
    body = payload(padding="x" * (1024 * 1024 + 10))  # over the admin API's 1 MiB
    assert post(app.test_client(), body).status_code == 202


# ------------------------------------------------------------- 404


def _disable(runtime) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(runtime.sessionmaker) as session:
        session.execute(select(Integration).where(Integration.key == KEY)).scalar_one().enabled = False


@pytest.mark.parametrize("case", ["unknown key", "disabled", "source mismatch", "unknown source plugin"])
def test_every_unknown_endpoint_gets_the_same_404(app, runtime, case):  # type: ignore[no-untyped-def]
    source, key = "fake", KEY
    if case == "unknown key":
        key = "nobody"
    elif case == "disabled":
        _disable(runtime)
    elif case == "source mismatch":
        source = "other"  # an installed plugin, but not this integration's
    else:
        source = "nope"
    response = post(app.test_client(), payload(), source=source, key=key)
    body = assert_problem(response, 404, "integration_not_found")
    assert body["detail"] == "no such webhook endpoint"  # the same words whatever the reason: nothing leaks
    assert count_deliveries(runtime) == 0


def test_a_change_to_the_integration_counts_from_the_next_delivery(app, runtime):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload(), delivery="before").status_code == 202
    _disable(runtime)
    assert_problem(post(client, payload(), delivery="after"), 404, "integration_not_found")
    assert [d.idempotency_key for d in stored(runtime)] == ["before"]


def test_a_delivery_verified_before_a_change_is_checked_again_before_it_is_stored(app, runtime, fake):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload(), delivery="before").status_code == 202  # the process knows the integration
    # another process disables the integration while this delivery is being verified
    fake.while_verifying = lambda: (_disable(runtime), setattr(fake, "while_verifying", None))
    assert_problem(post(client, payload(), delivery="during"), 404, "integration_not_found")
    assert [d.idempotency_key for d in stored(runtime)] == ["before"]


def test_a_secret_rotated_while_a_delivery_is_verified_counts_for_it(app, runtime, fake):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload(), delivery="before").status_code == 202
    # past the overlap: the secret the delivery is signed with stopped counting while it was checked
    fake.while_verifying = lambda: (_rotate(runtime, hours_ago=25), setattr(fake, "while_verifying", None))
    assert_problem(post(client, payload(), secret=SECRET, delivery="during"), 401, "signature_invalid")
    assert post(client, payload(), secret="n3w-secret", delivery="after").status_code == 202
    assert [d.idempotency_key for d in stored(runtime)] == ["before", "after"]


def test_an_integration_that_keeps_changing_gets_503_and_nothing_stored(app, runtime, fake):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload(), delivery="before").status_code == 202
    names = iter(range(100))

    def rename() -> None:
        with unit_of_work(runtime.sessionmaker) as session:
            session.execute(select(Integration).where(Integration.key == KEY)).scalar_one().name = f"n{next(names)}"

    fake.while_verifying = rename
    response = post(client, payload(), delivery="during")
    assert_problem(response, 503, "integration_changing")
    assert response.headers["Retry-After"] == "1"
    fake.while_verifying = None
    assert [d.idempotency_key for d in stored(runtime)] == ["before"]
    assert post(client, payload(), delivery="during").status_code == 202  # sent again once it is still


# ------------------------------------------------------------- 401


@pytest.mark.parametrize("secret", [None, "wrong", ""], ids=["missing", "wrong secret", "empty secret"])
def test_an_unauthentic_delivery_is_refused_401_and_stored_nowhere(app, runtime, secret):  # type: ignore[no-untyped-def]
    response = post(app.test_client(), payload(), secret=secret)
    body = assert_problem(response, 401, "signature_invalid")
    assert SECRET not in response.get_data(as_text=True)
    assert "sha256" not in body["detail"]  # no expected value, no hint
    assert count_deliveries(runtime) == 0


def test_a_tampered_body_is_refused(app, runtime):  # type: ignore[no-untyped-def]
    body = payload()
    headers = {"X-Fake-Signature": signature(body, SECRET), "X-Fake-Delivery": "d-1"}
    response = app.test_client().post(f"/hooks/fake/{KEY}", data=body.replace(b"WEB-1", b"WEB-9"), headers=headers)
    assert_problem(response, 401, "signature_invalid")
    assert count_deliveries(runtime) == 0


def test_a_plugin_that_raises_while_verifying_refuses_rather_than_fails(app, runtime, fake):  # type: ignore[no-untyped-def]
    fake.verify_error = ValueError("malformed token")
    assert_problem(post(app.test_client(), payload()), 401, "signature_invalid")
    assert count_deliveries(runtime) == 0


# ------------------------------------------------------------- duplicates


def test_a_redelivery_is_acknowledged_200_duplicate_and_stored_once(app, runtime):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload(), delivery="d-7").status_code == 202
    again = post(client, payload(), delivery="d-7")
    assert again.status_code == 200
    assert again.get_json() == {"status": "duplicate"}
    assert count_deliveries(runtime) == 1


def test_without_a_delivery_id_the_body_digest_is_the_key(app, runtime):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload(), delivery=None).status_code == 202
    assert post(client, payload(), delivery=None).status_code == 200
    assert post(client, payload(task="WEB-2"), delivery=None).status_code == 202
    keys = [d.idempotency_key for d in stored(runtime)]
    assert keys == ["sha256:" + hashlib.sha256(payload()).hexdigest(),
                    "sha256:" + hashlib.sha256(payload(task="WEB-2")).hexdigest()]


def test_a_too_long_key_from_a_plugin_is_kept_as_its_digest(app, runtime):  # type: ignore[no-untyped-def]
    long_key = "k" * 500
    assert post(app.test_client(), payload(), delivery=long_key).status_code == 202
    assert post(app.test_client(), payload(), delivery=long_key).status_code == 200
    [delivery] = stored(runtime)
    assert delivery.idempotency_key == "sha256:" + hashlib.sha256(long_key.encode()).hexdigest()


def test_three_concurrent_copies_of_a_delivery_make_one_row(app, runtime):  # type: ignore[no-untyped-def]
    body = payload()
    barrier = threading.Barrier(3)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            client = app.test_client()
            barrier.wait(timeout=10)
            statuses.append(post(client, body, delivery="d-race").status_code)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=send) for _ in range(3)]
    try:
        for thread in threads:
            thread.start()
    finally:
        for thread in threads:
            thread.join(timeout=30)
    assert not errors and not any(t.is_alive() for t in threads)
    assert sorted(statuses) == [200, 200, 202]
    assert count_deliveries(runtime) == 1


def test_an_event_the_source_ignores_is_still_acknowledged_2xx(app):  # type: ignore[no-untyped-def]
    # intake never judges content: the worker records it as ignored (see test_worker); never 410
    assert post(app.test_client(), payload("comment.liked")).status_code == 202


# ------------------------------------------------------------- secret rotation


def _rotate(runtime, *, hours_ago: float) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(runtime.sessionmaker) as session:
        catalog.upsert_integration(session, {"key": KEY, "source": "fake", "secret": "n3w-secret"}, actor="test",
                                   rotation_time=utcnow() - timedelta(hours=hours_ago))


def test_the_previous_secret_is_accepted_during_the_overlap(app, runtime):  # type: ignore[no-untyped-def]
    _rotate(runtime, hours_ago=23)
    client = app.test_client()
    assert post(client, payload(), secret=SECRET, delivery="old").status_code == 202
    assert post(client, payload(), secret="n3w-secret", delivery="new").status_code == 202


def test_the_previous_secret_is_refused_after_the_overlap(app, runtime):  # type: ignore[no-untyped-def]
    _rotate(runtime, hours_ago=25)
    client = app.test_client()
    assert_problem(post(client, payload(), secret=SECRET, delivery="old"), 401, "signature_invalid")
    assert post(client, payload(), secret="n3w-secret", delivery="new").status_code == 202
    assert [d.idempotency_key for d in stored(runtime)] == ["new"]


def test_a_new_secret_counts_from_the_next_delivery(app, runtime):  # type: ignore[no-untyped-def]
    client = app.test_client()
    assert post(client, payload(), secret=SECRET, delivery="before").status_code == 202
    _rotate(runtime, hours_ago=25)  # past the overlap: the old secret is refused at once
    assert_problem(post(client, payload(), secret=SECRET, delivery="old"), 401, "signature_invalid")
    assert post(client, payload(), secret="n3w-secret", delivery="new").status_code == 202


def test_the_route_flask_knows_answers_as_the_endpoint_in_front_of_it(app, runtime):  # type: ignore[no-untyped-def]
    body = payload()
    headers = {"Content-Type": "application/json", "X-Fake-Signature": signature(body, SECRET),
               "X-Fake-Delivery": "via-flask"}
    with app.test_request_context(f"/hooks/fake/{KEY}", method="POST", data=body, headers=headers):
        response = app.full_dispatch_request()
    [delivery] = stored(runtime)
    assert response.status_code == 202
    assert response.get_json() == {"status": "accepted", "delivery": delivery.id}
    assert delivery.idempotency_key == "via-flask" and delivery.body == body


def test_the_overlap_is_a_setting(make_app, runtime):  # type: ignore[no-untyped-def]
    app = make_app(secret_overlap_hours=48)
    _rotate(app.extensions["jalon"], hours_ago=25)
    assert post(app.test_client(), payload(), secret=SECRET).status_code == 202


def test_accepted_secrets_lists_the_current_one_first():  # type: ignore[no-untyped-def]
    now = utcnow()
    row = Integration(key="k", source="fake", name="k", secret="new", previous_secret="old",
                      secret_rotated_at=now - timedelta(hours=1))
    settings = Settings()
    assert accepted_secrets(row, settings, now) == ("new", "old")
    assert accepted_secrets(row, settings, now + timedelta(hours=24)) == ("new",)
    row.secret_rotated_at = None
    assert accepted_secrets(row, settings, now) == ("new",)
