"""The background loops: worker, dispatcher and scheduler, in daemon threads.

``jalon serve`` starts one set in each web process (the embedded default),
``jalon worker`` starts one set alone. A loop wakes at once when there is work
(intake sets ``runtime.wake_worker`` when it stores a delivery, the worker sets
``runtime.wake_dispatcher`` when it queued messages) and otherwise polls every
``settings.worker_idle_seconds``, which also picks up retries whose backoff
ended and leases that expired. An exception in one pass is logged and the loop
goes on: a bad row or a database hiccup never stops the relay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .runtime import Runtime
from .scheduler import Scheduler, default_owner

log = logging.getLogger("jalon.connector.runners")

# after a pass that raised, wait this long at least before the next one (no hot loop on a dead database)
ERROR_PAUSE_SECONDS = 1.0


class Loop(threading.Thread):
    """Calls ``step()`` (returns how much it did) until stopped: again at once
    while it finds work, else after ``wake`` is set or ``idle`` seconds."""

    def __init__(self, name: str, step: Callable[[], int], *, wake: threading.Event, idle: float,
                 stopping: threading.Event, after: Callable[[int], None] | None = None):
        super().__init__(name=name, daemon=True)
        self.step = step
        self.wake = wake
        self.idle = idle
        self.stopping = stopping
        self.after = after
        self.passes = 0
        self.errors = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            # cleared before the pass: a wake-up during the pass is not lost
            self.wake.clear()
            try:
                done = self.step()
                self.passes += 1
                if done and self.after is not None:
                    self.after(done)
            except Exception:
                self.errors += 1
                log.exception("%s: pass failed, going on", self.name)
                self.stopping.wait(max(self.idle, ERROR_PAUSE_SECONDS))
                continue
            if not done:
                self.wake.wait(self.idle)


def _worker_step(runtime: Runtime, owner: str) -> Callable[[], int]:
    """One worker pass; under a burst at the door, a short pause after it.

    The worker shares the process (and Python's one running thread) with
    intake. When deliveries arrive faster than ``worker_yield_above`` per
    second, the worker pauses between batches (as long as the batch took, at
    most ``worker_yield_seconds``) so that acknowledging comes first; what is
    stored is processed as the burst eases (nothing is lost: it is in the inbox).
    """
    from .worker import process_once

    settings = runtime.settings
    seen = {"at": time.monotonic(), "accepted": runtime.intake_accepted}

    def step() -> int:
        began = time.monotonic()
        done = process_once(runtime, owner=owner, limit=settings.worker_batch)
        now, accepted = time.monotonic(), runtime.intake_accepted
        elapsed = now - seen["at"]
        rate = (accepted - seen["accepted"]) / elapsed if elapsed > 0 else 0.0
        seen.update(at=now, accepted=accepted)
        if done and rate > settings.worker_yield_above:
            # at most as long as the batch took: the worker keeps half the time at least,
            # so a sustained load cannot grow the backlog without end
            time.sleep(min(settings.worker_yield_seconds, now - began))
        return done

    return step


def _dispatcher_step(runtime: Runtime, owner: str) -> Callable[[], int]:
    from .dispatcher import dispatch_once

    return lambda: dispatch_once(runtime, owner=owner, limit=runtime.settings.worker_batch)


@dataclass
class Runners:
    """One set of loops over one runtime; :meth:`start`, then :meth:`stop`."""

    runtime: Runtime
    worker: bool = True
    dispatcher: bool = True
    scheduler: bool = True
    owner: str = ""

    def __post_init__(self) -> None:
        self.owner = self.owner or default_owner()
        self.stopping = threading.Event()
        self.loops: list[Loop] = []
        self.scheduler_obj: Scheduler | None = None

    def start(self) -> Runners:
        runtime, idle = self.runtime, self.runtime.settings.worker_idle_seconds
        if self.worker:
            self.loops.append(Loop(
                "jalon-worker", _worker_step(runtime, self.owner), wake=runtime.wake_worker, idle=idle,
                stopping=self.stopping,
                # messages may have been queued: the dispatcher looks at once
                after=lambda _done: runtime.wake_dispatcher.set(),
            ))
        if self.dispatcher:
            self.loops.append(Loop(
                "jalon-dispatcher", _dispatcher_step(runtime, self.owner), wake=runtime.wake_dispatcher,
                idle=idle, stopping=self.stopping,
            ))
        if self.scheduler:
            self.scheduler_obj = Scheduler(runtime, owner=self.owner)
        for loop in self.loops:
            loop.start()
        if self.scheduler_obj is not None:
            self.scheduler_obj.start()
        log.info("runners started (%s) as %s", ", ".join(self.names) or "none", self.owner)
        return self

    @property
    def names(self) -> list[str]:
        return [loop.name for loop in self.loops] + (["jalon-scheduler"] if self.scheduler_obj else [])

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop every loop; True when all of them ended within ``timeout``."""
        self.stopping.set()
        # wake the sleepers so they see the stop at once
        self.runtime.wake_worker.set()
        self.runtime.wake_dispatcher.set()
        if self.scheduler_obj is not None:
            self.scheduler_obj.shutdown(wait=True)
        deadline = time.monotonic() + timeout
        for loop in self.loops:
            loop.join(max(0.0, deadline - time.monotonic()))
        alive = [loop.name for loop in self.loops if loop.is_alive()]
        if alive:
            log.warning("runners still busy after %.1f s: %s", timeout, ", ".join(alive))
        return not alive
