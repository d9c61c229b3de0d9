"""Several processes on PostgreSQL, under load and kill -9.

    .venv/bin/python bench/scale.py                                  # 3,000 deliveries at 50/s
    .venv/bin/python bench/scale.py --count 6000 --rate 80 --postgres URL

On a scratch database of its own (``jalon_scale_<random>``, created on the
server of ``--postgres`` and dropped at the end), it starts two
``jalon serve --no-worker --no-scheduler`` (the web side, each on its own
loopback port) and two ``jalon worker`` (the worker, the dispatcher and the
scheduler), with the fake source and recording channel of
``tests/reliability/fakesource.py`` loaded through ``JALON_EXTRA_PLUGINS``,
and a short lease (``--lease-seconds``, 5).

A load generator in this process sends ``--count`` signed deliveries, each
with a key of its own, at a steady ``--rate`` (open loop: each has a
scheduled time), round-robin over the two ports: every fifth completes a
milestone (one draft invoice, a finance notification and a comment each),
the others log time on a worklog of their own. It behaves as a load balancer
with failover and a PM tool that retries: an attempt that is not answered
2xx is tried again on the other port shortly after. Some acknowledged
deliveries (``--resend``, 5 %) are sent again a second or two later: each
must be answered as a duplicate.

When a third of the stream is acknowledged, it waits (5 s at most) for the
first worker to hold leases, then kills that worker and the first server's
process group with SIGKILL, and starts both again ``--down`` seconds later
(the server on the same port). The deliveries the dead worker held are taken
back by a live worker once their lease expires: the time from the kill until
all of them are processed is the lease recovery time.

Once the stream is over and the inbox and outbox are drained (bounded wait),
it counts from the database and prints one table: deliveries acknowledged,
stored, processed, effects applied, duplicates applied (must be 0), lost
(acknowledged but not applied: must be 0), the throughput and latency before
the kill, while a server and a worker are down, and after they are back, and
the lease recovery time. Exit status: 0 when nothing was lost or doubled and
everything was drained, 1 otherwise.

It is a script, not a test: the figures depend on the machine and on what
else runs on it (the load average at the start is printed).
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, make_url, select, text  # noqa: E402

from jalon.core import catalog  # noqa: E402
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from jalon.core.migrate import upgrade  # noqa: E402
from jalon.core.models import (  # noqa: E402
    AuditRecord,
    Delivery,
    Invoice,
    Milestone,
    OutboxMessage,
    TimeEntry,
)
from tests.reliability import fakesource  # noqa: E402
from tests.reliability.conftest import add_record_channel  # noqa: E402

JALON = str(Path(sys.executable).with_name("jalon"))
HOOK = f"/hooks/{fakesource.SOURCE}/{fakesource.INTEGRATION_KEY}"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
EVERY_MILESTONE = 5
BENCH_APPLICATION = "jalon-bench-scale"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# ------------------------------------------------------------------ the processes


class Process:
    """One jalon command in a process group of its own, restartable, logged to
    ``<workdir>/<name>-<start>.log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path):
        self.name, self.argv, self.env, self.workdir = name, argv, env, workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}-{self.starts}.log"

    def command(self) -> list[str]:
        return self.argv

    # once the run is over, no thread may start a process that nobody would stop
    _starting = threading.Lock()
    _closed = False

    def start(self) -> None:
        with Process._starting:
            if Process._closed:
                raise RuntimeError(f"{self.name}: the run is over")
            self.starts += 1
            with self.log.open("wb") as out:
                self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                                start_new_session=True, env=self.env, cwd=self.workdir)

    @staticmethod
    def stop_all(processes: list[Process]) -> None:
        with Process._starting:
            Process._closed = True
        for process in processes:
            process.stop()

    def ready(self) -> bool:
        raise NotImplementedError

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready within {timeout:g} s")

    def kill(self) -> None:
        """SIGKILL the whole process group: no goodbye, no lease given back."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass


class Serve(Process):
    """``jalon serve``, the web side only, on a fixed port (a restart keeps it)."""

    def __init__(self, number: int, url: str, env: dict[str, str], workdir: Path, threads: int):
        self.port = free_port()
        argv = [JALON, "--database-url", url, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--threads", str(threads), "--no-worker", "--no-scheduler", "--no-migrate", "--no-access-log"]
        # two servers on one host would both bind their process to the first CPU: each gets its own,
        # as if on a host of its own
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cpus) > 1 and shutil.which("taskset"):
            argv = ["taskset", "-c", str(cpus[(number - 1) % len(cpus)]), *argv]
        super().__init__(f"serve{number}", argv, env, workdir)

    def ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False


class Worker(Process):
    """``jalon worker`` (worker, dispatcher, scheduler); each start under an owner
    name of its own, so that the leases a dead one left can be told apart."""

    def __init__(self, number: int, url: str, env: dict[str, str], workdir: Path):
        super().__init__(f"worker{number}", [JALON, "--database-url", url, "worker"], env, workdir)

    @property
    def owner(self) -> str:
        return f"scale-{self.name}-{self.starts}"

    def command(self) -> list[str]:
        return [*self.argv, "--owner", self.owner]

    def ready(self) -> bool:
        return f"worker {self.owner} running" in self.log.read_text(errors="replace")


# ------------------------------------------------------------------ the load generator


@dataclass(frozen=True)
class Planned:
    key: str
    body: bytes
    worklog: str | None  # a time delivery: its worklog and seconds
    seconds: int
    milestone: str | None  # a completion: the milestone's reference


def plan(count: int, run: str) -> list[Planned]:
    made = []
    for i in range(count):
        key = f"scale-{run}-{i}"
        if i % EVERY_MILESTONE == 0:
            number = i // EVERY_MILESTONE + 1
            made.append(Planned(key, fakesource.done_body(f"T-{number}"), None, 0, f"M{number}"))
        else:
            worklog, seconds = f"WL-{run}-{i}", 60 * (1 + i % 480)
            made.append(Planned(key, fakesource.time_body(worklog, seconds), worklog, seconds, None))
    return made


@dataclass(order=True)
class Job:
    due: float
    seq: int
    index: int = field(compare=False)
    resend: bool = field(compare=False, default=False)
    attempt: int = field(compare=False, default=1)
    slot: int = field(compare=False, default=0)  # which port: slot % number of ports
    scheduled: float = field(compare=False, default=0.0)  # the first attempt's time, for latency


@dataclass
class Attempt:
    at: float  # when the answer (or the failure) came
    status: int  # 0: no answer (refused, reset, timeout)
    resend: bool


class Sender:
    """Open loop: delivery i is due at start + i / rate, whatever happened to
    the ones before; a failed attempt is tried again on the other port after a
    short backoff (until ``give_up_at``); a few acknowledged ones are sent again."""

    def __init__(self, ports: list[int], planned: list[Planned], *, rate: float, threads: int,
                 resend: float, stream_grace: float):
        self.ports, self.planned, self.rate, self.threads = ports, planned, rate, threads
        self.resend_per_mille = round(resend * 1000)
        self.stream_grace = stream_grace
        self.heap: list[Job] = []
        self.cond = threading.Condition()
        self.work: queue.Queue[Job | None] = queue.Queue()
        self.seq = itertools.count()
        self.outstanding = 0
        self.local = threading.local()
        self.stop = threading.Event()
        # results, under self.cond
        self.acked: dict[int, tuple[float, int, float, int]] = {}  # index -> (at, status, latency, attempts)
        self.attempts: list[Attempt] = []
        self.resent: Counter[int] = Counter()  # answers to re-sends by status
        self.refused: Counter[int] = Counter()  # answers never retried (4xx but 429)
        self.given_up: set[int] = set()
        self.acked_event_at: tuple[int, threading.Event] | None = None
        self.started_at = 0.0
        self.give_up_at = 0.0

    def when_acked(self, count: int) -> threading.Event:
        event = threading.Event()
        self.acked_event_at = (count, event)
        return event

    def _push(self, job: Job) -> None:
        with self.cond:
            heapq.heappush(self.heap, job)
            self.outstanding += 1
            self.cond.notify()

    def _pacer(self) -> None:
        while not self.stop.is_set():
            with self.cond:
                if not self.outstanding:
                    break
                now = time.time()
                while self.heap and self.heap[0].due <= now:
                    self.work.put(heapq.heappop(self.heap))
                wait = (self.heap[0].due - now) if self.heap else 0.1
                self.cond.wait(timeout=max(0.0, min(wait, 0.1)))
        for _ in range(self.threads):
            self.work.put(None)

    def _session(self, port: int) -> requests.Session:
        sessions = self.local.__dict__.setdefault("sessions", {})
        if port not in sessions:
            sessions[port] = requests.Session()
        return sessions[port]

    def _send(self) -> None:
        while True:
            job = self.work.get()
            if job is None:
                return
            item = self.planned[job.index]
            port = self.ports[job.slot % len(self.ports)]
            try:
                status = self._session(port).post(
                    f"http://127.0.0.1:{port}{HOOK}", data=item.body, timeout=(2, 10),
                    headers=fakesource.headers_for(fakesource.SECRET, item.key, item.body)).status_code
            except requests.RequestException:
                status = 0
            now = time.time()
            follow: Job | None = None
            with self.cond:
                self.attempts.append(Attempt(now, status, job.resend))
                if status in (200, 202):
                    if job.resend:
                        self.resent[status] += 1
                    elif job.index not in self.acked:
                        self.acked[job.index] = (now, status, now - job.scheduled, job.attempt)
                        if self.acked_event_at and len(self.acked) >= self.acked_event_at[0]:
                            self.acked_event_at[1].set()
                        # the same few every run: (i * a large odd number) spread over 0..999
                        if (job.index * 2654435761) % 1000 < self.resend_per_mille:
                            follow = Job(now + 1 + (job.index % 20) / 10, next(self.seq), job.index, resend=True,
                                         slot=job.slot + 1, scheduled=now)
                elif (status == 0 or status == 429 or status >= 500) and now < self.give_up_at:
                    # the other port next, after a short backoff (a load balancer's failover, a tool's retry)
                    follow = Job(now + min(0.2 * job.attempt, 2.0), next(self.seq), job.index, job.resend,
                                 job.attempt + 1, job.slot + 1, job.scheduled)
                elif status in (0, 429) or status >= 500:
                    if not job.resend:
                        self.given_up.add(job.index)
                else:
                    self.refused[status] += 1
            if follow is not None:
                self._push(follow)
            with self.cond:
                self.outstanding -= 1
                self.cond.notify()

    def run(self) -> None:
        """Send everything; returns when every delivery is answered or given up."""
        self.started_at = time.time() + 0.5
        last = self.started_at + (len(self.planned) - 1) / self.rate
        self.give_up_at = last + self.stream_grace
        for index in range(len(self.planned)):
            due = self.started_at + index / self.rate
            self._push(Job(due, next(self.seq), index, slot=index, scheduled=due))
        threads = [threading.Thread(target=self._pacer, name="pacer", daemon=True)]
        threads += [threading.Thread(target=self._send, name=f"sender-{n}", daemon=True) for n in range(self.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            # bounded: the last retry is scheduled before give_up_at, an attempt lasts 12 s at most
            thread.join(timeout=max(1.0, self.give_up_at + 30 - time.time()))
        self.stop.set()
        with self.cond:
            self.cond.notify_all()


# ------------------------------------------------------------------ kill -9 and restart


@dataclass
class Incident:
    armed_at: float = 0.0
    killed_at: float = 0.0
    restarted_at: float = 0.0  # both killed processes answering again
    worker_owner: str = ""
    leased: list[int] = field(default_factory=list)  # deliveries the dead worker held
    leased_messages: list[int] = field(default_factory=list)  # outbox messages it held
    recovered_in: float | None = None  # kill -> every delivery it held processed
    messages_recovered_in: float | None = None
    error: str | None = None


def leased_by(engine, owner: str) -> tuple[list[int], list[int]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        deliveries = list(conn.execute(select(Delivery.id).where(
            Delivery.status == Delivery.WORKING, Delivery.lease_owner == owner)).scalars())
        messages = list(conn.execute(select(OutboxMessage.id).where(
            OutboxMessage.status == OutboxMessage.WORKING, OutboxMessage.lease_owner == owner)).scalars())
    return deliveries, messages


def still_held(engine, model, ids: list[int]) -> int:  # type: ignore[no-untyped-def]
    if not ids:
        return 0
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model).where(
            model.id.in_(ids), model.status.in_(("pending", model.WORKING)))).scalar_one()


def kill_and_restart(engine, serve: Serve, worker: Worker, *, down: float, lease: float,  # type: ignore[no-untyped-def]
                     incident: Incident) -> None:
    incident.armed_at = time.time()
    # mid-batch: wait (bounded) for a moment the worker holds leases
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not leased_by(engine, worker.owner)[0]:
        time.sleep(0.005)
    incident.worker_owner = worker.owner
    worker.kill()
    incident.killed_at = time.time()
    serve.kill()
    # what the dead worker holds now (a commit it sent just before dying has landed by then)
    time.sleep(0.2)
    incident.leased, incident.leased_messages = leased_by(engine, incident.worker_owner)

    def watch() -> None:
        # bounded: the lease, then two minutes for a live worker to get to them
        until = incident.killed_at + lease + 120
        while time.time() < until and (incident.recovered_in is None or incident.messages_recovered_in is None):
            if incident.recovered_in is None and not still_held(engine, Delivery, incident.leased):
                incident.recovered_in = time.time() - incident.killed_at
            if incident.messages_recovered_in is None and not still_held(engine, OutboxMessage,
                                                                         incident.leased_messages):
                incident.messages_recovered_in = time.time() - incident.killed_at
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, name="leases", daemon=True)
    watcher.start()
    time.sleep(max(0.0, incident.killed_at + down - time.time()))
    serve.start()
    worker.start()
    serve.wait_ready()
    worker.wait_ready()
    incident.restarted_at = time.time()
    watcher.join(timeout=max(0.0, incident.killed_at + lease + 125 - time.time()))


# ------------------------------------------------------------------ counting


class Connections(threading.Thread):
    """The processes' connections to the database (not this script's), sampled
    every half second: the most seen at once."""

    def __init__(self, engine):  # type: ignore[no-untyped-def]
        super().__init__(name="connections", daemon=True)
        self.engine, self.peak, self.stop = engine, 0, threading.Event()

    def run(self) -> None:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND application_name <> :mine")
        while not self.stop.wait(0.5):
            try:
                with self.engine.connect() as conn:
                    self.peak = max(self.peak, conn.execute(query, {"mine": BENCH_APPLICATION}).scalar_one())
            except Exception:  # noqa: BLE001, S110 (a sample missed is no matter)
                pass


def wait_drained(engine, timeout: float) -> float | None:  # type: ignore[no-untyped-def]
    """Seconds until no delivery and no outbox message is left to do, or None."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        with engine.connect() as conn:
            left = conn.execute(select(func.count()).select_from(Delivery)
                                .where(Delivery.status.in_(("pending", Delivery.WORKING)))).scalar_one()
            left += conn.execute(select(func.count()).select_from(OutboxMessage)
                                 .where(OutboxMessage.status.in_(("pending", OutboxMessage.WORKING)))).scalar_one()
        if not left:
            return time.monotonic() - began
        time.sleep(0.25)
    return None


