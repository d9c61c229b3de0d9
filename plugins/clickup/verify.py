"""Authenticity of a ClickUp delivery, on the raw body, before anything is
parsed or stored; and the key that makes a redelivery a duplicate. No network here.

ClickUp signs every delivery with ``X-Signature: <hex HMAC-SHA256 of the raw
body>``, keyed with the secret it returned when the webhook was created (no
prefix, no timestamp in the signed material). Every accepted secret is tried
(the previous one during a rotation overlap), compared in constant time. The
hex digest is read whatever its case: ClickUp sends lower case, and the case
of hex digits carries no information.

ClickUp sends no delivery id. A change is identified by its history items
(``history_items[].id``), which ClickUp repeats in the generic ``taskUpdated``
and in the granular event (``taskStatusUpdated``, ``taskTimeTrackedUpdated``)
it sends for the same change: the key is built from the webhook and those ids
only, never the event name, so the second of the two is a duplicate of the
first (and :mod:`.translate` reads either the same way, since ClickUp does
not say which comes first). See :func:`idempotency_key`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jalon.connector.plugin import IntegrationView

SIGNATURE_HEADER = "x-signature"
MAX_KEY_LENGTH = 200
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


def signature(secret: str, body: bytes) -> str:
    """The ``X-Signature`` value ClickUp sends for ``body`` signed with ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(integration: IntegrationView, headers: Mapping[str, str], body: bytes, now: datetime | None = None) -> bool:
    """True when ``X-Signature`` is the body's HMAC with one of the accepted secrets."""
    presented = next((value for name, value in headers.items() if name.lower() == SIGNATURE_HEADER), None)
    if not isinstance(presented, str):
        return False
    presented = presented.strip().lower()
    if not _HEX_SHA256.fullmatch(presented):
        return False
    matches = [hmac.compare_digest(presented, signature(secret, body)) for secret in integration.secrets if secret]
    return any(matches)


def text_of(value: Any) -> str | None:
    """An id or a name as ClickUp sends it (a string or a number) as text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


def content_key(payload: Mapping[str, Any]) -> str | None:
    """``clickup:<webhook_id>:<sorted history item ids>[:<interval_id>]``;
    ``clickup:<webhook_id>:taskDeleted:<task_id>`` for a deletion (it has no
    history items); None when the payload lacks what identifies the change."""
    webhook_id = text_of(payload.get("webhook_id"))
    if webhook_id is None:
        return None
    items = payload.get("history_items") if isinstance(payload.get("history_items"), list) else []
    ids = sorted({str(text_of(item.get("id"))) for item in items
                  if isinstance(item, Mapping) and text_of(item.get("id"))})
    if ids:
        parts = [webhook_id, ",".join(ids)]
        data = payload.get("data")
        interval_id = text_of(data.get("interval_id")) if isinstance(data, Mapping) else None
        if interval_id:
            parts.append(interval_id)
    elif payload.get("event") == "taskDeleted" and text_of(payload.get("task_id")):
        parts = [webhook_id, "taskDeleted", str(text_of(payload.get("task_id")))]
    else:
        return None
    key = "clickup:" + ":".join(parts)
    if len(key) > MAX_KEY_LENGTH:
        key = "clickup:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def idempotency_key(headers: Mapping[str, str], body: bytes) -> str | None:
    """:func:`content_key` of the body; None for a body that is not a JSON
    object or lacks the ids (the connector then keys on the body's SHA-256)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, Mapping):
        return None
    return content_key(payload)
