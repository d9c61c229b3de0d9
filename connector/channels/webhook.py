"""Webhook channel: a generic HTTP callback to another system (an accounting
tool...), signed the Standard Webhooks way (https://www.standardwebhooks.com):

* ``webhook-id``: the outbox message's idempotency key, the same on every retry;
* ``webhook-timestamp``: unix seconds of this attempt;
* ``webhook-signature``: ``v1,`` + base64 of HMAC-SHA256 over
  ``"{webhook-id}.{webhook-timestamp}.{body}"`` keyed with the channel secret,
  a ``whsec_`` prefix followed by the base64 of the key bytes.

The body is ``{"type": <event>, "timestamp": <ISO 8601>, "data": {...}}``;
amounts in ``data`` are decimal strings.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.types import ChannelSpec, OutboxView, PermanentFailure, SendResult
from jalon.connector.channels.common import UrlTarget, post

NAME = "webhook"
SECRET_PREFIX = "whsec_"


class WebhookTarget(UrlTarget):
    pass


class BadSecret(ValueError):
    pass


def secret_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise BadSecret("a webhook secret is 'whsec_' followed by base64")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise BadSecret("a webhook secret is 'whsec_' followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise BadSecret("a webhook secret's key is 24 to 64 bytes long")
    return key


def new_secret() -> str:
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def render(message: OutboxView, now: datetime) -> bytes:
    document = {
        "type": message.kind,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": dict(message.payload.get("data") or {}),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@hookimpl
def jalon_channel_register() -> ChannelSpec:
    return ChannelSpec(name=NAME, title="Signed HTTP callback (Standard Webhooks)", target_schema=WebhookTarget)


@hookimpl
def jalon_channel_send(channel: str, message: OutboxView, settings: Mapping[str, Any]) -> SendResult | None:
    if channel != NAME:
        return None
    if not message.secret:
        raise PermanentFailure("the webhook channel has no signing secret")
    timestamp = int(time.time())
    body = render(message, datetime.fromtimestamp(timestamp, timezone.utc))
    try:
        signature = sign(message.secret, message.idempotency_key, timestamp, body)
    except BadSecret as error:
        raise PermanentFailure(str(error)) from None
    post(message, settings, body=body, headers={
        "Content-Type": "application/json; charset=utf-8",
        "webhook-id": message.idempotency_key,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    })
    return SendResult(external_id=message.idempotency_key)
