"""API tokens: random secrets shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit
from .errors import Invalid
from .models import ApiToken
from .types import utcnow

SCOPES = ("admin", "finance")
TOKEN_PREFIX = "jal_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, name: str, scope: str, actor: str) -> tuple[ApiToken, str]:
    """Create a token; the plain text is returned once and never stored."""
    if scope not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}", code="invalid_scope")
    if not name.strip():
        raise Invalid("a token needs a name", code="missing_field")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(name=name.strip(), scope=scope, prefix=plain[:10], digest=digest(plain))
    session.add(token)
    session.flush()
    audit.record(session, actor=actor, action="api_token.created", subject=token, details={"scope": scope, "name": name})
    return token, plain


def authenticate(session: Session, presented: str) -> ApiToken | None:
    """The live token matching ``presented``, or None."""
    if not presented.startswith(TOKEN_PREFIX):
        return None
    wanted = digest(presented)
    token = session.execute(select(ApiToken).where(ApiToken.digest == wanted)).scalar_one_or_none()
    # the lookup is by digest; compare again in constant time for good measure
    if token is None or token.revoked_at is not None or not hmac.compare_digest(token.digest, wanted):
        return None
    return token


def revoke(session: Session, token: ApiToken, *, actor: str) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, actor=actor, action="api_token.revoked", subject=token)
