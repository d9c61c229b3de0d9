"""Secrets out of text: the one scrub of the worker's and the dispatcher's
stored errors and of the CLI's messages. Secrets (webhook secrets, API tokens)
are never logged and never shown, even when a remote side echoes them back.
Capability URLs (``/approve/<token>``) are redacted from the server's logs
and from stored text the API shows (:func:`redact_paths`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by
    :data:`MASK`, the longest first: a secret that contains another is masked
    whole, not left half shown."""
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# a capability in a URL's path: whoever holds the URL may act (the one-click approval link);
# "…" stands where the outbox shows a link made only when its message is sent
CAPABILITY_PATH = re.compile(r"(/approve/)(?!…)[^/?#\s\"'<>]+")
SECRET_PATH = "(secret)"


def redact_paths(text: str) -> str:
    """``text`` with the secret part of every capability URL path replaced by
    ``(secret)``: ``/approve/<token>`` becomes ``/approve/(secret)``. For the
    access log, and for what the API shows of stored text."""
    return CAPABILITY_PATH.sub(r"\1" + SECRET_PATH, text)


def redact_paths_in(value: Any) -> Any:
    """``value`` (JSON: mappings, lists, text) with :func:`redact_paths` applied to every text in it."""
    if isinstance(value, str):
        return redact_paths(value)
    if isinstance(value, Mapping):
        return {key: redact_paths_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_paths_in(item) for item in value]
    return value


class RedactPaths(logging.Filter):
    """A logging filter that passes every record with :func:`redact_paths`
    applied to its message (gunicorn's "Error handling request /approve/…",
    Flask's "Exception on /approve/… [POST]")."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: logging reports it, not us
            return True
        redacted = redact_paths(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
