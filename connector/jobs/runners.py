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
from typing import Any

from jalon.connector.runtime import Runtime
from jalon.connector.jobs.scheduler import Scheduler, default_owner

log = logging.getLogger("jalon.connector.jobs.runners")

# after a pass that raised, wait this long at least before the next one (no hot loop on a dead database)
ERROR_PAUSE_SECONDS = 1.0
# under a burst that leaves no quiet moment, the in-process worker still applies one delivery this often
YIELD_MAX_SECONDS = 2.0


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


class Door:
    """How busy intake is, as the in-process worker sees it.

    ``bursting()``: more deliveries per second than ``worker_yield_above``
    were accepted (``runtime.intake_accepted``) over the last quarter of a
    second or more. ``wait_quiet()``: no webhook request has been answered
    for a few milliseconds, a gap between requests rather than the moment
    between two of a burst; the web server's ``intake`` tells (its
    ``inflight`` count of requests being answered, and its ``started``
    count). Without one (``jalon worker``), the door is never quiet.
    """

    WINDOW_SECONDS = 0.25
    QUIET_SECONDS = 0.003

    def __init__(self, runtime: Runtime, intake: Any = None):
        self.runtime = runtime
        self.intake = intake
        self.at, self.accepted, self.rate = time.monotonic(), runtime.intake_accepted, 0.0

    def bursting(self) -> bool:
        now, accepted = time.monotonic(), self.runtime.intake_accepted
        elapsed = now - self.at
        if elapsed >= self.WINDOW_SECONDS:
            # after a long look away the deliveries counted may all be recent: the worker
            # errs on the side of the door (a burst is one from its first quarter second)
            self.rate = (accepted - self.accepted) / self.WINDOW_SECONDS
            self.at, self.accepted = now, accepted
        return self.rate > self.runtime.settings.worker_yield_above

    def wait_calm(self, timeout: float, rate: float) -> bool:
        """Wait until the door's rate is ``rate`` per second or less (judged
        every window), ``timeout`` seconds at most; False when it stayed above."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.WINDOW_SECONDS, remaining))
            self.bursting()
            if self.rate <= rate:
                return True

    def wait_quiet(self, timeout: float) -> bool:
        """Wait for a quiet moment, ``timeout`` seconds at most; False when
        the door stayed busy. It looks every ``QUIET_SECONDS``: quiet is no
        request being answered now and none started since the last look. (It
        does not wake at each moment no request is in flight: in a burst
        there are hundreds a second, each one a thread switch taken from
        intake.)"""
        deadline = time.monotonic() + timeout
        if self.intake is None:
            time.sleep(timeout)
            return False
        while True:
            started = self.intake.started
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(self.QUIET_SECONDS, remaining))
            if not self.intake.inflight and self.intake.started == started:
                return True


def _worker_step(runtime: Runtime, owner: str, door: Door | None = None) -> Callable[[], int]:
    """One worker pass; under a burst at the door, the door goes first.

    The worker shares the process (and Python's one running thread) with
    intake. When deliveries arrive faster than ``worker_yield_above`` per
    second, the worker applies them one per transaction (on SQLite a
    transaction holds the one writer's lock, and intake's commits wait for
    it), and before each transaction, the claim included, it waits for a
    quiet moment at the door (and, above ``worker_stand_back_above`` per
    second, more than it could apply anyway, for the burst to ease first:
    every delivery it applied then would cost several acknowledgements and
    leave the backlog as long), ``worker_yield_seconds`` at most, twice as
    long after each wait that found none, up to ``YIELD_MAX_SECONDS``: it
    works in the door's idle moments, and still goes on, a delivery every
    couple of seconds, during a burst that leaves none. What
    is stored is processed as the burst eases (nothing is lost: it is in the
    inbox). Otherwise it works at once, in transactions of several deliveries.
    """
    from jalon.connector.relay.worker import APPLY_GROUP, process_once

    settings = runtime.settings
    door = door or Door(runtime)
    # how long the next wait for a quiet moment may last: doubled each time one
    # passes without any, back to worker_yield_seconds once one comes
    patience = [settings.worker_yield_seconds]

    def pause() -> None:
        if not door.bursting():
            return
        calm = door.rate <= settings.worker_stand_back_above or door.wait_calm(
            patience[0], settings.worker_stand_back_above)
        if calm and door.wait_quiet(patience[0]):
            patience[0] = settings.worker_yield_seconds
        else:
            patience[0] = min(2 * patience[0], max(settings.worker_yield_seconds, YIELD_MAX_SECONDS))

    def step() -> int:
        bursting = door.bursting()
        if bursting:
            pause()
        return process_once(runtime, owner=owner, limit=settings.worker_batch,
                            group=1 if bursting else APPLY_GROUP, pause=pause)

    return step


def _dispatcher_step(runtime: Runtime, owner: str) -> Callable[[], int]:
    from jalon.connector.outbox.dispatcher import dispatch_once

    return lambda: dispatch_once(runtime, owner=owner, limit=runtime.settings.worker_batch)


@dataclass
class Runners:
    """One set of loops over one runtime; :meth:`start`, then :meth:`stop`."""

    runtime: Runtime
    worker: bool = True
    dispatcher: bool = True
    scheduler: bool = True
    owner: str = ""
    # the web server's intake in this process (its ``inflight`` and ``started`` counts), if any
    intake: Any = None

    def __post_init__(self) -> None:
        self.owner = self.owner or default_owner()
        self.stopping = threading.Event()
        self.loops: list[Loop] = []
        self.scheduler_obj: Scheduler | None = None

    def start(self) -> Runners:
        runtime, idle = self.runtime, self.runtime.settings.worker_idle_seconds
        if self.worker:
            self.loops.append(Loop(
                "jalon-worker", _worker_step(runtime, self.owner, Door(runtime, self.intake)),
                wake=runtime.wake_worker, idle=idle,
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
