"""API tokens: shown once, stored as a digest, refused once revoked."""

import pytest
from sqlalchemy import select

from jalon.core.db import unit_of_work
from jalon.core.errors import Invalid
from jalon.core.models import ApiToken, AuditRecord
from jalon.core.tokens import authenticate, create_token, digest, revoke


def test_a_created_token_authenticates_with_its_scope(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        _, plain = create_token(session, name="ci", scope="finance", actor="admin")
    with unit_of_work(Session) as session:
        token = authenticate(session, plain)
        assert token is not None
        assert (token.name, token.scope) == ("ci", "finance")


def test_only_the_digest_of_a_token_is_stored(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        _, plain = create_token(session, name="ci", scope="admin", actor="admin")
    with unit_of_work(Session) as session:
        stored = session.execute(select(ApiToken)).scalar_one()
        assert stored.digest == digest(plain)
        columns = [str(getattr(stored, c.key)) for c in ApiToken.__table__.columns]
        assert not any(plain in value for value in columns)
        trail = [str(r.details) for r in session.execute(select(AuditRecord)).scalars()]
        assert not any(plain in details for details in trail)


@pytest.mark.parametrize("presented", ["", "jal_wrong", "not-even-prefixed"])
def test_an_unknown_token_does_not_authenticate(Session, presented):  # noqa: N803
    with unit_of_work(Session) as session:
        create_token(session, name="ci", scope="admin", actor="admin")
        assert authenticate(session, presented) is None


def test_a_revoked_token_does_not_authenticate(Session):  # noqa: N803
    with unit_of_work(Session) as session:
        token, plain = create_token(session, name="ci", scope="admin", actor="admin")
    with unit_of_work(Session) as session:
        revoke(session, session.get(ApiToken, token.id), actor="admin")
    with unit_of_work(Session) as session:
        assert authenticate(session, plain) is None
        actions = list(session.execute(select(AuditRecord.action).order_by(AuditRecord.id)).scalars())
        assert actions == ["api_token.created", "api_token.revoked"]


def test_an_unknown_scope_is_refused(Session):  # noqa: N803
    with pytest.raises(Invalid) as refused, unit_of_work(Session) as session:
        create_token(session, name="ci", scope="root", actor="admin")
    assert refused.value.code == "invalid_scope"