def extra(counts: Counter) -> int:  # type: ignore[type-arg]
    """How many beyond one each."""
    return sum(n - 1 for n in counts.values() if n > 1)


@dataclass
class Tally:
    statuses: Counter[str]
    stored: int
    processed_at: list[float]
    time_entries: int
    milestones_done: int
    applied: int
    lost: list[str]
    doubled: dict[str, int]
    messages: Counter[tuple[str, str]]
    handed: int
    handed_twice: int


def tally(engine, planned: list[Planned], acked: set[int], record_file: Path) -> Tally:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(select(Delivery.id, Delivery.idempotency_key, Delivery.status, Delivery.processed_at)).all()
        entries = conn.execute(select(TimeEntry.worklog_ref, TimeEntry.seconds)).all()
        audits = conn.execute(select(AuditRecord.action, AuditRecord.subject_id).where(
            AuditRecord.action.in_(("time_entry.logged", "time_entry.changed", "milestone.done")))).all()
        milestones = dict(conn.execute(select(Milestone.reference, Milestone.id).where(Milestone.status == "done")).all())
        invoices = Counter(conn.execute(select(Invoice.milestone_id).where(Invoice.milestone_id.is_not(None))).scalars())
        messages = conn.execute(select(OutboxMessage.kind, OutboxMessage.status, OutboxMessage.delivery_id)).all()
    keys = Counter(key for _, key, _, _ in rows)
    worklogs = Counter(worklog for worklog, _ in entries)
    seconds = dict(entries)
    lost = []
    applied = 0
    for index in sorted(acked):
        item = planned[index]
        if item.worklog is not None:
            ok = seconds.get(item.worklog) == item.seconds
        else:
            ok = item.milestone in milestones and invoices.get(milestones[item.milestone], 0) >= 1
        applied += ok
        if not ok:
            lost.append(item.key)
    audited = Counter(audits)

    def audited_twice(action: str) -> int:
        return sum(n - 1 for (what, _), n in audited.items() if what == action and n > 1)

    doubled = {
        "a delivery stored twice": extra(keys),
        "a worklog with two time entries": extra(worklogs),
        "a worklog logged twice (audit)": audited_twice("time_entry.logged"),
        # each worklog is logged once with its seconds: a change could only come from a copy
        "a worklog changed by a copy (audit)": sum(n for (what, _), n in audited.items()
                                                   if what == "time_entry.changed"),
        "a milestone done twice (audit)": audited_twice("milestone.done"),
        "a milestone with two invoices": extra(invoices),
        "an outbox message queued twice": extra(Counter((kind, delivery) for kind, _, delivery in messages)),
    }
    handed = Counter(key for key, _, _ in fakesource.read_records(str(record_file)))
    return Tally(
        statuses=Counter(status for _, _, status, _ in rows),
        stored=len(keys),
        processed_at=[at.timestamp() for _, _, status, at in rows if status == "done" and at is not None],
        time_entries=len(entries),
        milestones_done=len(milestones),
        applied=applied,
        lost=lost,
        doubled=doubled,
        messages=Counter((kind, status) for kind, status, _ in messages),
        handed=len(handed),
        handed_twice=extra(handed),
    )


