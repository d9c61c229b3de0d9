"""The Flask application factory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from jalon.core.db import database_url as resolve_database_url
from jalon.core.db import make_engine, make_sessionmaker

DEFAULT_MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: admin payloads are small


@dataclass
class Jalon:
    """What the app keeps in ``app.extensions["jalon"]``."""

    engine: Engine
    sessionmaker: sessionmaker[Session]


def create_app(database_url: str | None = None, **config: Any) -> Flask:
    """Build the app. The schema is not migrated here: ``jalon db upgrade`` does it."""
    from .api import register_api
    from .api.context import install_unit_of_work
    from .api.problems import register_error_handlers

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = DEFAULT_MAX_CONTENT_LENGTH
    app.config["JSON_SORT_KEYS"] = False
    app.config.update(config)

    engine = make_engine(resolve_database_url(database_url))
    app.extensions["jalon"] = Jalon(engine=engine, sessionmaker=make_sessionmaker(engine))

    # ------------------------------------------------------------------
    # Plugin manager: a later issue builds it HERE (pluggy, the "jalon"
    # entry-point group, pm.check_pending()), once per app, never at import
    # time, and keeps it on app.extensions["jalon"].
    # ------------------------------------------------------------------

    install_unit_of_work(app)
    register_api(app)
    register_error_handlers(app)
    return app
