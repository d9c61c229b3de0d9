"""Intake benchmark: a production ``jalon serve`` answering signed webhooks.

    .venv/bin/python bench/intake.py                       # SQLite
    .venv/bin/python bench/intake.py --postgres URL        # and PostgreSQL (or JALON_TEST_POSTGRES_URL)

For each engine it starts ``jalon serve`` (gunicorn, the in-process worker,
dispatcher and scheduler, the fake source and recording channel of
``tests/reliability/fakesource.py`` through ``JALON_EXTRA_PLUGINS``), then,
from another process over loopback, with persistent HTTP/1.1 connections:

1. **ceilings** (``JALON_BENCH_NOOP=1``: the same server reads the same body
   and answers 202, no plugin, no database), closed loop:
   ``POST /bench/noop-wsgi`` is answered in front of Flask, where intake's
   endpoint answers ``/hooks/...``: the like-for-like ceiling, the one the
   ratio target is read against; ``POST /bench/noop`` is a Flask view (what
   any endpoint of the admin API costs), printed for comparison;
2. **intake**: signed deliveries (distinct keys), closed loop: deliveries/s and
   p50/p99 acknowledgement latency, and the ratios to the ceilings; then how
   long the in-process worker takes to process what is left of the backlog.
   The like-for-like ceiling and intake are measured in ``--rounds`` (3)
   pairs, back to back, the backlog processed between rounds (so the worker
   never runs during a ceiling): this machine's speed drifts by a third from
   one run to the next, a pair shares the drift. The medians are reported;
3. **fixed rate**: 200 deliveries/s, latency measured from each request's
   scheduled time (no coordinated omission): p50/p99;
4. **end to end**: milestone completions at 50/s; for each, the time from its
   acknowledgement to its finance notification being handed to the channel
   (the recording channel writes the hand-off time): p50/p99.

The closed-loop phases (1, 2) need a load generator that costs the machine
little, or they measure the client as much as the server (the Python client
costs about a third of a core at ~1,500 requests/s here, wrk a tenth). They
use **wrk** when it is on the PATH (``apt-get install wrk``; ``make bench``
installs it): the signed requests are
generated here beforehand (distinct ``X-Fake-Delivery`` keys and bodies, one a
line in a file) and ``bench/intake.lua`` loads them, each wrk thread its own
slice. Without wrk they fall back to the Python client (threads, http.client),
and say so; ``--generator both`` runs them with each, to compare. The
fixed-rate phases (3, 4) always use the Python scheduler: at those rates it
keeps up, and it measures from each request's scheduled time.

It prints the CPU the server and the load generator used in each closed-loop
phase (and so the server's CPU time per request), and the server's peak
memory (VmHWM of the gunicorn processes). ``--pg-workers N`` serves the
PostgreSQL run with N gunicorn processes (SQLite is always served by one). It
is a script, not a test: figures depend on the machine, and on what else runs
on it (the "others" figure: the closed-loop results are understated when it
is not near zero).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, make_url, select, text  # noqa: E402

from jalon.core import catalog  # noqa: E402
from jalon.core.db import make_engine, make_sessionmaker, unit_of_work  # noqa: E402
from jalon.core.migrate import upgrade  # noqa: E402
from jalon.core.models import Delivery, OutboxMessage  # noqa: E402
from tests.reliability import fakesource  # noqa: E402
from tests.reliability.conftest import add_record_channel  # noqa: E402

JALON = str(Path(sys.executable).with_name("jalon"))
HOOK = f"/hooks/{fakesource.SOURCE}/{fakesource.INTEGRATION_KEY}"
WRK_SCRIPT = Path(__file__).resolve().with_name("intake.lua")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


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
    def __init__(self, url: str, workdir: Path, threads: int, workers: int = 1):
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
             "--threads", str(threads), "--workers", str(workers), "--no-access-log"],
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

    def pids(self) -> list[int]:
        pids = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
            pids += [int(pid) for pid in children]
        except OSError:
            pass
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU time of the gunicorn processes so far."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return total / CLOCK_TICKS

    def peak_rss_mib(self) -> tuple[float, float]:
        """(largest process, all gunicorn processes together), from VmHWM."""
        peaks = []
        for pid in self.pids():
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


@dataclass
class Burst:
    """What one closed-loop run measured."""

    generator: str
    rate: float  # 2xx answers/s
    p50: float  # seconds, 2xx answers
    p99: float
    answered: int  # answers of any status
    errors: int  # non-2xx answers (wrk: status >= 400)
    failed: int  # connect/read/write errors and timeouts
    repeated: int  # requests that reused a key (duplicates: cheaper, not deliveries)
    client_cpu: float  # cores the load generator used on average
    server_cpu: float  # cores the gunicorn processes used on average
    other_cpu: float  # cores every other process used (PostgreSQL's server included)


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far (all cores, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def closed_loop(server: Server, path_for, concurrency: int, seconds: float) -> Burst:  # type: ignore[no-untyped-def]
    """As fast as ``concurrency`` Python clients (threads) go."""
    latencies: list[float] = []
    errors = [0, 0]  # non-2xx, transport
    lock = threading.Lock()
    counter = iter(range(10**9))
    stop_at = time.monotonic() + seconds

    def run() -> None:
        client, mine, bad, broken = Client(server.port), [], 0, 0
        while time.monotonic() < stop_at:
            with lock:
                n = next(counter)
            path, body, headers = path_for(n)
            started = time.perf_counter()
            try:
                status = client.post(path, body, headers)
            except OSError:
                status = 0
            if status in (200, 202):
                mine.append(time.perf_counter() - started)
            elif status:
                bad += 1
            else:
                broken += 1
        with lock:
            latencies.extend(mine)
            errors[0] += bad
            errors[1] += broken

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    cpu_client, cpu_server, busy = time.process_time(), server.cpu_seconds(), machine_busy_seconds()
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    client_cpu = (time.process_time() - cpu_client) / elapsed
    server_cpu = (server.cpu_seconds() - cpu_server) / elapsed
    return Burst(generator="python", rate=len(latencies) / elapsed, p50=percentile(latencies, 50),
                 p99=percentile(latencies, 99), answered=len(latencies) + errors[0], errors=errors[0],
                 failed=errors[1], repeated=0, client_cpu=client_cpu, server_cpu=server_cpu,
                 other_cpu=(machine_busy_seconds() - busy) / elapsed - client_cpu - server_cpu)


def write_requests(path: Path, make, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` signed requests, one a line (key, signature, body), for bench/intake.lua."""
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            key, body, headers = make(n)
            text_body = body.decode()
            if "\t" in key + text_body or "\n" in key + text_body:
                raise ValueError(f"request {n} does not fit on one line")
            out.write(f"{key}\t{headers['X-Fake-Signature']}\t{text_body}\n")


