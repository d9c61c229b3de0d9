"""Per-request context: the bearer token, its scope, and the unit of work.

Each API request is one transaction: the session opened when the token is
checked is committed after the view only if the response is a success, and
rolled back otherwise, so a request never writes half of what it meant to.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, current_app, g, request
from sqlalchemy.orm import Session

from jalon.core import tokens

from jalon.connector.web.api.problems import Problem

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALL_SCOPES = frozenset(tokens.SCOPES)


def db() -> Session:
    """The request's session (opened by :func:`_authenticate`)."""
    session = g.get("jalon_session")
    if session is None:
        session = g.jalon_session = current_app.extensions["jalon"].sessionmaker()
    return session


def actor() -> str:
    """Who the audit trail says acted: ``token:<name>``."""
    return g.jalon_actor


def _unauthorized(detail: str, *, code: str, invalid: bool) -> Problem:
    challenge = 'Bearer realm="jalon"'
    if invalid:
        challenge += ', error="invalid_token"'
    return Problem(401, code, detail, headers={"WWW-Authenticate": challenge})


def _authenticate(write_scopes: frozenset[str]) -> None:
    if request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, presented = header.partition(" ")
    if not header:
        raise _unauthorized("an API token is required: Authorization: Bearer <token>", code="unauthorized",
                            invalid=False)
    if scheme.lower() != "bearer" or not presented.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'", code="invalid_token", invalid=True)
    token = tokens.authenticate(db(), presented.strip())
    if token is None:
        raise _unauthorized("the token is unknown or revoked", code="invalid_token", invalid=True)
    g.jalon_actor = f"token:{token.name}"
    g.jalon_scope = token.scope
    if request.method not in READ_METHODS and token.scope not in write_scopes:
        needed = " or ".join(sorted(write_scopes))
        raise Problem(
            403, "insufficient_scope", f"a {token.scope} token cannot change this resource: it needs {needed}",
            headers={"WWW-Authenticate": f'Bearer realm="jalon", error="insufficient_scope", scope="{needed}"'},
        )


def protect(blueprint, write_scopes: Iterable[str] = ("admin",)) -> None:  # type: ignore[no-untyped-def]
    """Every route of ``blueprint`` needs a token; reading needs any scope,
    writing one of ``write_scopes``."""
    scopes = frozenset(write_scopes)
    unknown = scopes - ALL_SCOPES
    if unknown:
        raise ValueError(f"unknown scopes {sorted(unknown)}")
    blueprint.before_request(lambda: _authenticate(scopes))


def install_unit_of_work(app: Flask) -> None:
    @app.after_request
    def _finish(response):  # type: ignore[no-untyped-def]
        session = g.pop("jalon_session", None)
        if session is not None:
            try:
                if response.status_code < 400:
                    session.commit()  # a failure here becomes a 500 and nothing is written
                else:
                    session.rollback()
            finally:
                session.close()
        return response

    @app.teardown_request
    def _close(_error):  # type: ignore[no-untyped-def]
        # after_request is skipped when an error escapes every handler
        session = g.pop("jalon_session", None)
        if session is not None:
            session.rollback()
            session.close()
