"""A real ``jalon serve`` process with the fake source and recording channel
(``tests/reliability/fakesource.py``, loaded through ``JALON_EXTRA_PLUGINS``),
on a seeded database; it can be killed with SIGKILL and started again on the
same database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from jalon.core import catalog
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work
from jalon.core.models import Delivery, OutboxMessage
from tests.e2e.conftest import JALON, free_port
from tests.reliability import fakesource

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RelayServer:
    database_url: str
    workdir: Path
    threads: int = 16
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hooks/{fakesource.SOURCE}/{fakesource.INTEGRATION_KEY}"

    @property
    def record_file(self) -> Path:
        return self.workdir / "handoffs.tsv"

    @property
    def log(self) -> Path:
        return self.workdir / f"serve-{self.starts}.log"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "JALON_EXTRA_PLUGINS": "tests.reliability.fakesource:plugin",
            fakesource.RECORD_FILE_ENV: str(self.record_file),
            "JALON_WORKER_IDLE_SECONDS": "0.1",
            "JALON_BACKOFF_BASE_SECONDS": "0.2",
            "JALON_BACKOFF_MAX_SECONDS": "1",
            # a worker killed mid-batch leaves leases: short ones so the restart takes them back soon
            "JALON_LEASE_SECONDS": "3",
        })
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> None:
        self.port = free_port()
        self.starts += 1
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [JALON, "--database-url", self.database_url, "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--threads", str(self.threads), "--no-access-log"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=self.env(), cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jalon serve exited: {self.log.read_text(errors='replace')[-3000:]}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"jalon serve did not answer within {timeout} s")

    def kill(self) -> None:
        """SIGKILL the whole process group: the arbiter and its workers, no goodbye."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def output(self) -> str:
        return "\n".join(
            (self.workdir / f"serve-{n}.log").read_text(errors="replace")[-3000:] for n in range(1, self.starts + 1)
        )


def seed_world(database_url: str, milestones: int) -> None:
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_sessionmaker(engine)) as session:
            catalog.apply_config(session, fakesource.world(milestones), actor="test")
            add_record_channel(session)
    finally:
        engine.dispose()


def add_record_channel(session) -> None:  # type: ignore[no-untyped-def]
    """Finance's channel in these tests: the fake ``record`` channel, for every event."""
    from jalon.core.models import NotificationChannel
    from jalon.core.types import utcnow

    session.add(NotificationChannel(key="finance-record", kind=fakesource.CHANNEL, name="Finance (recorded)",
                                    target={}, events=[], enabled=True, allow_private_network=False,
                                    created_at=utcnow()))


@pytest.fixture
def relay(db_url, tmp_path) -> Iterator[Callable[..., RelayServer]]:  # type: ignore[no-untyped-def]
    """``relay(milestones=n)`` seeds the database and starts the server."""
    servers: list[RelayServer] = []

    def start(milestones: int = 5, **kw) -> RelayServer:  # type: ignore[no-untyped-def]
        seed_world(db_url, milestones)
        server = RelayServer(db_url, tmp_path, **kw)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise AssertionError(f"not reached within {timeout} s: {what}")


def drained(engine) -> Callable[[], bool]:  # type: ignore[no-untyped-def]
    """True once no delivery and no outbox message is left to do."""

    def check() -> bool:
        with engine.connect() as conn:
            deliveries = conn.execute(
                select(func.count()).select_from(Delivery).where(Delivery.status.in_(("pending", "processing")))
            ).scalar_one()
            messages = conn.execute(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.status.in_(("pending", "processing", "sending")))
            ).scalar_one()
            return deliveries == 0 and messages == 0

    return check