def wrk_closed_loop(server: Server, wrk: str, path: str, requests_file: Path, args: argparse.Namespace) -> Burst:
    """The same closed loop, driven by wrk (``--wrk-threads`` threads, ``--concurrency``
    connections) sending the requests of ``requests_file`` (see bench/intake.lua)."""
    threads = min(args.wrk_threads, args.concurrency)
    command = [wrk, f"-t{threads}", f"-c{args.concurrency}", f"-d{args.seconds:g}s", "--latency",
               "--timeout", "10s", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{server.port}{path}",
               "--", str(requests_file), str(threads)]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_server, busy = server.cpu_seconds(), machine_busy_seconds()
    began = time.monotonic()
    # run() kills wrk if it overstays or if anything (Ctrl-C included) interrupts the wait
    done = subprocess.run(command, capture_output=True, text=True, timeout=args.seconds + 60)
    elapsed = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime) / elapsed
    server_cpu = (server.cpu_seconds() - cpu_server) / elapsed
    other_cpu = (machine_busy_seconds() - busy) / elapsed - client_cpu - server_cpu
    found = re.search(r"^WRK_JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode or not found:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    out = json.loads(found.group(1))
    duration = out["duration_us"] / 1e6
    failed = out["connect"] + out["read"] + out["write"] + out["timeout"]
    return Burst(generator="wrk", rate=(out["requests"] - out["status"]) / duration,
                 p50=out["p50_us"] / 1e6, p99=out["p99_us"] / 1e6, answered=out["requests"],
                 errors=out["status"], failed=failed, repeated=out["repeated"],
                 client_cpu=client_cpu, server_cpu=server_cpu, other_cpu=other_cpu)


def count_pending(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Delivery)
                            .where(Delivery.status.in_(("pending", "processing")))).scalar_one()


