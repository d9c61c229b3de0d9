"""The signed webhook channel, checked against the Standard Webhooks spec."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
import responses

from jalon.connector.channels.webhook import BadSecret, new_secret, secret_key, sign
from jalon.connector.outbox.dispatcher import dispatch_once

from .conftest import WEBHOOK, WEBHOOK_SECRET, add_channel, complete_milestone, outbox

URL = WEBHOOK["target"]["url"]


def test_the_signature_matches_the_specs_published_vector() -> None:
    # the example of the Standard Webhooks specification and its reference libraries
    assert sign(WEBHOOK_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}') == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize("secret", ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="])
def test_a_malformed_secret_is_refused(secret: str) -> None:
    with pytest.raises(BadSecret):
        secret_key(secret)


def test_a_new_secret_is_well_formed() -> None:
    assert len(secret_key(new_secret())) == 32


def _verify(secret: str, headers, body: bytes) -> bool:  # type: ignore[no-untyped-def]
    """What a receiver does, written from the spec and not from our code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, part.split(",", 1)[1])
               for part in headers["webhook-signature"].split(" ") if part.startswith("v1,"))


@responses.activate
def test_a_callback_is_signed_and_verifiable_by_the_receiver(runtime, world, uow, public_dns) -> None:  # type: ignore[no-untyped-def]
    add_channel(uow, **WEBHOOK)
    complete_milestone(uow, runtime.settings)
    responses.post(URL, status=204)
    dispatch_once(runtime, owner="test")
    request = responses.calls[0].request
    [message] = outbox(uow, channel="webhook")
    assert request.headers["webhook-id"] == message.idempotency_key
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert _verify(WEBHOOK_SECRET, request.headers, request.body)
    assert not _verify("whsec_" + base64.b64encode(b"x" * 32).decode(), request.headers, request.body)
    document = json.loads(request.body)
    assert document["type"] == "milestone.done"
    assert document["data"]["invoice"]["total_net"] == "7200.00"
    assert document["data"]["invoice"]["currency"] == "EUR"
    assert document["data"]["client"]["code"] == "lumiere"
    assert message.status == "sent"


@responses.activate
def test_a_retry_keeps_the_same_webhook_id(runtime, world, uow, public_dns) -> None:  # type: ignore[no-untyped-def]
    from jalon.core.types import utcnow

    add_channel(uow, **WEBHOOK)
    complete_milestone(uow, runtime.settings)
    responses.post(URL, status=503)
    dispatch_once(runtime, owner="test")
    [message] = outbox(uow, channel="webhook")
    with uow() as session:
        session.get(type(message), message.id).next_attempt_at = utcnow()
    responses.replace(responses.POST, URL, status=200)
    dispatch_once(runtime, owner="test")
    ids = {call.request.headers["webhook-id"] for call in responses.calls}
    assert ids == {message.idempotency_key} and len(responses.calls) == 2
