"""Bitrix24 poll benchmark: the elapsed time of 1,000 mapped tasks, asked
within the portal's limits.

    .venv/bin/python bench/bitrix24_poll.py                 # 1,000 tasks
    .venv/bin/python bench/bitrix24_poll.py --tasks 200

Bitrix24 sends no event for elapsed time: the ``reconcile.bitrix24`` job polls
it. This runs that poll, the plugin's ``reconcile.changes(...)`` called as the
job calls it (an ``IntegrationView``, and the REST client
:func:`jalon.connector.net.http.client_for` builds for it), against the local
stand-in of a portal (:mod:`jalon.connector.demo.bitrix24_standin`) that
enforces Bitrix24's leaky bucket: 50 requests before it blocks, draining 2 a
second, past it ``503 QUERY_LIMIT_EXCEEDED`` (optionally, the per-method
time limit: ``429 OPERATION_TIME_LIMIT``). The portal holds ``--tasks``
tasks spread over ``--groups`` mapped workgroups (and an unmapped one, which
must not be asked about), changed lately, with 0, 1 or 3 elapsed items each and
one with ``--big`` items (more than one page of 50). Just before the run,
another app of the portal spends ``--neighbour`` requests of its bucket (the
bucket is the portal's, shared by every app and webhook), so that the poll
meets a bucket already partly full, as it will in production, and gets 503s.

It prints the API calls the poll made, the 503s (and 429s) it received, and
whether any was left unhandled: the result must be complete, every elapsed
item of the mapped groups found with its seconds and no other; the seconds,
the elapsed items per second, the peak memory (``resource.getrusage``); the
ceiling measured in the same run: the least time those calls can take at 2 a
second after a burst of 50 from a bucket the neighbour left at its level; and
whether the targets hold: 1,000 tasks in under 5 minutes, and one run every
15 minutes sustainable (the run's calls fit in 15 minutes at 2 a second). A
run that has not finished after ``--deadline`` seconds (330) is stopped and
reported failed. It is a script, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests
from jalon.connector.demo import bitrix24_standin as standin
from jalon.connector.net.http import LookupCache, client_for
from jalon.connector.plugin.types import IntegrationView

TARGET_TASKS = 1000
TARGET_SECONDS = 300.0  # 1,000 tasks' elapsed time in under 5 minutes
PERIOD_SECONDS = 15 * 60  # one run every 15 minutes
UNMAPPED_GROUP = "99"


def build_portal(portal: standin.Bitrix24Portal, tasks: int, groups: list[str], big: int,
                 now: datetime) -> None:
    """``tasks`` tasks round-robin over ``groups``, all changed in the last hours, with 0, 1 or 3 elapsed
    items (and ``big`` on the first); a few tasks of an unmapped group, with time of their own."""
    for number in range(1, tasks + 1):
        task_id = str(10000 + number)
        changed = now - timedelta(minutes=number % 600)
        portal.add_task(task_id, f"Tâche {number}", group_id=groups[number % len(groups)], when=changed,
                        responsible=standin.BOB["ID"])
        count = big if number == 1 else (0, 1, 3)[number % 3]
        for index in range(count):
            start = now - timedelta(days=2, minutes=15 * index + number % 90)
            portal.log_time(task_id, 900 + 60 * ((number + index) % 30), start=start,
                            created=now - timedelta(hours=1 + index % 20), comment=f"travail {index}")
    for number in range(1, 11):
        task_id = str(90000 + number)
        portal.add_task(task_id, f"Hors contrat {number}", group_id=UNMAPPED_GROUP, when=now)
        portal.log_time(task_id, 1800, start=now - timedelta(hours=3))


def fill(portal: standin.Bitrix24Portal, requests_count: int) -> None:
    """Another app of the portal: ``requests_count`` requests at once, in its bucket."""
    with requests.Session() as http:
        for _ in range(requests_count):
            http.post(f"{portal.webhook_url}profile.json", timeout=10)


def item_id(ref: str) -> str:
    """An elapsed item's id in a worklog reference (``1234``, or a prefixed form)."""
    found = re.search(r"(\d+)$", str(ref))
    return found.group(1) if found else str(ref)


