"""Intake benchmark: a production ``jalon serve`` answering signed webhooks.

    .venv/bin/python bench/intake.py                       # SQLite
    .venv/bin/python bench/intake.py --postgres URL        # and PostgreSQL (or JALON_TEST_POSTGRES_URL)

For each engine it starts ``jalon serve`` (gunicorn, the in-process worker,
dispatcher and scheduler, the fake source and recording channel of
``tests/reliability/fakesource.py`` through ``JALON_EXTRA_PLUGINS``), then,
from this second process over loopback, with persistent HTTP/1.1 connections:

1. **ceiling**: ``POST /bench/noop`` (``JALON_BENCH_NOOP=1``: the same server
   reads the same body and answers 202, no plugin, no database), closed loop;
2. **intake**: signed deliveries (distinct keys), closed loop: deliveries/s and
   p50/p99 acknowledgement latency, and the ratio to the ceiling; then how
   long the in-process worker takes to process the backlog;
3. **fixed rate**: 200 deliveries/s, latency measured from each request's
   scheduled time (no coordinated omission): p50/p99;
4. **end to end**: milestone completions at 50/s; for each, the time from its
   acknowledgement to its finance notification being handed to the channel
   (the recording channel writes the hand-off time): p50/p99.

It prints the server's peak memory (VmHWM of the gunicorn processes). It is a
script, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, make_url, select, text  # noqa: E402

from jalon.core import catalog  # noqa: E402
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from jalon.core.migrate import upgrade  # noqa: E402
from jalon.core.models import Delivery  # noqa: E402
from tests.reliability import fakesource  # noqa: E402
from tests.reliability.conftest import add_record_channel  # noqa: E402

JALON = str(Path(sys.executable).with_name("jalon"))
HOOK = f"/hooks/{fakesource.SOURCE}/{fakesource.INTEGRATION_KEY}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Server:
    def __init__(self, url: str, workdir: Path, threads: int):
        self.url, self.workdir, self.threads = url, workdir, threads
        self.port = free_port()
        self.record_file = workdir / "handoffs.tsv"
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
            "JALON_EXTRA_PLUGINS": "tests.reliability.fakesource:plugin",
            fakesource.RECORD_FILE_ENV: str(self.record_file),
            "JALON_BENCH_NOOP": "1",
        })
        self.log = (workdir / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [JALON, "--database-url", url, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--threads", str(threads), "--no-access-log"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"jalon serve exited: {(workdir / 'serve.log').read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("jalon serve did not start")

    def peak_rss_mib(self) -> tuple[float, float]:
        """(largest process, all gunicorn processes together), from VmHWM."""
        pids = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
            pids += [int(pid) for pid in children]
        except OSError:
            pass
        peaks = []
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
            except OSError:
                pass
        return (max(peaks, default=0.0), sum(peaks))

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.log.close()


class Client:
    """One persistent connection; ``post`` returns (status, seconds)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        for attempt in (1, 2):
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                response = self.conn.getresponse()
                response.read()
                return response.status
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def time_delivery(prefix: str, n: int) -> tuple[str, bytes, dict[str, str]]:
    key = f"{prefix}-{n}"
    body = fakesource.time_body(f"WL-{prefix}-{n}", 60 + n % 3600)
    return key, body, fakesource.headers_for(fakesource.SECRET, key, body)


def closed_loop(port: int, path_for, concurrency: int, seconds: float) -> tuple[int, list[float], int]:  # type: ignore[no-untyped-def]
    """As fast as ``concurrency`` clients go: (answered, latencies, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(10**9))
    stop_at = time.monotonic() + seconds

    def run() -> None:
        client, mine = Client(port), []
        while time.monotonic() < stop_at:
            with lock:
                n = next(counter)
            path, body, headers = path_for(n)
            started = time.perf_counter()
            try:
                status = client.post(path, body, headers)
            except OSError:
                status = 0
            mine.append(time.perf_counter() - started)
            if status not in (200, 202):
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    return int(len(latencies) / elapsed), latencies, errors[0]


def fixed_rate(port: int, make, rate: float, seconds: float, concurrency: int = 32,  # type: ignore[no-untyped-def]
               on_ack=None) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    """``rate`` requests/s on schedule; latency from each request's scheduled time."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(total))

    def run() -> None:
        client, mine = Client(port), []
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            path, body, headers = make(n)
            try:
                status = client.post(path, body, headers)
            except OSError:
                status = 0
            if on_ack is not None and status in (200, 202):
                on_ack(n, time.time())
            mine.append(time.perf_counter() - due)
            if status not in (200, 202):
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors[0]


