"""The outbox dispatcher: delivers notifications and write-backs, with retries.

One pass (:func:`dispatch_once`):

1. claims, in a short transaction, the messages that are due (``pending``
   whose ``next_attempt_at`` has come, or ``sending`` whose lease expired
   because their sender died), with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL
   so several dispatchers share the work; each claim is a lease (owner,
   token, expiry) and counts an attempt;
2. sends each one OUTSIDE any transaction, through the channel plugin
   (``jalon_channel_send``) or, for a write-back to a PM tool, the source
   plugin (``jalon_source_comment``);
3. records the result, fenced by the lease token: a stale sender whose lease
   was taken over writes nothing. ``sent`` with the remote id; or ``pending``
   again with exponential backoff (or the ``after`` the remote side asked
   for); or ``failed`` after a permanent failure or the last attempt.

A ``milestone.done`` message whose payload names an ``approval`` gets its
one-click approval link as it is claimed, in the claim's transaction
(:func:`jalon.connector.outbox.notify.with_approval_link`): the token exists
in the message sent and, as a digest, in ``approval_links``; never in the
outbox row, nor in its ``last_error``.

A message whose payload names ``attachments`` (``[{"invoice_id": 12, "kind":
"pdf"}]``: an invoice sent to its client) gets the stored documents in its
view's ``attachments``, read (and rendered first if they are not yet, in a
transaction of their own) just before the send: channel plugins never touch
the database.

Nothing is ever dropped: a failed message stays, visible in
``GET /api/v1/outbox?status=failed``, until someone retries it. Delivery is at
least once: a sender that dies after the remote side accepted a message but
before recording it sends it again after the lease, under the same
idempotency key (``webhook-id``, ``Message-ID``) so the receiver can tell.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update

from jalon.core.db import is_postgresql, read_only_session, unit_of_work
from jalon.core.errors import JalonError
from jalon.core.models import Integration, NotificationChannel, OutboxMessage
from jalon.core.types import utcnow

from jalon.connector.net.http import BadResponse, RateLimited, RemoteError, Unavailable
from jalon.connector.net.ssrf import UrlNotAllowed
from jalon.connector.plugin.types import (
    Attachment,
    Comment,
    IntegrationView,
    OutboxView,
    PermanentFailure,
    RetryLater,
    SendResult,
)
from jalon.connector.backoff import backoff_seconds
from jalon.connector.outbox.notify import with_approval_link
from jalon.connector.redaction import scrub
from jalon.connector.runtime import Runtime
from jalon.connector.settings import Settings

log = logging.getLogger("jalon.connector.outbox.dispatcher")

MAX_ERROR_LENGTH = 2000


@dataclass(frozen=True)
class Claim:
    id: int
    token: str
    attempts: int
    channel: str
    view: OutboxView | None = None
    integration: IntegrationView | None = None
    # a reason to fail at once, without sending (disabled channel, last attempt's sender died)
    refuse: str | None = None
    secrets: tuple[str, ...] = ()


# a result waits at most this long before it is recorded: the results of a
# batch are recorded together (one transaction), but a slow channel never
# leaves the earlier messages of its batch unrecorded for long
RECORD_AFTER_SECONDS = 1.0


def dispatch_once(runtime: Runtime, *, owner: str, limit: int | None = None) -> int:
    """Claim the due messages, send them (outside any transaction), record
    the results in one transaction, each fenced by its lease token; return
    how many were claimed."""
    claims = claim(runtime, owner=owner, limit=limit or runtime.settings.worker_batch)
    channel_settings = asdict(runtime.settings) if claims else {}
    results: list[Result] = []
    first_at = 0.0
    for item in claims:
        if not results:
            first_at = time.monotonic()
        results.append(outcome_of(runtime, item, channel_settings=channel_settings))
        if time.monotonic() - first_at >= RECORD_AFTER_SECONDS:
            record_results(runtime, results)
            results = []
    if results:
        record_results(runtime, results)
    return len(claims)


def send_these(
    runtime: Runtime,
    ids: Collection[int],
    *,
    owner: str,
    stopping: Callable[[], bool] = lambda: False,
    progress: Callable[[int, str], None] = lambda message_id, status: None,
    poll_seconds: float = 0.2,
) -> dict[int, str]:
    """Send these messages now, one at a time, each result recorded before the
    next is claimed (so a process killed between two messages has sent each
    recorded one exactly once); one attempt each: a temporary failure stays
    ``pending`` for the dispatcher's later tries. A message held under a
    live lease (a sender that died) is waited for until its lease expires.
    ``stopping()`` is asked between two messages. Returns each message's
    status when the call ends; ``progress(id, status)`` is told as each one
    settles."""
    left = set(ids)
    settled: dict[int, str] = {}

    def settle(message_id: int, status: str) -> None:
        left.discard(message_id)
        settled[message_id] = status
        progress(message_id, status)

    deadline: float | None = None
    while left and not stopping():
        claims = claim(runtime, owner=owner, limit=1, ids=left)
        if claims:
            [item] = claims
            result = outcome_of(runtime, item)
            [fenced] = record_results(runtime, [result])
            settle(item.id, result.status if fenced else "sending")
            continue
        # nothing to claim: settled by another sender, or held under its lease
        for message_id, status in _statuses(runtime, left).items():
            if status not in ("pending", "sending"):
                settle(message_id, status)
                deadline = None  # the other sender is alive: wait for the rest as long again
        if not left:
            break
        deadline = deadline or time.monotonic() + runtime.settings.lease_seconds + 5 * poll_seconds
        if time.monotonic() > deadline:
            break
        time.sleep(poll_seconds)
    settled.update(_statuses(runtime, left))
    return settled


def _statuses(runtime: Runtime, ids: Collection[int]) -> dict[int, str]:
    if not ids:
        return {}
    with read_only_session(runtime.sessionmaker) as session:
        rows = session.execute(select(OutboxMessage.id, OutboxMessage.status).where(OutboxMessage.id.in_(list(ids))))
        return {message_id: status for message_id, status in rows}


def claim(runtime: Runtime, *, owner: str, limit: int, ids: Collection[int] | None = None) -> list[Claim]:
    """Claim up to ``limit`` due messages. With ``ids``, only those messages,
    and a pending one even while it waits out its backoff (an operator sending
    them now); a live lease is respected either way."""
    settings = runtime.settings
    claims: list[Claim] = []
    with unit_of_work(runtime.sessionmaker) as session:
        now = utcnow()
        condition = OutboxMessage.due(now)
        if ids is not None:
            condition = and_(OutboxMessage.id.in_(list(ids)), or_(OutboxMessage.status == "pending", condition))
        query = (
            select(OutboxMessage)
            .where(condition)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
        if is_postgresql(session):
            query = query.with_for_update(skip_locked=True, of=OutboxMessage)
        for message in session.execute(query).scalars().all():
            if message.status == "sending" and message.attempts >= settings.max_attempts:
                # the sender of the last attempt died: it may or may not have sent
                _finish(message, "failed", error=f"the sender of attempt {message.attempts} stopped before "
                        "recording the result (lease expired); retry it if it did not arrive")
                continue
            token = str(uuid.uuid4())
            message.status = "sending"
            message.attempts += 1
            message.lease_owner = owner[:100]
            message.lease_token = token
            message.lease_expires_at = now + timedelta(seconds=settings.lease_seconds)
            claims.append(_describe(session, message, token, settings=settings, now=now))
    return claims


def _describe(session: Any, message: OutboxMessage, token: str, *, settings: Settings, now: datetime) -> Claim:
    """Everything the send needs, read while the claim's transaction is open
    (an approval link, if the message carries one, made in it)."""
    base = {"id": message.id, "token": token, "attempts": message.attempts, "channel": message.channel}
    destination = dict(message.destination or {})
    if message.channel_id is not None:
        channel = session.get(NotificationChannel, message.channel_id)
        if channel is None or not channel.enabled:
            return Claim(**base, refuse=f"channel {destination.get('channel')} is disabled or gone")
        payload, link_token = with_approval_link(session, message.payload or {}, settings, now=now)
        # the channel's current target: an admin who fixed a wrong URL retries without re-queueing
        view = OutboxView(
            id=message.id, kind=message.kind, idempotency_key=message.idempotency_key,
            destination={**destination, **(channel.target or {})}, payload=payload,
            attempts=message.attempts, secret=channel.secret, allow_private_network=channel.allow_private_network,
        )
        secrets = tuple(s for s in (channel.secret, link_token) if s)
        return Claim(**base, view=view, secrets=secrets + _url_secrets(channel.target))
    view = OutboxView(
        id=message.id, kind=message.kind, idempotency_key=message.idempotency_key, destination=destination,
        payload=dict(message.payload or {}), attempts=message.attempts,
    )
    integration = session.get(Integration, message.integration_id) if message.integration_id else None
    if integration is None:
        return Claim(**base, view=view)
    settings = dict(integration.settings or {})
    integration_view = IntegrationView(
        key=integration.key, source=integration.source, name=integration.name, base_url=integration.base_url,
        settings=settings, secrets=(), credentials=dict(integration.credentials or {}),
    )
    secrets = tuple(str(v) for v in (integration.credentials or {}).values() if isinstance(v, str) and len(v) > 3)
    return Claim(**base, view=view, integration=integration_view, secrets=secrets)


def _url_secrets(target: Any) -> tuple[str, ...]:
    # a chat webhook's URL is its credential: keep it out of last_error
    url = (target or {}).get("url") if isinstance(target, dict) else None
    return (str(url),) if url else ()


@dataclass(frozen=True)
class Result:
    """What a send came to, before it is recorded."""

    item: Claim
    status: str  # "sent", "pending" or "failed"
    error: str | None = None
    delay: float = 0.0
    external_id: str | None = None


def outcome_of(runtime: Runtime, item: Claim, *, channel_settings: dict[str, Any] | None = None) -> Result:
    """Send one claimed message (no transaction open) and say what to record."""
    settings = runtime.settings
    if item.refuse is not None:
        return Result(item, "failed", error=item.refuse)
    allow = ("allow_private_network: true in the integration's settings" if item.integration is not None
             else "allow_private_network: true on the channel")
    try:
        result = decided(lambda: _send(runtime, item, channel_settings=channel_settings), allow=allow)
    except RetryLater as error:
        return _retry_later(item, settings, error)
    except PermanentFailure as error:
        return Result(item, "failed", error=str(error))
    except Exception as error:  # a plugin's bug or an unexpected answer: retried, bounded
        log.warning("outbox message %s: %s raised %s", item.id, item.channel, type(error).__name__, exc_info=True)
        reason = f"{type(error).__name__}: {error}"
        if item.attempts >= settings.max_attempts:
            return Result(item, "failed", error=f"gave up after {item.attempts} attempts: {reason}")
        return Result(item, "pending", error=reason, delay=backoff_seconds(item.attempts, settings))
    if result is None:
        return Result(item, "failed", error=f"no plugin for channel {item.channel}")
    return Result(item, "sent", external_id=result.external_id)


def decided(send: Callable[[], SendResult | None], *, allow: str) -> SendResult | None:
    """Run a send, the remote side's errors turned into the outbox's decisions,
    so that a plugin may let the REST client's errors through:

    * 429, 5xx, timeouts, connection errors: :class:`RetryLater` (after the
      ``Retry-After`` asked, if any);
    * 401, 403, 404 and any other 4xx: :class:`PermanentFailure`;
    * a 2xx whose body is not what was expected: sent (the message exists
      there; sending again would double it);
    * a redirect (3xx, never followed): :class:`PermanentFailure` naming
      where it pointed;
    * a URL the SSRF guard refuses: :class:`PermanentFailure` naming the
      setting (``allow``) that would let it through, at the first attempt.
    """
    try:
        return send()
    except UrlNotAllowed as error:
        raise PermanentFailure(f"url_not_allowed: {error.message} (an address on your own network needs "
                               f"{allow})") from None
    except BadResponse as error:
        if error.status is not None and error.status < 400:
            return SendResult(external_id=None)
        raise PermanentFailure(str(error)) from None
    except (RateLimited, Unavailable) as error:
        raise RetryLater(str(error), after=error.retry_after) from None
    except RemoteError as error:
        raise PermanentFailure(str(error)) from None


def _retry_later(item: Claim, settings: Any, error: RetryLater) -> Result:
    if item.attempts >= settings.max_attempts:
        return Result(item, "failed", error=f"gave up after {item.attempts} attempts: {error}")
    delay = backoff_seconds(item.attempts, settings)
    if error.after is not None:
        delay = min(max(float(error.after), 0.0), settings.backoff_max_seconds)
    return Result(item, "pending", error=str(error), delay=delay)


def send_claimed(runtime: Runtime, item: Claim) -> bool:
    """Send one claimed message and record the result; False when the lease was lost."""
    [fenced] = record_results(runtime, [outcome_of(runtime, item)])
    return fenced


def load_attachments(runtime: Runtime, references: Any) -> tuple[Attachment, ...]:
    """The files a payload's ``attachments`` name, from the stored documents
    (rendered first, in a transaction of their own, if they are not yet)."""
    from jalon.connector.outbox.rendering import ensure_documents

    if not isinstance(references, Sequence) or isinstance(references, (str, bytes)):
        raise PermanentFailure("the message's attachments are not a list")
    files = []
    for reference in references:
        if not isinstance(reference, Mapping) or not isinstance(reference.get("invoice_id"), int):
            raise PermanentFailure(f"unreadable attachment reference {reference!r}")
        invoice_id, kind = reference["invoice_id"], str(reference.get("kind") or "pdf")
        try:
            stored = ensure_documents(runtime.sessionmaker, invoice_id)
        except JalonError as error:  # no such invoice, or not issued: waiting will not help
            raise PermanentFailure(f"attachment of invoice {invoice_id}: {error.message}") from None
        document = stored.get(kind)
        if document is None:
            raise PermanentFailure(f"invoice {invoice_id} has no {kind} document")
        files.append(Attachment(document.filename, document.media_type, document.content))
    return tuple(files)


def _send(runtime: Runtime, item: Claim, *, channel_settings: dict[str, Any] | None = None) -> SendResult | None:
    assert item.view is not None
    if item.integration is not None:
        destination = item.view.destination
        comment = Comment(
            task_ref=str(destination.get("task_ref") or ""),
            text=str(item.view.payload.get("text") or ""),
            idempotency_key=item.view.idempotency_key,
            project_ref=destination.get("project_ref"),
            task_url=item.view.payload.get("task_url"),
        )
        hooks = runtime.pm.source(item.integration.source)
        if hooks is None:
            raise PermanentFailure(f"no installed plugin serves {item.integration.source!r}")
        # one retry in-process at most: the outbox's own backoff does the rest
        http = runtime.rest_client(item.integration, max_retries=1, max_wait=5.0)
        try:
            return hooks.jalon_source_comment(
                source=item.integration.source, integration=item.integration, comment=comment, http=http)
        finally:
            http.close()
    # a copy per send: a plugin that changes its dict changes nobody else's
    settings = dict(channel_settings) if channel_settings is not None else asdict(runtime.settings)
    view = item.view
    if view.payload.get("attachments"):
        view = replace(view, attachments=load_attachments(runtime, view.payload["attachments"]))
    hooks = runtime.pm.channel(item.channel)
    if hooks is None:
        return None
    return hooks.jalon_channel_send(channel=item.channel, message=view, settings=settings)


def _finish(message: OutboxMessage, status: str, *, error: str | None = None) -> None:
    message.status = status
    message.lease_owner = message.lease_token = None
    message.lease_expires_at = None
    if error is not None:
        message.last_error = error[:MAX_ERROR_LENGTH]


_outbox = OutboxMessage.__table__
_record_statements: dict[tuple[str, ...], Any] = {}


def _record_statement(columns: tuple[str, ...]) -> Any:
    """The fenced UPDATE setting these columns (built once per set of columns)."""
    statement = _record_statements.get(columns)
    if statement is None:
        statement = (
            update(_outbox)
            .where(_outbox.c.id == bindparam("r_id"), _outbox.c.lease_token == bindparam("r_token"),
                   _outbox.c.status == "sending")
            .values({name: bindparam(f"v_{name}") for name in columns})
        )
        _record_statements[columns] = statement
    return statement


def _values(result: Result, now: Any) -> dict[str, Any]:
    item, status = result.item, result.status
    values: dict[str, Any] = {"status": status, "lease_owner": None, "lease_token": None, "lease_expires_at": None}
    if status == "sent":
        external_id = result.external_id
        values.update(sent_at=now, external_id=(external_id or None) and external_id[:300], last_error=None)
    else:
        values["last_error"] = scrub(result.error or "", item.secrets)[:MAX_ERROR_LENGTH]
    if status == "pending":
        values["next_attempt_at"] = now + timedelta(seconds=result.delay)
    return values


def record_results(runtime: Runtime, results: list[Result]) -> list[bool]:
    """Record several results in ONE transaction, each fenced by its lease
    token: a stale sender's result is not written (False), the others are."""
    now = utcnow()
    rows = [(result, _values(result, now)) for result in results]
    fenced: list[bool] = []
    with unit_of_work(runtime.sessionmaker) as session:
        connection = session.connection()
        for result, values in rows:
            parameters = {f"v_{name}": value for name, value in values.items()}
            parameters.update(r_id=result.item.id, r_token=result.item.token)
            outcome = connection.execute(_record_statement(tuple(values)), parameters)
            fenced.append(outcome.rowcount == 1)
    for (result, values), ok in zip(rows, fenced):
        if not ok:
            log.warning("outbox message %s: lease lost before the result (%s) was recorded",
                        result.item.id, result.status)
        elif result.status == "failed":
            log.warning("outbox message %s failed: %s", result.item.id, values["last_error"])
    return fenced


def _record(
    runtime: Runtime, item: Claim, status: str, *, error: str | None = None, delay: float = 0.0,
    external_id: str | None = None,
) -> bool:
    [fenced] = record_results(runtime, [Result(item, status, error=error, delay=delay, external_id=external_id)])
    return fenced
