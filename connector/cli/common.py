"""What every command shares: the database from the command line, and domain errors as one line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from jalon.core.db import database_url, make_engine, make_sessionmaker, unit_of_work
from jalon.core.errors import JalonError


class Context:
    def __init__(self, url: str | None):
        self.url = database_url(url)
        self._engine = None
        self._keys = False

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        """The database, its secrets sealed with ``JALON_SECRET_KEYS``: a
        command that opens it without the keys ends with ``secret_keys_missing``."""
        if not self._keys:
            from jalon.connector.runtime import use_secret_keys

            use_secret_keys()
            self._keys = True
        return self.schema_engine

    @property
    def schema_engine(self):  # type: ignore[no-untyped-def]
        """The database for what reads and writes no secret (``jalon db``): no key needed."""
        if self._engine is None:
            self._engine = make_engine(self.url)
        return self._engine

    @contextmanager
    def session(self) -> Iterator[Any]:
        with unit_of_work(make_sessionmaker(self.engine)) as session:
            yield session


@contextmanager
def domain_errors() -> Iterator[None]:
    """Domain and database errors become one clear line and exit code 1."""
    try:
        yield
    except JalonError as error:
        click.echo(f"error [{error.code}]: {error.message}", err=True)
        sys.exit(1)
    except OperationalError as error:
        click.echo(f"error [database_unavailable]: {error.orig}", err=True)
        sys.exit(1)
