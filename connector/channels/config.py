"""Checks a notification channel's configuration before the core stores it:
a known kind, a target its plugin accepts, a URL the SSRF guard lets through,
known event names, and (webhook) a well-formed signing secret.

Used by the admin API and by ``jalon config apply``; the core's
``upsert_channel`` knows no plugin and opens no socket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

from jalon.core.errors import Invalid

from jalon.connector.net import ssrf
from jalon.connector.outbox.notify import EVENTS
from jalon.connector.plugin.manager import channels
from jalon.connector.channels import webhook


def check_channel(pm: pluggy.PluginManager, data: Mapping[str, Any], existing: Any = None) -> None:
    """Raise :class:`Invalid` (or ``url_not_allowed``) when the channel cannot
    work. ``existing`` is the stored channel, when there is one."""
    specs = channels(pm)
    kind = data.get("kind")
    if kind not in specs:
        raise Invalid(f"kind must be one of {', '.join(sorted(specs)) or '(no channel plugin installed)'}",
                      code="unknown_channel_kind")
    target = data.get("target")
    if not isinstance(target, Mapping):
        raise Invalid("target must be a mapping", code="invalid_channel_target")
    schema = specs[kind].target_schema
    if schema is not None:
        errors = schema().validate(dict(target))
        if errors:
            fields = "; ".join(f"{name}: {msgs}" for name, msgs in sorted(errors.items()))
            raise Invalid(f"target of a {kind} channel: {fields}", code="invalid_channel_target")
    if target.get("url") is not None:
        ssrf.check_url(str(target["url"]), allow_private_network=bool(data.get("allow_private_network")),
                       resolve=False)
    events = data.get("events") or []
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        raise Invalid("events must be a list of event names", code="invalid_channel_events")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise Invalid(f"unknown event(s) {', '.join(unknown)}; known: {', '.join(EVENTS)}",
                      code="invalid_channel_events")
    if kind == webhook.NAME and not data.get("secret") and not getattr(existing, "secret", None):
        raise Invalid("a webhook channel needs a signing secret (whsec_...)", code="webhook_secret_required")
    if kind == webhook.NAME and data.get("secret"):
        try:
            webhook.secret_key(str(data["secret"]))
        except webhook.BadSecret as error:
            raise Invalid(str(error), code="invalid_webhook_secret") from None


def checker(pm: pluggy.PluginManager) -> Callable[[Mapping[str, Any], Any], None]:
    """The ``check`` that ``catalog.upsert_channel`` and ``apply_config`` take."""
    return lambda data, existing=None: check_channel(pm, data, existing)
