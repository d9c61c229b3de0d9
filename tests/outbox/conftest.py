"""The outbox's world: a runtime on the test database, the factories' seed,
channels, a real SMTP server (aiosmtpd) on a free loopback port, and a fake
resolver for host names that must look public to the SSRF guard (no traffic
ever leaves: `responses` answers every HTTP call)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from jalon.connector.net import ssrf
from jalon.connector.runtime import build_runtime
from jalon.connector.settings import Settings
from jalon.core import catalog
from jalon.core.db import unit_of_work
from tests import factories

# what the fake resolver answers for the test's "public" names; never connected to
PUBLIC_ADDRESS = "93.184.215.14"
PUBLIC_NAMES = ("hooks.chat.test", "books.accounting.test", "jira.atelier.test")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler that keeps what it receives and answers DATA with ``reply``."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.reply = "250 Message accepted for delivery"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        if not self.reply.startswith("250"):
            return self.reply
        self.messages.append(envelope)
        return self.reply


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
def public_dns(monkeypatch):  # type: ignore[no-untyped-def]
    """The guard's resolver sees the test names as public; others do not resolve."""
    def resolve(host: str, port: int) -> list[str]:
        if host in PUBLIC_NAMES:
            return [PUBLIC_ADDRESS]
        raise socket.gaierror(socket.EAI_NONAME, "not a test name")

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    return resolve


@pytest.fixture
def settings() -> Settings:
    return Settings(public_url="https://jalon.atelier.example", max_attempts=3, lease_seconds=60,
                    backoff_base_seconds=2.0, backoff_max_seconds=3600.0, smtp_timeout_seconds=5.0,
                    mail_from="jalon@atelier.example", http_timeout_seconds=2.0)


@pytest.fixture
def runtime(db_url, settings):  # type: ignore[no-untyped-def]
    runtime = build_runtime(db_url, settings=settings)
    try:
        yield runtime
    finally:
        runtime.dispose()


@pytest.fixture
def uow(runtime):  # type: ignore[no-untyped-def]
    return lambda: unit_of_work(runtime.sessionmaker)


@pytest.fixture
def world(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as session:
        factories.seed(session)


def add_channel(uow, **data: Any):  # type: ignore[no-untyped-def]
    with uow() as session:
        channel, _ = catalog.upsert_channel(session, data, actor="test")
        return channel.id


EMAIL = {"key": "finance", "kind": "email", "name": "Finance", "target": {"to": ["finance@atelier.example"]}}
CHAT = {"key": "chat", "kind": "chat", "name": "#billing", "target": {"url": "https://hooks.chat.test/services/T0/B0/SECRETPATH"}}
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK = {"key": "books", "kind": "webhook", "name": "Accounting", "secret": WEBHOOK_SECRET,
           "target": {"url": "https://books.accounting.test/hooks/jalon"}}


def complete_milestone(uow, settings, *, task: str = "WEB-1", minute: int = 0) -> int:  # type: ignore[no-untyped-def]
    """What the worker does for a milestone's TaskCompleted: apply, then queue, in one transaction."""
    from jalon.connector.outbox.notify import on_outcomes
    from jalon.core.rules import apply_event

    with uow() as session:
        integration = catalog.get_integration(session, "jira-atelier")
        outcome = apply_event(session, factories.completed(
            task, minute=minute, task_url=f"https://jira.atelier.test/browse/{task}"))
        return on_outcomes(session, [outcome], integration=integration, settings=settings)


def outbox(uow, **filters: Any) -> list[Any]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from jalon.core.models import OutboxMessage

    with uow() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for field, value in filters.items():
            query = query.where(getattr(OutboxMessage, field) == value)
        return list(session.execute(query).scalars().all())


def approval_links(uow) -> list[Any]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from jalon.core.models import ApprovalLink

    with uow() as session:
        return list(session.execute(select(ApprovalLink).order_by(ApprovalLink.id)).scalars().all())


def auto_issue_below(uow, amount: str) -> None:  # type: ignore[no-untyped-def]
    """The seeded entity's policy: milestone drafts below ``amount`` incl. VAT issue at once."""
    with uow() as session:
        catalog.upsert_entity(session, {**factories.ENTITY, "auto_issue_below": amount}, actor="test")
