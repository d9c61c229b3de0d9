"""Secrets sealed at rest: the columns that hold credentials are encrypted.

Webhook secrets, a PM tool's credentials (API and OAuth tokens) and a
notification channel's secret and target (a chat webhook's URL is itself a
credential) are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256), as
text with a recognisable prefix (``fernet:v1:``). The keys are a list
(``JALON_SECRET_KEYS``, comma-separated): the first seals, every one of them
opens, so a key is rotated by putting a new one first, re-sealing
(:func:`reseal`, ``jalon secrets rotate-key``), then dropping the old one.

The core reads no setting: whoever starts the process hands the keys over
with :func:`configure_keys` (the connector's runtime, the CLI, the demo, the
tests). A value stored in clear before sealing existed is still read as it
is, and sealed by the next :func:`reseal` or the next write.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import JSON, Column, MetaData, Text, TypeDecorator, select, type_coerce, update
from sqlalchemy.orm import Session

from .errors import Invalid, JalonError

PREFIX = "fernet:v1:"
KEYS_SETTING = "JALON_SECRET_KEYS"
MISSING = f"set {KEYS_SETTING} (generate one with jalon secrets generate-key)"


class SecretKeysMissing(Invalid):
    """No key was configured, and a secret must be sealed or opened."""

    code = "secret_keys_missing"


class SecretUnreadable(JalonError):
    """A sealed value that none of the configured keys opens: the key that
    sealed it was dropped from the list, or the list is another database's."""

    code = "secret_unreadable"


# the process's keys, all of them (they open) and the first (it seals); None until configured
_keys: tuple[MultiFernet, Fernet] | None = None


def generate_key() -> str:
    """A new random key, as ``JALON_SECRET_KEYS`` takes it."""
    return Fernet.generate_key().decode("ascii")


def configure_keys(keys: Sequence[str]) -> None:
    """Use ``keys`` from now on, in this whole process: the first seals, every
    one opens. Each must be a Fernet key (``generate_key``); none given is
    :class:`SecretKeysMissing`. A key is never repeated in an error."""
    global _keys
    if not keys:
        raise SecretKeysMissing(MISSING)
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.strip()))
        except (ValueError, TypeError):
            raise Invalid(f"{KEYS_SETTING}: key {position} of {len(keys)} is not a Fernet key "
                          "(32 url-safe base64-encoded bytes; generate one with jalon secrets generate-key)",
                          code="secret_keys_invalid") from None
    _keys = (MultiFernet(fernets), fernets[0])


def keys_configured() -> bool:
    return _keys is not None


def forget_keys() -> None:
    """No keys any more (tests of a missing key; a demo that used its own)."""
    global _keys
    _keys = None


def _current() -> tuple[MultiFernet, Fernet]:
    keys = _keys
    if keys is None:
        raise SecretKeysMissing(MISSING)
    return keys


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def seal(plain: str) -> str:
    """``plain`` encrypted with the first key, as stored."""
    return PREFIX + _current()[0].encrypt(plain.encode("utf-8")).decode("ascii")


def unseal(stored: str) -> str:
    """What :func:`seal` sealed, with any of the keys; a value stored in clear
    (from before sealing) is returned as it is."""
    if not is_sealed(stored):
        return stored
    try:
        return _current()[0].decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable(
            f"a sealed secret cannot be opened with the keys of {KEYS_SETTING}: the key that sealed it "
            "is not among them (put it back, after the new one, and run jalon secrets rotate-key)"
        ) from None


def sealed_by_first_key(stored: str) -> bool:
    """Whether ``stored`` is sealed and opens with the first key."""
    if not is_sealed(stored):
        return False
    try:
        _current()[1].decrypt(stored[len(PREFIX):].encode("ascii"))
    except (InvalidToken, UnicodeError):
        return False
    return True


class Sealed(TypeDecorator[str]):
    """Text sealed at rest: encrypted on the way in, opened on the way out."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        return None if value is None else seal(value)

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        return None if value is None else unseal(value)


class SealedJSON(TypeDecorator[Any]):
    """A JSON document sealed at rest: stored in its JSON column as one JSON
    string, the sealed text of the document. A document stored in clear
    before (an object) is read as it is."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        return seal(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def process_result_value(self, value, dialect):  # type: ignore[no-untyped-def]
        if is_sealed(value):
            return json.loads(unseal(value))
        return value


# ------------------------------------------------------------------ re-sealing


@dataclass
class ResealCount:
    column: str
    sealed: int = 0  # stored in clear, sealed now
    resealed: int = 0  # sealed with another key, sealed with the first now
    unchanged: int = 0  # sealed with the first key already


def sealed_fields(model: type) -> frozenset[str]:
    """The attributes of a mapped class stored sealed."""
    return frozenset(column.key for column in model.__table__.columns  # type: ignore[attr-defined]
                     if isinstance(column.type, (Sealed, SealedJSON)))


def sealed_columns(metadata: MetaData) -> list[Column[Any]]:
    """Every column of ``metadata`` (the models': ``Base.metadata``) stored sealed."""
    return [column for table in metadata.sorted_tables for column in table.columns
            if isinstance(column.type, (Sealed, SealedJSON))]


def reseal(session: Session, metadata: MetaData, *, dry_run: bool = False) -> list[ResealCount]:
    """Seal every value of the sealed columns with the first key: those in
    clear, and those sealed with another key; a value the first key opens
    already is left as it is (so a second run changes nothing). In the
    session's transaction: a value no key opens is :class:`SecretUnreadable`,
    naming the row, and the caller rolls everything back. ``dry_run``: only
    count, and check that every value opens."""
    counts = []
    for column in sealed_columns(metadata):
        table = column.table
        raw_type = JSON() if isinstance(column.type, SealedJSON) else Text()
        raw = type_coerce(column, raw_type)  # as stored: no sealing, no opening
        key = table.primary_key.columns.values()[0]
        count = ResealCount(f"{table.name}.{column.name}")
        for row_id, stored in session.execute(select(key, raw).where(column.is_not(None)).order_by(key)):
            if sealed_by_first_key(stored):
                count.unchanged += 1
                continue
            if is_sealed(stored):
                try:
                    plain = unseal(stored)  # a JSON document's text, for a SealedJSON
                except SecretUnreadable:
                    raise SecretUnreadable(
                        f"{count.column} of {table.name} {row_id} cannot be opened with the keys of "
                        f"{KEYS_SETTING}: the key that sealed it is not among them; nothing was changed"
                    ) from None
                count.resealed += 1
            else:
                plain = json.dumps(stored, separators=(",", ":"), ensure_ascii=False) \
                    if isinstance(column.type, SealedJSON) else stored
                count.sealed += 1
            if not dry_run:
                session.execute(update(table).where(key == row_id)
                                .values({column.name: type_coerce(seal(plain), raw_type)}))
        counts.append(count)
    return counts