def found_time(events: list[Any]) -> dict[str, int]:
    """{elapsed item id: seconds} of the time events the poll answered."""
    found: dict[str, int] = {}
    for event in events:
        if hasattr(event, "worklog_ref") and hasattr(event, "seconds"):
            found[item_id(event.worklog_ref)] = int(event.seconds)
    return found


def minimum_seconds(calls: int, level: float, capacity: int, drain: float) -> float:
    """The least time ``calls`` requests take through a leaky bucket at ``level`` (its capacity and
    drain): what fits at once goes at once, the rest at the drain rate."""
    at_once = max(0, int(capacity - level))
    return max(0, calls - at_once) / drain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=TARGET_TASKS, help="mapped tasks to poll (1000)")
    parser.add_argument("--groups", type=int, default=4, help="mapped workgroups they are spread over (4)")
    parser.add_argument("--big", type=int, default=120, help="elapsed items of the biggest task (120: 3 pages)")
    parser.add_argument("--neighbour", type=int, default=40,
                        help="requests another app of the portal makes just before the run (40 of the 50)")
    parser.add_argument("--operating-limit", type=float, default=None,
                        help="the per-method time limit, seconds over 10 minutes (off by default)")
    parser.add_argument("--method-seconds", type=float, default=0.05,
                        help="the execution time each call costs against --operating-limit (0.05)")
    parser.add_argument("--deadline", type=float, default=330.0, help="stop a run still going after this (330 s)")
    args = parser.parse_args()

    from jalon.plugins.bitrix24 import reconcile  # the plugin, as the job calls it

    groups = [str(12 + 2 * n) for n in range(args.groups)]
    now = datetime.now(UTC)
    print(f"bitrix24 poll bench: {args.tasks} tasks in {len(groups)} mapped groups ({', '.join(groups)}), "
          f"one with {args.big} elapsed items; the portal's bucket: {standin.BUCKET_CAPACITY} requests, draining "
          f"{standin.BUCKET_DRAIN:g}/s" + (f"; method time limit {args.operating_limit:g} s per 10 min"
                                            if args.operating_limit else ""))
    with standin.bitrix24_portal(seed=False, operating_limit=args.operating_limit,
                                 default_method_seconds=args.method_seconds) as portal:
        portal.limits = False  # the set-up is not measured
        build_portal(portal, args.tasks, groups, args.big, now)
        expected = standin.expected_time(portal, set(groups))
        portal.limits = True
        fill(portal, args.neighbour)
        neighbour_requests = portal.http_requests()
        level = portal.level
        print(f"the portal: {len(portal.tasks)} tasks, {len(portal.elapsed)} elapsed items "
              f"({len(expected)} in the mapped groups); another app just made {args.neighbour} requests "
              f"(bucket at {level:.0f}/{standin.BUCKET_CAPACITY})")

        view = IntegrationView(key="bitrix24-bench", source="bitrix24", name="Bitrix24 bench", base_url=portal.origin,
                               settings={"domain": standin.DOMAIN, "allow_private_network": True},
                               secrets=(standin.APP_TOKEN,), credentials={"webhook_url": portal.webhook_url})
        http = client_for(view, timeout=30.0, cache=LookupCache())
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["events"] = list(reconcile.changes(view, [f"group:{g}" for g in groups],
                                                           now - timedelta(hours=24, minutes=15), now, http))
            except BaseException as error:  # noqa: BLE001 - reported below
                outcome["error"] = error

        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        worker = threading.Thread(target=run, name="bench-poll", daemon=True)
        worker.start()
        worker.join(args.deadline)
        elapsed = time.perf_counter() - started
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        calls = portal.http_requests() - neighbour_requests
        rejected_503, rejected_429 = portal.rejected[503], portal.rejected[429]
        batched = len(portal.calls(batched=True))
        methods = sorted({c.method for c in portal.calls()[neighbour_requests:] if not c.batched})
        unmapped = [c for c in portal.calls() if isinstance(c.params, dict) and UNMAPPED_GROUP in str(
            (c.params.get("filter") or {}).get("GROUP_ID", ""))]
        peak_level = portal.peak_level
    http.close()

    if worker.is_alive():
        print(f"the poll had not finished after {args.deadline:.0f} s ({calls} calls so far): stopped")
        print(f"target (1,000 tasks in < {TARGET_SECONDS:.0f} s): FAILS")
        return 1
    if "error" in outcome:
        print(f"the poll failed after {elapsed:.1f} s and {calls} calls: {outcome['error']!r}")
        return 1
    events = outcome["events"]
    found = found_time(events)
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(i for i in set(found) & set(expected) if found[i] != expected[i])
    complete = not (missing or extra or wrong)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ceiling = minimum_seconds(calls, level, standin.BUCKET_CAPACITY, standin.BUCKET_DRAIN)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    kinds: dict[str, int] = {}
    for event in events:
        kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1

    print(f"API calls made:        {calls} ({', '.join(methods)}; {batched} sub-queries in batches), "
          f"the bucket's peak {peak_level:.0f}/{standin.BUCKET_CAPACITY}")
    print(f"refused by the portal: {rejected_503} x 503 QUERY_LIMIT_EXCEEDED, {rejected_429} x 429 "
          "OPERATION_TIME_LIMIT; " + ("none left unhandled: the result is complete" if complete else
                                      "the result is INCOMPLETE"))
    print(f"events:                {len(events)} ({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))})")
    print(f"elapsed items:         {len(found)} found, {len(expected)} in the portal's mapped groups"
          + (f"; missing {len(missing)}, not in them {len(extra)}, wrong seconds {len(wrong)}" if not complete else
             ", each with its seconds")
          + (f"; the unmapped group was asked about {len(unmapped)} time(s)" if unmapped else ""))
    print(f"seconds:               {elapsed:.1f} s ({cpu:.1f} s CPU)")
    print(f"throughput:            {len(found) / elapsed:.0f} elapsed items/s, {args.tasks / elapsed:.0f} tasks/s")
    print(f"ceiling (same run):    {ceiling:.1f} s at least for {calls} calls at {standin.BUCKET_DRAIN:g}/s after a "
          f"burst from a bucket at {level:.0f}/{standin.BUCKET_CAPACITY}; measured {elapsed / ceiling:.2f}x it"
          if ceiling > 0 else f"ceiling (same run):    0 s: {calls} calls fit in the bucket's burst")
    print(f"peak memory:           {peak_mb:.0f} MB (this process: the stand-in portal and the poll)")
    scaled = elapsed * TARGET_TASKS / args.tasks
    holds = complete and scaled < TARGET_SECONDS
    print(f"target (1,000 tasks in < {TARGET_SECONDS:.0f} s): {'holds' if holds else 'FAILS'} "
          + (f"({elapsed:.1f} s)" if args.tasks == TARGET_TASKS else f"({scaled:.1f} s scaled from {args.tasks} tasks)"))
    budget = int(PERIOD_SECONDS * standin.BUCKET_DRAIN)
    scaled_calls = calls * TARGET_TASKS / args.tasks
    sustainable = scaled_calls <= budget
    print(f"one run per 15 min:    {'sustainable' if sustainable else 'NOT sustainable'}: {scaled_calls:.0f} calls "
          f"for 1,000 tasks of the {budget} the portal drains in 15 min ({100 * scaled_calls / budget:.1f} %)")
    return 0 if holds and sustainable else 1


if __name__ == "__main__":
    sys.exit(main())
