"""The Flask application factory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import Flask

from jalon.connector.runtime import Runtime, build_runtime
from jalon.connector.settings import Settings

DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: admin payloads are small

# what the app keeps in app.extensions["jalon"]
Jalon = Runtime


def create_app(
    database_url: str | None = None,
    *,
    settings: Settings | None = None,
    plugins: Iterable[object] = (),
    load_entrypoints: bool = True,
    **config: Any,
) -> Flask:
    """Build the app. The schema is not migrated here: ``jalon db upgrade`` does it."""
    from jalon.connector.web.api import register_api
    from jalon.connector.web.api.context import install_unit_of_work
    from jalon.connector.web.api.problems import register_error_handlers
    from jalon.connector.web.approval import register_approval
    from jalon.connector.relay.intake import register_intake

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = DEFAULT_MAX_CONTENT_LENGTH
    app.config["JSON_SORT_KEYS"] = False
    app.config.update(config)

    # the plugin manager is built here, once per app, never at import time;
    # check_pending() inside makes a misspelt hook fail at start-up
    app.extensions["jalon"] = build_runtime(
        database_url, settings=settings, plugins=plugins, load_entrypoints=load_entrypoints
    )

    install_unit_of_work(app)
    register_api(app)
    register_intake(app)  # POST /hooks/<source>/<integration-key>: no bearer token, the plugin verifies
    register_approval(app)  # GET/POST /approve/<token>: no bearer token, the link is the capability
    register_error_handlers(app)
    return app