# ------------------------------------------------------------------ the run


def environment(args: argparse.Namespace, record_file: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        "JALON_EXTRA_PLUGINS": "tests.reliability.fakesource:plugin",
        fakesource.RECORD_FILE_ENV: str(record_file),
        "JALON_LEASE_SECONDS": str(args.lease_seconds),
        "JALON_WORKER_IDLE_SECONDS": "0.1",
    })
    return env


def secret_keys() -> None:
    """Webhook secrets are sealed at rest with a key from the environment (when
    this jalon does it): a key of the run's own unless one is given."""
    try:
        from jalon.core import secrets
    except ImportError:  # a jalon from before sealing
        return
    setting = "JALON_SECRET_KEYS"
    if not os.environ.get(setting, "").strip():
        os.environ[setting] = secrets.generate_key()
    # the world is seeded from this process: it seals the integration's secret too
    secrets.configure_keys([key.strip() for key in os.environ[setting].split(",") if key.strip()])


def scratch_database(admin_url: str) -> tuple[str, str]:
    name = f"jalon_scale_{uuid.uuid4().hex[:8]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return name, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@dataclass
class Phase:
    name: str
    start: float
    end: float

    def has(self, at: float) -> bool:
        return self.start <= at < self.end

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)


def run(args: argparse.Namespace, url: str, workdir: Path, say: Callable[[str], None]) -> int:
    record_file = workdir / "handoffs.tsv"
    env = environment(args, record_file)
    # named, so that its own connections are not counted with the processes'
    engine = make_engine(url, connect_args={"application_name": BENCH_APPLICATION})
    processes: list[Process] = []
    try:
        upgrade(engine)
        planned = plan(args.count, uuid.uuid4().hex[:6])
        with unit_of_work(make_sessionmaker(engine)) as session:
            catalog.apply_config(session, fakesource.world(-(-args.count // EVERY_MILESTONE)), actor="bench")
            add_record_channel(session)
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()

        serves = [Serve(n, url, env, workdir, args.threads) for n in (1, 2)]
        workers = [Worker(n, url, env, workdir) for n in (1, 2)]
        processes = [*serves, *workers]
        for process in processes:
            process.start()
        for process in processes:
            process.wait_ready()

        milestones = sum(1 for item in planned if item.milestone)
        load = os.getloadavg()[0]
        say(f"jalon scale: 2 x jalon serve (web only, ports {serves[0].port} and {serves[1].port}) "
            f"+ 2 x jalon worker, PostgreSQL {version.split()[0]}")
        say(f"{os.cpu_count()} CPU(s), load average {load:.1f} at the start"
            f"{' (the machine is shared: figures understated)' if load > 1 else ''}")
        say(f"{args.count} deliveries at {args.rate:g}/s ({milestones} milestone completions, "
            f"{args.count - milestones} worklogs), round-robin over both servers; {args.resend:.0%} of the "
            f"acknowledged ones sent again; lease {args.lease_seconds} s; kill -9 at a third, back after "
            f"{args.down:g} s")

        sender = Sender([s.port for s in serves], planned, rate=args.rate, threads=args.senders,
                        resend=args.resend, stream_grace=args.grace)
        incident = Incident()
        armed = sender.when_acked(args.count // 3)

        def controller() -> None:
            if not armed.wait(timeout=args.count / args.rate + args.grace):
                incident.error = "a third of the stream was never acknowledged"
                return
            try:
                kill_and_restart(engine, serves[0], workers[0], down=args.down, lease=args.lease_seconds,
                                 incident=incident)
            except Exception as error:  # noqa: BLE001 (reported in the table, and the run fails)
                incident.error = f"{type(error).__name__}: {error}"

        killer = threading.Thread(target=controller, name="kill-9", daemon=True)
        killer.start()
        connections = Connections(engine)
        connections.start()
        sender.run()
        connections.stop.set()
        killer.join(timeout=args.lease_seconds + args.down + 180)
        stream_end = max((at for at, _, _, _ in sender.acked.values()), default=time.time())
        drained_in = wait_drained(engine, args.drain_timeout)
        if drained_in is None:
            # (still counted: what is left shows in the table, and the run fails)
            say(f"NOT DRAINED within {args.drain_timeout:g} s")
        drained_at = time.time()
        counts = tally(engine, planned, set(sender.acked), record_file)
    finally:
        Process.stop_all(processes)
        engine.dispose()

    # ---- the table
    killed = incident.killed_at or stream_end
    restored = incident.restarted_at or killed
    phases = [Phase("before", sender.started_at, killed), Phase("during", killed, restored),
              Phase("after", restored, stream_end + 1e-6)]
    acks = list(sender.acked.values())

    def row(label: str, values: list[str]) -> str:
        return f"  {label:<30}" + "".join(f"{value:>12}" for value in values)

    say("")
    if incident.error:
        say(f"kill -9: FAILED: {incident.error}")
    else:
        say(f"kill -9 at {incident.killed_at - sender.started_at:.1f} s into the stream: serve1 (its process group) "
            f"and worker1 ({incident.worker_owner}, holding {plural(len(incident.leased), 'delivery', 'deliveries')} "
            f"and {plural(len(incident.leased_messages), 'outbox message')}); both answering again "
            f"{incident.restarted_at - incident.killed_at:.1f} s later")
    say("")
    say(row("", [phase.name for phase in phases]))
    say(row("window (s)", [f"{phase.seconds:.1f}" for phase in phases]))
    say(row("acknowledged / s", [f"{sum(1 for at, *_ in acks if phase.has(at)) / phase.seconds:.1f}"
                                 for phase in phases]))
    say(row("processed / s", [f"{sum(1 for at in counts.processed_at if phase.has(at)) / phase.seconds:.1f}"
                              for phase in phases]))
    say(row("attempts not answered 2xx", [str(sum(1 for a in sender.attempts if phase.has(a.at)
                                                  and a.status not in (200, 202))) for phase in phases]))
    for p in (50, 99):
        say(row(f"ack latency p{p} (ms)", [
            f"{percentile([lat for at, _, lat, _ in acks if phase.has(at - lat)], p) * 1000:.0f}"
            for phase in phases]))
    say("  (acknowledged and processed: per second of the window; ack latency: of the deliveries due in the")
    say("  window, from the time each was due to its acknowledgement, retries included)")
    say("")
    lost_twice = sender.resent.get(202, 0)
    counts.doubled["a re-sent delivery stored again (202)"] = lost_twice
    doubled = sum(counts.doubled.values())
    retried_ok = sum(1 for _, status, _, attempts in acks if attempts > 1)
    answer_lost = sum(1 for _, status, _, attempts in acks if status == 200)
    not_acked = args.count - len(acks)

    def line(label: str, value: int | str, note: str = "") -> None:
        say(f"  {label:<30}{value:>12}   {note}".rstrip())

    line("deliveries sent", args.count)
    line("acknowledged", len(acks), f"{retried_ok} after a retry; {answer_lost} as a duplicate "
         "(stored by an attempt whose answer was lost)")
    line("never acknowledged", not_acked, f"given up {len(sender.given_up)}, refused {dict(sender.refused) or 0}")
    line("stored", counts.stored, f"rows in deliveries, {dict(counts.statuses)}")
    line("processed", counts.statuses.get("done", 0), "status done")
    line("effects applied", counts.applied, f"{counts.time_entries} time entries, {counts.milestones_done} "
         "milestones done with their draft invoice")
    line("re-sent after their ack", sum(sender.resent.values()),
         f"answered duplicate {sender.resent.get(200, 0)}, stored again {lost_twice}")
    line("duplicates applied", doubled, "must be 0" + "".join(
        f"; {what}: {n}" for what, n in counts.doubled.items() if n))
    line("lost", len(counts.lost), "must be 0 (acknowledged, not applied)" + (
        f": {', '.join(counts.lost[:5])}{' ...' if len(counts.lost) > 5 else ''}" if counts.lost else ""))
    if not incident.error:
        recovered = (f"{incident.recovered_in:.1f} s" if incident.recovered_in is not None else "NOT RECOVERED")
        messages = (f"{incident.messages_recovered_in:.1f} s" if incident.messages_recovered_in is not None
                    else "NOT RECOVERED")
        line("lease recovery", recovered if incident.leased else "-",
             (f"kill -> the {plural(len(incident.leased), 'delivery', 'deliveries')} the dead worker held "
              "processed by a live worker "
              f"(lease {args.lease_seconds} s)" if incident.leased else
              "the worker held no delivery when killed") +
             (f"; its {plural(len(incident.leased_messages), 'outbox message')} sent in {messages}"
              if incident.leased_messages else ""))
    line("outbox", sum(n for (_, status), n in counts.messages.items() if status == "sent"),
         f"messages sent, {dict(counts.messages)}; hand-offs recorded {counts.handed}, "
         f"handed twice {counts.handed_twice} (a channel is at-least-once)")
    line("connections", connections.peak, "to PostgreSQL at most, from the four processes "
         f"(serve --threads {args.threads}; sampled every 0.5 s)")
    line("drained", f"{drained_at - stream_end:.1f} s" if drained_in is not None else "NO",
         "from the last acknowledgement to an empty inbox and outbox")
    say("")
    problems = []
    if counts.lost:
        problems.append(f"{len(counts.lost)} lost")
    if doubled:
        problems.append(f"{doubled} doubled")
    if not_acked:
        problems.append(f"{not_acked} never acknowledged")
    if drained_in is None or counts.statuses.get("done", 0) != counts.stored:
        problems.append("not everything processed")
    if incident.error or (incident.leased and incident.recovered_in is None):
        problems.append("the kill and restart did not go through")
    say(f"result: FAILED: {', '.join(problems)}" if problems else "result: ok (0 lost, 0 doubled)")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("JALON_TEST_POSTGRES_URL") or DEFAULT_POSTGRES,
                        help="a PostgreSQL server where a scratch database may be created and dropped "
                             f"(default: JALON_TEST_POSTGRES_URL, else {DEFAULT_POSTGRES})")
    parser.add_argument("--count", type=int, default=3000, help="deliveries to send (default: 3000)")
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries per second (default: 50)")
    parser.add_argument("--down", type=float, default=5.0,
                        help="seconds between the kill and the restart (default: 5)")
    parser.add_argument("--lease-seconds", type=int, default=5, help="JALON_LEASE_SECONDS (default: 5)")
    parser.add_argument("--resend", type=float, default=0.05,
                        help="share of the acknowledged deliveries sent again (default: 0.05)")
    parser.add_argument("--senders", type=int, default=16, help="sending threads (default: 16)")
    parser.add_argument("--threads", type=int, default=8, help="jalon serve --threads (default: 8)")
    parser.add_argument("--grace", type=float, default=60.0,
                        help="seconds after the stream's last scheduled delivery during which retries go on")
    parser.add_argument("--drain-timeout", type=float, default=120.0,
                        help="seconds to wait for the inbox and outbox to drain (default: 120)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs (kept on failure)")
    args = parser.parse_args()
    if args.count < 30 or args.rate <= 0:
        parser.error("--count 30 at least, --rate above 0")

    def interrupted(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    secret_keys()
    name, url = scratch_database(args.postgres)
    status, workdir = 1, None
    try:
        workdir = Path(tempfile.mkdtemp(prefix="jalon-scale-"))
        status = run(args, url, workdir, lambda line: print(line, flush=True))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        status = 130
    finally:
        drop_database(args.postgres, name)
        if workdir is None:
            pass
        elif status == 0 and not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs: {workdir}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
