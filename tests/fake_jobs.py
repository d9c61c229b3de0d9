"""A plugin that contributes a scheduled job, as a third party would: a
reconciliation with a fake PM tool, that can be told to fail.

``tests.fake_jobs:plugin`` loads it through ``JALON_EXTRA_PLUGINS`` (the CLI's tests)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from jalon.connector.plugin.hookspecs import hookimpl
from jalon.connector.plugin.types import JobSpec

NAME = "fake.reconcile"
INTERVAL = timedelta(minutes=15)


class Reconciler:
    def __init__(self) -> None:
        self.error: Exception | None = None
        self.result: Mapping[str, Any] = {"checked": 3}

    @hookimpl
    def jalon_scheduler_jobs(self):  # type: ignore[no-untyped-def]
        return [JobSpec(NAME, INTERVAL, self.run, description="Compare the fake tool's tasks with jalon's")]

    def run(self, context):  # type: ignore[no-untyped-def]
        if self.error is not None:
            raise self.error
        return self.result


plugin = Reconciler()
