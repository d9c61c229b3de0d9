"""Secrets out of text: the one scrub of the worker's and the dispatcher's
stored errors and of the CLI's messages. Secrets (webhook secrets, API tokens)
are never logged and never shown, even when a remote side echoes them back."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "***"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each non-empty secret replaced by
    :data:`MASK`, the longest first: a secret that contains another is masked
    whole, not left half shown."""
    for secret in sorted({secret for secret in secrets if secret}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
