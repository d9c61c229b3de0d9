"""Authenticity of a Bitrix24 delivery, on the raw body, before anything is
stored; and the key that makes a redelivery a duplicate. No network here.

Bitrix24 signs nothing. Each delivery carries, in its body,
``auth[application_token]``: the token shown in the outgoing webhook's
settings (or, for an OAuth app, the one its install event gave). It is the
integration's webhook secret, compared in constant time with every accepted
secret (the current one, then the previous one during a rotation overlap).
When the integration's settings name the portal (``member_id``, ``domain``),
``auth[member_id]`` / ``auth[domain]`` must name it too: a token of another
portal is refused. Anything missing, a body that cannot be read, or a
mismatch: False (the connector answers 401 and stores nothing).

Bitrix24 sends no delivery id, and many ``ONTASKUPDATE`` for one change of a
task (each edit, status move, comment...). The key is
``bitrix24:<event>:<object id>:<ts>`` (``ts``: when the portal queued the
event, in seconds), so an exact redelivery (the same event of the same
object at the same second, e.g. from two handlers bound to one URL) is a
duplicate. Two different updates of one task are two deliveries: billing
does not rest on them but on the task's state, fetched when each is
translated (see :mod:`.translate`), which gives the same event for the same
completion however many deliveries announce it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jalon.connector.plugin import IntegrationView, Unreadable

from . import form

MAX_KEY_LENGTH = 200


def text_of(value: Any) -> str | None:
    """An id or a name as Bitrix24 sends it (a string, or a number in JSON) as text."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int)):
        text = str(value).strip()
        return text or None
    return None


def mapping_of(value: Any) -> Mapping[str, Any]:
    """A nested part of the payload; Bitrix24 writes a missing one as the string "undefined"."""
    return value if isinstance(value, Mapping) else {}


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def normal_domain(value: str) -> str:
    """``https://Acme.Bitrix24.com/`` -> ``acme.bitrix24.com``: a portal's host, as people paste it."""
    text = value.strip().lower()
    for prefix in ("https://", "http://"):
        text = text.removeprefix(prefix)
    return text.split("/", 1)[0].rstrip(".")


def verify_payload(integration: IntegrationView, payload: Mapping[str, Any]) -> bool:
    """True when ``auth[application_token]`` is an accepted secret and the portal is the integration's."""
    auth = mapping_of(payload.get("auth"))
    token = auth.get("application_token")
    if not isinstance(token, str) or not token:
        return False
    matches = [_same(token, secret) for secret in integration.secrets if secret]
    if not any(matches):
        return False
    settings = integration.settings or {}
    member_id = text_of(settings.get("member_id"))
    if member_id is not None:
        presented = auth.get("member_id")
        if not isinstance(presented, str) or not _same(presented.strip(), member_id):
            return False
    domain = text_of(settings.get("domain"))
    if domain is not None:
        presented = auth.get("domain")
        if not isinstance(presented, str) or normal_domain(presented) != normal_domain(domain):
            return False
    return True


def verify(integration: IntegrationView, headers: Mapping[str, str], body: bytes, now: datetime | None = None) -> bool:
    """:func:`verify_payload` of the body; False for a body that cannot be read."""
    try:
        payload = form.parse(body)
    except Unreadable:
        return False
    return verify_payload(integration, payload)


def object_id(payload: Mapping[str, Any]) -> str | None:
    """The id of what the event is about: ``data[FIELDS_AFTER][ID]`` (a
    task), else ``data[FIELDS_BEFORE][ID]`` (a deletion); for a comment event
    ``FIELDS_AFTER[TASK_ID]`` and the message, since its ``ID`` may be 0;
    ``data[FIELDS][ID]`` for CRM events."""
    data = mapping_of(payload.get("data"))
    after, before = mapping_of(data.get("FIELDS_AFTER")), mapping_of(data.get("FIELDS_BEFORE"))
    task_id = text_of(after.get("TASK_ID")) or text_of(before.get("TASK_ID"))
    if task_id is not None:
        parts = [task_id] + [part for name in ("ID", "MESSAGE_ID")
                             if (part := text_of(after.get(name)) or text_of(before.get(name)))]
        return "/".join(parts)
    return text_of(after.get("ID")) or text_of(before.get("ID")) or text_of(mapping_of(data.get("FIELDS")).get("ID"))


def content_key(payload: Mapping[str, Any]) -> str | None:
    """``bitrix24:<event>:<object id>:<ts>``; None when the payload lacks one of them."""
    event, ts, object_ref = text_of(payload.get("event")), text_of(payload.get("ts")), object_id(payload)
    if event is None or ts is None or object_ref is None:
        return None
    key = f"bitrix24:{event.upper()}:{object_ref}:{ts}"
    if len(key) > MAX_KEY_LENGTH:
        key = "bitrix24:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def idempotency_key(headers: Mapping[str, str], body: bytes) -> str | None:
    """:func:`content_key` of the body; None (the connector keys on the body's
    SHA-256) for a body that cannot be read or lacks what identifies the event."""
    try:
        payload = form.parse(body)
    except Unreadable:
        return None
    return content_key(payload)
