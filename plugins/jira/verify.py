"""Authenticity of a Jira delivery, on the raw body, before anything is parsed
or stored; and the key that makes a redelivery a duplicate. No network here.

Two ways Jira proves a delivery is its own:

* an admin webhook saved with a secret (Cloud and Data Center) sends
  ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``;
* an OAuth 2.0 app's dynamic webhook sends ``Authorization: Bearer <JWT>``
  signed HS256 with the app's client secret. The client secret is looked for
  in ``integration.secrets`` (so it rotates like any webhook secret) and in
  ``integration.credentials['client_secret']``. Only HS256 is accepted
  (``none``, HS512, RS256... are refused), ``exp`` is required and checked
  against the request time with :data:`JWT_LEEWAY_SECONDS` of leeway, and
  ``iss`` must equal ``settings['jwt_issuer']`` when the integration names one.

Every accepted secret is tried (the previous one during a rotation overlap),
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import jwt

from jalon.connector.plugin import IntegrationView

SIGNATURE_HEADER = "x-hub-signature"
SIGNATURE_PREFIX = "sha256="
AUTHORIZATION_HEADER = "authorization"
BEARER_PREFIX = "bearer "
DELIVERY_ID_HEADER = "x-atlassian-webhook-identifier"
JWT_ALGORITHM = "HS256"
JWT_LEEWAY_SECONDS = 60
MAX_KEY_LENGTH = 200


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def hub_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature`` value Jira sends for ``body`` signed with ``secret``."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def jwt_secrets(integration: IntegrationView) -> list[str]:
    secrets = [s for s in integration.secrets if s]
    client_secret = (integration.credentials or {}).get("client_secret")
    if client_secret and client_secret not in secrets:
        secrets.append(str(client_secret))
    return secrets


def verify_signature(integration: IntegrationView, presented: str, body: bytes) -> bool:
    if not presented.startswith(SIGNATURE_PREFIX):
        return False
    matches = [hmac.compare_digest(presented.encode(), hub_signature(s, body).encode())
               for s in integration.secrets if s]
    return any(matches)


def verify_jwt(integration: IntegrationView, token: str, now: datetime) -> bool:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        return False
    if header.get("alg") != JWT_ALGORITHM:
        return False
    for secret in jwt_secrets(integration):
        claims = _decode(token, secret)
        if claims is not None:
            return _claims_hold(integration, claims, now)
    return False


def _decode(token: str, secret: str) -> dict[str, Any] | None:
    try:
        # the time claims are checked against the request's own ``now`` below
        return jwt.decode(token, secret, algorithms=[JWT_ALGORITHM],
                          options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                                   "verify_aud": False, "verify_iss": False})
    except jwt.InvalidTokenError:
        return None


def _claims_hold(integration: IntegrationView, claims: Mapping[str, Any], now: datetime) -> bool:
    exp = claims.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return False
    moment = now.timestamp()
    if moment > exp + JWT_LEEWAY_SECONDS:
        return False
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and not isinstance(nbf, bool) and moment < nbf - JWT_LEEWAY_SECONDS:
        return False
    issuer = integration.settings.get("jwt_issuer")
    if issuer and claims.get("iss") != issuer:
        return False
    return True


def verify(integration: IntegrationView, headers: Mapping[str, str], body: bytes, now: datetime) -> bool:
    """True when the delivery is Jira's: a good ``X-Hub-Signature`` or a good bearer JWT."""
    headers = _lower(headers)
    signature = headers.get(SIGNATURE_HEADER)
    if signature is not None:
        return verify_signature(integration, signature.strip(), body)
    authorization = headers.get(AUTHORIZATION_HEADER, "").strip()
    if authorization.lower().startswith(BEARER_PREFIX):
        return verify_jwt(integration, authorization[len(BEARER_PREFIX):].strip(), now)
    return False


def content_key(payload: Mapping[str, Any]) -> str:
    """A key from what a delivery is about, for Jira Data Center (no delivery id):
    the same change delivered twice gives the same key, two changes never do."""
    event = str(payload.get("webhookEvent") or "")
    issue = payload.get("issue") if isinstance(payload.get("issue"), Mapping) else {}
    changelog = payload.get("changelog") if isinstance(payload.get("changelog"), Mapping) else {}
    worklog = payload.get("worklog") if isinstance(payload.get("worklog"), Mapping) else {}
    version = payload.get("version") if isinstance(payload.get("version"), Mapping) else {}
    parts = [event]
    if worklog:
        parts += ["worklog", str(worklog.get("id")), str(worklog.get("updated") or worklog.get("created"))]
    elif changelog.get("id"):
        parts += ["issue", str(issue.get("id")), "changelog", str(changelog.get("id"))]
    elif version:
        parts += ["version", str(version.get("id"))]
    else:
        fields = issue.get("fields") if isinstance(issue.get("fields"), Mapping) else {}
        parts += ["issue", str(issue.get("id")), str(fields.get("updated")), str(payload.get("timestamp"))]
    key = "jira:" + ":".join(parts)
    if len(key) > MAX_KEY_LENGTH:
        key = "jira:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def idempotency_key(headers: Mapping[str, str], body: bytes) -> str | None:
    """``X-Atlassian-Webhook-Identifier`` (Cloud, stable across retries), else
    :func:`content_key`; None for a body that is not a JSON object (the
    connector then keys on the body's SHA-256)."""
    delivery_id = _lower(headers).get(DELIVERY_ID_HEADER, "").strip()
    if delivery_id:
        key = "jira-delivery:" + delivery_id
        return key if len(key) <= MAX_KEY_LENGTH else "jira-delivery:" + hashlib.sha256(delivery_id.encode()).hexdigest()
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, Mapping):
        return None
    return content_key(payload)
