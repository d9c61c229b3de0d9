"""What the HTTP channels share: the client they send with and how its errors
become the dispatcher's decisions (retry later, or give up). A redirect is a
failure (the client follows none: a POST never becomes a GET elsewhere); a
URL the SSRF guard refuses goes through to the dispatcher, which fails the
message at once naming the channel's ``allow_private_network``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, fields, validate

from jalon.core.catalog import LANGUAGES

from jalon.connector.net.http import RemoteError, RestClient, Unavailable
from jalon.connector.plugin.types import OutboxView, PermanentFailure, RetryLater


class UrlTarget(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=1000),
                        metadata={"description": "Where to POST (http or https)"})
    language = fields.String(validate=validate.OneOf(LANGUAGES), metadata={"description": "fr (default) or en"})


def client_for(message: OutboxView, settings: Mapping[str, Any]) -> RestClient:
    # no in-process retries: the dispatcher reschedules, so a lease is never held waiting
    return RestClient(None, timeout=float(settings.get("http_timeout_seconds", 10.0)), max_retries=0,
                      allow_private_network=message.allow_private_network)


def post(message: OutboxView, settings: Mapping[str, Any], *, body: bytes, headers: Mapping[str, str]):  # type: ignore[no-untyped-def]
    """POST ``body`` to the message's target URL; RetryLater or PermanentFailure on failure
    (:class:`UrlNotAllowed` as it is, for the dispatcher to name the setting)."""
    url = message.destination.get("url")
    if not url:
        raise PermanentFailure("the channel has no target url")
    client = client_for(message, settings)
    try:
        return client.request("POST", url, data=body, headers={"Content-Type": "application/json", **headers})
    except Unavailable as error:
        raise RetryLater(str(error), after=error.retry_after) from None
    except RemoteError as error:
        if error.status == 429:
            raise RetryLater(str(error), after=error.retry_after) from None
        raise PermanentFailure(str(error)) from None
    finally:
        client.session.close()