def count_stored(engine, prefix: str) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(Delivery)
                            .where(Delivery.idempotency_key.like(f"{prefix}%"))).scalar_one()


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


def wait_sent(engine, timeout: float = 120) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """(outbox messages waiting at first, seconds until none waits)."""
    began, first = time.monotonic(), None
    while time.monotonic() - began < timeout:
        with engine.connect() as conn:
            left = conn.execute(select(func.count()).select_from(OutboxMessage)
                                .where(OutboxMessage.status.in_(("pending", "sending")))).scalar_one()
        first = left if first is None else first
        if not left:
            return first, time.monotonic() - began
        time.sleep(0.2)
    return first or 0, float("nan")


def ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def cpu_per_request(burst: Burst) -> str:
    return f"{burst.server_cpu / burst.rate * 1000:.2f} ms" if burst.rate else "-"


def burst_line(name: str, unit: str, burst: Burst, keys: bool = True) -> str:
    extra = f"  repeated keys (duplicates) {burst.repeated}" if keys else ""
    return (f"  {name} {burst.rate:7.0f} {unit}  p50 {ms(burst.p50)}  p99 {ms(burst.p99)}  "
            f"non-2xx {burst.errors}  failed {burst.failed}{extra}\n"
            f"{'':11}cores used: server {burst.server_cpu:.2f} ({cpu_per_request(burst)} CPU per request), "
            f"load generator {burst.client_cpu:.2f}, others {max(burst.other_cpu, 0):.2f}")


