"""`jalon serve` as an operator starts it: a real gunicorn process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import JALON


def token(server, scope: str) -> str:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [JALON, "--database-url", server.database_url, "token", "create", "--scope", scope],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return result.stdout.strip()


def test_serve_migrates_then_answers_health_and_the_authenticated_api(serve):
    assert requests.get(f"{serve.url}/healthz", timeout=5).json()["status"] == "ok"
    admin = {"Authorization": f"Bearer {token(serve, 'admin')}"}
    created = requests.put(
        f"{serve.url}/api/v1/clients/acme", headers=admin, timeout=5,
        json={"name": "ACME SA", "payment_terms": {"kind": "net", "days": 30}},
    )
    assert created.status_code in (200, 201), created.text
    listed = requests.get(f"{serve.url}/api/v1/clients", headers=admin, timeout=5)
    assert [c["code"] for c in listed.json()["items"] if c["code"] == "acme"] == ["acme"]


def test_serve_refuses_the_api_without_a_token(serve):
    response = requests.get(f"{serve.url}/api/v1/invoices", timeout=5)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "unauthorized"


def test_serve_publishes_its_openapi_document(serve):
    document = requests.get(f"{serve.url}/api/v1/openapi.json", timeout=5).json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/invoices/{invoice_id}/issue" in document["paths"]


def _cpus_of_every_thread(pid: int) -> set[frozenset[int]]:
    return {frozenset(os.sched_getaffinity(int(task))) for task in os.listdir(f"/proc/{pid}/task")}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one usable CPU: nothing to bind")
def test_each_web_process_is_bound_to_one_cpu_with_its_threads(serve):
    workers = Path(f"/proc/{serve.process.pid}/task/{serve.process.pid}/children").read_text().split()
    assert len(workers) == 1
    # its request threads, worker, dispatcher and scheduler: one CPU, the same for all
    bound = _cpus_of_every_thread(int(workers[0]))
    assert len(bound) == 1 and len(next(iter(bound))) == 1
    # the arbiter only watches the workers: left where the system puts it
    assert _cpus_of_every_thread(serve.process.pid) == {frozenset(os.sched_getaffinity(0))}


BIND = """
import os, threading
from jalon.connector.web.server import bind_to_one_cpu
started = threading.Event(); stop = threading.Event()
earlier = threading.Thread(target=lambda: (started.set(), stop.wait(30)))
earlier.start(); started.wait(30)
cpu = bind_to_one_cpu({index})
later = threading.Thread(target=lambda: stop.wait(30))
later.start()
print(cpu, sorted({{min(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")}}),
      max(len(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")))
stop.set()
"""


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="one usable CPU: nothing to bind")
def test_binding_covers_threads_started_before_and_after_and_spreads_processes():
    allowed = sorted(os.sched_getaffinity(0))
    for index in (0, 1, len(allowed)):
        out = subprocess.run([sys.executable, "-c", BIND.format(index=index)], capture_output=True, text=True,
                             check=True, timeout=60).stdout.split(maxsplit=1)
        expected = allowed[index % len(allowed)]
        assert out == [str(expected), f"[{expected}] 1\n"]


def test_no_binding_without_a_choice_of_cpu():
    script = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
              "from jalon.connector.web.server import bind_to_one_cpu; print(bind_to_one_cpu(3))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "None"