def wait_processed(engine, timeout: float = 600) -> float:  # type: ignore[no-untyped-def]
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        with engine.connect() as conn:
            left = conn.execute(select(func.count()).select_from(Delivery)
                                .where(Delivery.status.in_(("pending", "processing")))).scalar_one()
        if not left:
            return time.monotonic() - began
        time.sleep(0.2)
    return float("nan")


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def bench(label: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    engine = make_engine(url)
    upgrade(engine)
    e2e_count = int(args.e2e_rate * args.seconds)
    with unit_of_work(make_sessionmaker(engine)) as session:
        catalog.apply_config(session, fakesource.world(e2e_count), actor="bench")
        add_record_channel(session)
    workdir = Path(tempfile.mkdtemp(prefix=f"jalon-bench-{label}-"))
    server = Server(url, workdir, args.threads)
    figures: dict[str, float] = {}
    try:
        noop = {"Content-Type": "application/json"}
        body = fakesource.time_body("WL-noop", 60)
        # warm-up (imports, pools, first queries)
        closed_loop(server.port, lambda n: (HOOK, *time_delivery("warm", n)[1:]),
                    4, 1.0)
        wait_processed(engine)

        rate_noop, lat_noop, err_noop = closed_loop(server.port, lambda n: ("/bench/noop", body, noop),
                                                    args.concurrency, args.seconds)
        run = uuid.uuid4().hex[:6]
        rate, lat, err = closed_loop(server.port, lambda n: (HOOK, *time_delivery(f"cl{run}", n)[1:]),
                                     args.concurrency, args.seconds)
        drain = wait_processed(engine)
        backlog = len(lat)
        figures.update(ceiling=rate_noop, intake=rate, ratio=rate / rate_noop if rate_noop else 0,
                       p50=percentile(lat, 50), p99=percentile(lat, 99))
        print(f"\n[{label}] {args.seconds:.0f} s per phase, {args.concurrency} concurrent clients, "
              f"{args.threads} server threads")
        print(f"  ceiling  /bench/noop      {rate_noop:7d} req/s   p50 {ms(percentile(lat_noop, 50))}  "
              f"p99 {ms(percentile(lat_noop, 99))}  errors {err_noop}")
        print(f"  intake   signed delivery  {rate:7d} del/s   p50 {ms(figures['p50'])}  "
              f"p99 {ms(figures['p99'])}  errors {err}")
        print(f"  ratio    intake / ceiling {figures['ratio']:.2f}")
        print(f"  worker   {backlog} deliveries processed in {drain:.1f} s after the burst "
              f"({backlog / max(drain, 1e-9):.0f}/s while idle at the door)")

        fixed, err_fixed = fixed_rate(server.port, lambda n: (HOOK, *time_delivery(f"fx{run}", n)[1:]),
                                      args.rate, args.seconds)
        figures.update(fixed_p50=percentile(fixed, 50), fixed_p99=percentile(fixed, 99))
        print(f"  at {args.rate:.0f}/s  p50 {ms(figures['fixed_p50'])}  p99 {ms(figures['fixed_p99'])}  "
              f"errors {err_fixed}")
        wait_processed(engine)

        acks: dict[str, float] = {}
        lock = threading.Lock()

        def made(n: int) -> tuple[str, bytes, dict[str, str]]:
            key, task = f"e2e{run}-{n}", f"T-{n + 1}"
            body = fakesource.done_body(task)
            return HOOK, body, fakesource.headers_for(fakesource.SECRET, key, body)

        def acked(n: int, at: float) -> None:
            with lock:
                acks[f"T-{n + 1}"] = at

        fixed_rate(server.port, made, args.e2e_rate, args.seconds, concurrency=8, on_ack=acked)
        handed: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(handed) < len(acks):
            for key, at, payload in fakesource.read_records(str(server.record_file)):
                if key.startswith("comment:"):
                    continue
                found = re.search(r"pm\.example/(T-\d+)", json.dumps(payload))
                if found:
                    handed.setdefault(found.group(1), at)
            time.sleep(0.2)
        e2e = [handed[task] - at for task, at in acks.items() if task in handed]
        figures.update(e2e_p50=percentile(e2e, 50), e2e_p99=percentile(e2e, 99))
        print(f"  e2e at {args.e2e_rate:.0f}/s: ack -> finance notification handed to the channel: "
              f"p50 {ms(figures['e2e_p50'])}  p99 {ms(figures['e2e_p99'])}  ({len(e2e)}/{len(acks)} seen)")
        largest, together = server.peak_rss_mib()
        figures.update(rss=together)
        print(f"  memory   peak RSS {largest:.0f} MiB (largest process), {together:.0f} MiB (arbiter + workers)")
    finally:
        server.stop()
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("JALON_TEST_POSTGRES_URL"),
                        help="a PostgreSQL URL whose server may get a scratch database (default: "
                             "JALON_TEST_POSTGRES_URL); without it, SQLite only")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=16, help="clients in the closed-loop phases")
    parser.add_argument("--threads", type=int, default=16, help="server threads (jalon serve --threads)")
    parser.add_argument("--rate", type=float, default=200.0, help="the fixed-rate phase, deliveries/s")
    parser.add_argument("--e2e-rate", type=float, default=50.0, help="the end-to-end phase, milestones/s")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    print(f"jalon intake benchmark: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")

    scratch = Path(tempfile.mkdtemp(prefix="jalon-bench-"))
    try:
        results = {"sqlite": bench("sqlite", f"sqlite:///{scratch / 'bench.db'}", args)}
        if args.postgres and not args.sqlite_only:
            name = f"jalon_bench_{os.getpid()}"
            admin = make_engine(args.postgres, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
                results["postgresql"] = bench("postgresql", url, args)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    sqlite = results["sqlite"]
    print("\ntargets (2 cores, SQLite):")
    print(f"  >= 1000 deliveries/s          {sqlite['intake']:.0f}   {'ok' if sqlite['intake'] >= 1000 else 'MISSED'}")
    print(f"  >= half the bare ceiling      {sqlite['ratio']:.2f}  {'ok' if sqlite['ratio'] >= 0.5 else 'MISSED'}")
    print(f"  p99 < 50 ms at 200/s          {ms(sqlite['fixed_p99'])}  "
          f"{'ok' if sqlite['fixed_p99'] < 0.05 else 'MISSED'}")
    print(f"  e2e p99 < 1 s at 50/s         {ms(sqlite['e2e_p99'])}  {'ok' if sqlite['e2e_p99'] < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
