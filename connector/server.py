"""Production serving with gunicorn, started from ``jalon serve``.

Threaded workers (``gthread``) with a short keep-alive: a client that opens a
connection and sends slowly holds one thread, never the whole process, and the
other deliveries keep being answered.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class JalonServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, database_url: str, options: dict[str, Any]):
        self.database_url = database_url
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        from jalon.connector.app import create_app

        return create_app(database_url=self.database_url)


def run(*, database_url: str, host: str, port: int, workers: int, threads: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 10,
        "keepalive": 2,
        "limit_request_line": 8190,
        "accesslog": "-",
        # each worker builds its own app, engine and pool after the fork
        "preload_app": False,
    }
    JalonServer(database_url, options).run()
