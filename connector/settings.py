"""The connector's settings, from the environment (``JALON_*``), with defaults
that suit the embedded, one-machine set-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from jalon.core.errors import Invalid


@dataclass(frozen=True)
class Settings:
    # where people reach this jalon (links in notifications)
    public_url: str = "http://127.0.0.1:8000"
    # how long a one-click approval link in finance's notification stays valid
    approval_link_hours: int = 168
    # webhook intake
    max_body_bytes: int = 1024 * 1024
    secret_overlap_hours: int = 24
    # processing: a claimed delivery or message held by a dead worker is free again after the lease
    lease_seconds: int = 60
    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 3600.0
    worker_batch: int = 20
    worker_idle_seconds: float = 0.2
    # under a burst (more deliveries/s than this at the door), the in-process
    # worker pauses between batches so that acknowledgements come first
    worker_yield_above: float = 100.0
    worker_yield_seconds: float = 0.1
    # above this many deliveries/s at the door, more than the worker applies in a
    # second anyway, it stands back until the burst eases (one delivery every 2 s at least)
    worker_stand_back_above: float = 500.0
    # retention: raw bodies are pruned after body_retention_days; the keys live key_retention_days (7 at least)
    body_retention_days: int = 30
    key_retention_days: int = 90
    # e-mail
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "jalon@localhost"
    # outbound HTTP (chat webhooks, callbacks, PM-tool REST APIs)
    http_timeout_seconds: float = 10.0
    # how often each source's reconciliation asks its tools what changed (reconcile.<source> jobs)
    reconcile_interval_seconds: int = 600
    # in-process runners started by `jalon serve`
    run_worker: bool = True
    run_scheduler: bool = True
    # web serving: a client that stops sending in the middle of a request frees its thread after this
    client_read_timeout_seconds: float = 10.0
    # bind each web process to one CPU (see jalon.connector.web.server.bind_to_one_cpu)
    cpu_affinity: bool = True
    # plugins registered in addition to the installed entry points, as importable
    # "module:attribute" references separated by commas (JALON_EXTRA_PLUGINS)
    extra_plugins: str = ""

    def __post_init__(self) -> None:
        if self.key_retention_days < 7:
            raise Invalid("key_retention_days must be at least 7: a redelivery six days later is still a duplicate",
                          code="invalid_setting")
        if self.approval_link_hours < 1:
            raise Invalid("approval_link_hours must be at least 1", code="invalid_setting")
        if self.max_body_bytes < 1024:
            raise Invalid("max_body_bytes must be at least 1024", code="invalid_setting")
        if self.reconcile_interval_seconds < 1:
            raise Invalid("reconcile_interval_seconds must be at least 1", code="invalid_setting")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = environ.get(f"JALON_{spec.name.upper()}")
            if raw is None:
                continue
            values[spec.name] = _parse(spec.name, spec.type, raw)
        return replace(cls(), **{**values, **overrides})


# The keys that seal secrets at rest (jalon.core.secrets): comma-separated
# Fernet keys, the first seals, every one opens. Read from the environment by
# itself, not a field of Settings: the settings are handed to every channel
# plugin (jalon_channel_send's ``settings``), the keys to no plugin.
SECRET_KEYS_ENV = "JALON_SECRET_KEYS"


def secret_keys(environ: Mapping[str, str] | None = None) -> list[str]:
    """The keys of ``JALON_SECRET_KEYS`` (none when it is unset or blank)."""
    raw = (os.environ if environ is None else environ).get(SECRET_KEYS_ENV, "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def _parse(name: str, kind: Any, raw: str) -> Any:
    kind = str(kind)
    try:
        if kind.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)  # durations and timeouts, never money
    except ValueError:
        raise Invalid(f"JALON_{name.upper()}={raw!r} is not a valid {kind}", code="invalid_setting") from None
    return raw