def bench(label: str, url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(engine)
    e2e_count = int(args.e2e_rate * args.seconds)
    with unit_of_work(make_sessionmaker(engine)) as session:
        catalog.apply_config(session, fakesource.world(e2e_count), actor="bench")
        add_record_channel(session)
    workdir = Path(tempfile.mkdtemp(prefix=f"jalon-bench-{label}-"))
    workers = args.pg_workers if label == "postgresql" else 1
    server = Server(url, workdir, args.threads, workers)
    figures: dict[str, Any] = {}
    try:
        noop = {"Content-Type": "application/json"}
        body = fakesource.time_body("WL-noop", 60)
        run = uuid.uuid4().hex[:6]
        # warm-up (imports, pools, first queries)
        closed_loop(server, lambda n: (HOOK, *time_delivery(f"warm{run}", n)[1:]), 4, 1.0)
        wait_processed(engine)
        print(f"\n[{label}] {args.seconds:g} s per phase, {args.concurrency} concurrent connections, "
              f"{workers} server process{'es' if workers > 1 else ''} of {args.threads} threads")

        for generator in args.generators:
            if generator == "wrk":
                print(f"  closed loop: wrk ({args.wrk}), {min(args.wrk_threads, args.concurrency)} threads")
                noop_file = workdir / "noop.requests"
                write_requests(noop_file, lambda n: time_delivery(f"noop{run}", n), 1000)
            else:
                print("  closed loop: the Python client (threads, http.client; it shares the server's cores)")

            def bare(path: str, generator: str = generator) -> Burst:
                if generator == "wrk":
                    return wrk_closed_loop(server, args.wrk, path, noop_file, args)
                return closed_loop(server, lambda n: (path, body, noop), args.concurrency, args.seconds)

            def deliveries(prefix: str, ceiling_rate: float, generator: str = generator) -> Burst:
                if generator != "wrk":
                    return closed_loop(server, lambda n: (HOOK, *time_delivery(prefix, n)[1:]), args.concurrency,
                                       args.seconds)
                # intake cannot outrun the same server doing none of the work: enough distinct
                # deliveries for the ceiling's rate, half as many again
                count = max(1000, math.ceil(ceiling_rate * args.seconds * 1.5))
                hooks_file = workdir / "intake.requests"
                write_requests(hooks_file, lambda n: time_delivery(prefix, n), count)
                try:
                    return wrk_closed_loop(server, args.wrk, HOOK, hooks_file, args)
                finally:
                    hooks_file.unlink()

            # rounds of (ceiling, intake): the machine's speed drifts from one run to the next,
            # a pair measured back to back shares the drift; the backlog of each round is
            # processed before the next ceiling, so that the worker never works during one
            rounds = []
            for number in range(args.rounds):
                ceiling = bare("/bench/noop-wsgi")
                prefix = f"{generator[:2]}{run}r{number}"
                intake = deliveries(prefix, ceiling.rate)
                left = count_pending(engine)
                drain = wait_processed(engine)
                stored = count_stored(engine, f"{prefix}-")
                rounds.append((intake.rate / ceiling.rate if ceiling.rate else 0.0, ceiling, intake, left, drain,
                               stored))
                print(f"  round {number + 1}  ceiling {ceiling.rate:5.0f} req/s  intake {intake.rate:5.0f} del/s  "
                      f"ratio {rounds[-1][0]:.2f}")
            flask_ceiling = bare("/bench/noop")
            # the round of the median ratio is shown in full; the rates are the medians of the rounds
            rounds.sort(key=lambda item: item[0])
            ratio, ceiling, intake, left, drain, stored = rounds[len(rounds) // 2]
            intake_rate = sorted(item[2].rate for item in rounds)[len(rounds) // 2]
            flask_ratio = intake_rate / flask_ceiling.rate if flask_ceiling.rate else 0.0
            print(f"  the round of the median ratio ({len(rounds)} rounds):")
            print(burst_line("ceiling  /bench/noop-wsgi", "req/s", ceiling, keys=False))
            print(burst_line("intake   signed delivery ", "del/s", intake))
            print(f"  ratio    intake / ceiling {ratio:.2f} (like for like: answered in front of Flask, as intake "
                  f"is; the median of the rounds)")
            print(f"  stored   {stored} new deliveries for {intake.answered} answers "
                  f"(a few more when requests in flight at the stop were stored)")
            print(f"  worker   {left} still pending at the end of the burst, processed in {drain:.1f} s "
                  f"({left / max(drain, 1e-9):.0f}/s with the door idle)")
            print(f"  intake   {intake_rate:.0f} del/s, the median of the rounds")
            print(burst_line("ceiling  /bench/noop     ", "req/s", flask_ceiling, keys=False))
            print(f"  ratio    intake (median) / Flask view ceiling {flask_ratio:.2f}")
            others = max(ceiling.other_cpu, flask_ceiling.other_cpu, intake.other_cpu)
            if others > 0.25 and label == "sqlite":
                print(f"  WARNING  other processes used up to {others:.2f} cores meanwhile: "
                      f"the figures above are understated")
            if generator == args.generators[-1]:  # the figures the targets are read from
                figures.update(generator=generator, ceiling=ceiling.rate, flask_ceiling=flask_ceiling.rate,
                               intake=intake_rate, ratio=ratio, flask_ratio=flask_ratio, p50=intake.p50,
                               p99=intake.p99)

        fixed, err_fixed = fixed_rate(server.port, lambda n: (HOOK, *time_delivery(f"fx{run}", n)[1:]),
                                      args.rate, args.seconds)
        figures.update(fixed_p50=percentile(fixed, 50), fixed_p99=percentile(fixed, 99))
        print(f"  at {args.rate:.0f}/s  p50 {ms(figures['fixed_p50'])}  p99 {ms(figures['fixed_p99'])}  "
              f"errors {err_fixed}   (Python scheduler, from each request's scheduled time)")
        wait_processed(engine)

        # the end-to-end phase starts with an empty outbox: its notifications queue behind nothing
        waiting, sent_in = wait_sent(engine)
        print(f"  outbox   {waiting} messages waiting after the phases above, sent in {sent_in:.1f} s")
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


def _secret_keys() -> None:
    """Secrets are sealed at rest with a key from the environment: the run's
    own key unless one is given, for the servers it starts and the world it seeds."""
    from jalon.connector.settings import SECRET_KEYS_ENV, secret_keys
    from jalon.core import secrets

    if not secret_keys():
        os.environ[SECRET_KEYS_ENV] = secrets.generate_key()
    secrets.configure_keys(secret_keys())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("JALON_TEST_POSTGRES_URL"),
                        help="a PostgreSQL URL whose server may get a scratch database (default: "
                             "JALON_TEST_POSTGRES_URL); without it, SQLite only")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="connections (clients) in the closed-loop phases")
    parser.add_argument("--generator", choices=("auto", "wrk", "python", "both"), default="auto",
                        help="load generator of the closed-loop phases: wrk when installed (auto), "
                             "or the Python client, or both one after the other (default: auto)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (wrk -t)")
    parser.add_argument("--threads", type=int, default=16, help="server threads (jalon serve --threads)")
    parser.add_argument("--pg-workers", type=int, default=1,
                        help="server processes of the PostgreSQL run (jalon serve --workers; SQLite: always 1)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="closed-loop rounds of (ceiling, intake); the medians are reported")
    parser.add_argument("--rate", type=float, default=200.0, help="the fixed-rate phase, deliveries/s")
    parser.add_argument("--e2e-rate", type=float, default=50.0, help="the end-to-end phase, milestones/s")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    _secret_keys()
    args.wrk = shutil.which("wrk")
    if args.generator in ("wrk", "both") and not args.wrk:
        parser.error("wrk is not installed (apt-get install wrk, or make bench)")
    # the last one gives the figures the targets are read from
    args.generators = {"auto": ["wrk" if args.wrk else "python"], "wrk": ["wrk"], "python": ["python"],
                       "both": ["python", "wrk"]}[args.generator]
    print(f"jalon intake benchmark: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}")
    if args.wrk:
        version = subprocess.run([args.wrk, "-v"], capture_output=True, text=True).stdout.splitlines()[:1]
        print(f"closed-loop load generator: {', '.join(args.generators)}  ({' '.join(version)})")
    else:
        print("closed-loop load generator: python (wrk is not installed: apt-get install wrk, or make bench; "
              "the Python client takes CPU the server would otherwise have, so the closed-loop "
              "figures understate the server)")

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
    caveat = "" if sqlite["generator"] == "wrk" else ", understated: the Python client shares the cores"
    print(f"\ntargets (2 cores, SQLite; closed loop measured with {sqlite['generator']}{caveat}):")
    print(f"  >= 1000 deliveries/s          {sqlite['intake']:.0f}   {'ok' if sqlite['intake'] >= 1000 else 'MISSED'}")
    print(f"  >= half the bare ceiling      {sqlite['ratio']:.2f}  {'ok' if sqlite['ratio'] >= 0.5 else 'MISSED'}"
          f"   (the Flask view's ceiling: {sqlite['flask_ratio']:.2f})")
    print(f"  p99 < 50 ms at 200/s          {ms(sqlite['fixed_p99'])}  "
          f"{'ok' if sqlite['fixed_p99'] < 0.05 else 'MISSED'}")
    print(f"  e2e p99 < 1 s at 50/s         {ms(sqlite['e2e_p99'])}  {'ok' if sqlite['e2e_p99'] < 1 else 'MISSED'}")


if __name__ == "__main__":
    main()
