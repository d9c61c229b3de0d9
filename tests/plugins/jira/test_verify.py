"""Authenticity: an admin webhook's X-Hub-Signature, or an OAuth 2.0 app's bearer JWT."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import jwt
import pytest

from jalon.plugins.jira import verify

from .support import NOW, SECRET, fixture_bytes, integration, signed_headers

# short test secrets: PyJWT's advice on key length is not what these tests are about
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

BODY = fixture_bytes("jira_issue_updated__cloud_done")


def bearer(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> dict[str, str]:
    return {"authorization": "Bearer " + jwt.encode(claims, key, algorithm=algorithm)}


def claims(**extra: object) -> dict:
    return {"iss": "app-client-id", "exp": int((NOW + timedelta(minutes=5)).timestamp())} | extra


# --- X-Hub-Signature -----------------------------------------------------------------------


def test_a_body_signed_with_the_secret_is_authentic():
    assert verify.verify(integration(), signed_headers(BODY), BODY, NOW) is True


def test_the_header_name_is_matched_whatever_its_case():
    headers = {"X-Hub-Signature": verify.hub_signature(SECRET, BODY)}
    assert verify.verify(integration(), headers, BODY, NOW) is True


def test_a_body_signed_with_another_secret_is_refused():
    assert verify.verify(integration(), signed_headers(BODY, secret="guess"), BODY, NOW) is False


def test_a_tampered_body_is_refused():
    tampered = BODY.replace(b'"Done"', b'"Dona"', 1)
    assert tampered != BODY
    assert verify.verify(integration(), signed_headers(BODY), tampered, NOW) is False


def test_a_delivery_without_signature_or_token_is_refused():
    assert verify.verify(integration(), {"content-type": "application/json"}, BODY, NOW) is False


@pytest.mark.parametrize("prefix", ["sha1=", "SHA256=", "", "sha512="])
def test_a_signature_without_the_sha256_prefix_is_refused(prefix):
    digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert verify.verify(integration(), {"x-hub-signature": prefix + digest}, BODY, NOW) is False


def test_the_previous_secret_still_works_during_a_rotation():
    rotating = integration(secrets=("new-secret", SECRET))
    assert verify.verify(rotating, signed_headers(BODY, secret=SECRET), BODY, NOW) is True
    assert verify.verify(rotating, signed_headers(BODY, secret="new-secret"), BODY, NOW) is True


def test_nothing_is_authentic_for_an_integration_without_secrets():
    assert verify.verify(integration(secrets=()), signed_headers(BODY), BODY, NOW) is False
    assert verify.verify(integration(secrets=("",)), signed_headers(BODY, secret=""), BODY, NOW) is False


# --- OAuth 2.0 app webhooks: Authorization: Bearer <JWT> -----------------------------------


def test_a_jwt_signed_hs256_with_the_client_secret_is_authentic():
    assert verify.verify(integration(), bearer(claims()), BODY, NOW) is True


def test_the_client_secret_may_sit_in_the_credentials():
    view = integration(secrets=("webhook-secret",), credentials={"client_secret": "app-secret"})
    assert verify.verify(view, bearer(claims(), key="app-secret"), BODY, NOW) is True


def test_a_jwt_signed_with_another_secret_is_refused():
    assert verify.verify(integration(), bearer(claims(), key="not-the-secret"), BODY, NOW) is False


def test_a_jwt_signed_with_the_previous_secret_works_during_a_rotation():
    assert verify.verify(integration(secrets=("new", SECRET)), bearer(claims()), BODY, NOW) is True


def test_an_expired_jwt_is_refused():
    expired = claims(exp=int((NOW - timedelta(minutes=5)).timestamp()))
    assert verify.verify(integration(), bearer(expired), BODY, NOW) is False


def test_a_jwt_expired_within_the_leeway_is_accepted():
    just = claims(exp=int((NOW - timedelta(seconds=verify.JWT_LEEWAY_SECONDS - 10)).timestamp()))
    assert verify.verify(integration(), bearer(just), BODY, NOW) is True


def test_a_jwt_without_expiry_is_refused():
    assert verify.verify(integration(), bearer({"iss": "app-client-id"}), BODY, NOW) is False


def test_an_unsigned_jwt_alg_none_is_refused():
    token = jwt.encode(claims(), None, algorithm="none")
    assert verify.verify(integration(), {"authorization": f"Bearer {token}"}, BODY, NOW) is False


def test_a_jwt_signed_hs512_is_refused_even_with_the_right_secret():
    assert verify.verify(integration(), bearer(claims(), key=SECRET * 4, algorithm="HS512"),
                         BODY, NOW) is False
    assert verify.verify(integration(secrets=(SECRET * 4,)), bearer(claims(), key=SECRET * 4, algorithm="HS512"),
                         BODY, NOW) is False


def test_a_jwt_claiming_rs256_is_refused():
    header, payload, signature = jwt.encode(claims(), SECRET, algorithm="HS256").split(".")
    forged_header = jwt.utils.base64url_encode(b'{"alg":"RS256","typ":"JWT"}').decode()
    token = f"{forged_header}.{payload}.{signature}"
    assert verify.verify(integration(), {"authorization": f"Bearer {token}"}, BODY, NOW) is False


def test_a_jwt_from_another_issuer_is_refused_when_the_integration_names_one():
    view = integration(settings={"jwt_issuer": "app-client-id"})
    assert verify.verify(view, bearer(claims()), BODY, NOW) is True
    assert verify.verify(view, bearer(claims(iss="someone-else")), BODY, NOW) is False


def test_a_malformed_bearer_token_is_refused():
    assert verify.verify(integration(), {"authorization": "Bearer not.a.jwt"}, BODY, NOW) is False
    assert verify.verify(integration(), {"authorization": "Bearer "}, BODY, NOW) is False


def test_a_connect_jwt_scheme_is_not_accepted():
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    assert verify.verify(integration(), {"authorization": f"JWT {token}"}, BODY, NOW) is False
