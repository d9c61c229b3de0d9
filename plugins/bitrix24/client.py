"""Bitrix24's REST API, thin: the method names and one small method per need,
on top of the connector's :class:`~jalon.connector.plugin.RestClient`
(timeouts, retries, typed errors, the SSRF guard).

Two ways in, from ``integration.credentials``:

* an **inbound webhook** (``webhook_url``: ``https://<portal>/rest/<user id>/<code>/``):
  ``POST <webhook_url><method>.json``. The code in its path is the credential:
  it is never logged nor shown (the kit's messages name the host only);
* an **OAuth app** (``access_token``, ``refresh_token``, ``expires_at``,
  ``client_id``, ``client_secret``; ``client_endpoint`` optional):
  ``POST <client_endpoint or https://<domain>/rest/><method>.json`` with
  ``auth=<access_token>``. The access token lives an hour: it is refreshed
  at ``oauth.bitrix.info`` before a call when ``expires_at`` has passed, or
  when Bitrix24 answers ``expired_token``, and the new tokens are stored at
  once through the kit (``http.save_credentials``, a compare-and-swap) before
  they are used. A refresh token Bitrix24 refuses (revoked, or unused for
  180 days) is :class:`~jalon.connector.plugin.PermanentFailure` with
  :data:`REFUSED`, recorded in the audit trail (``http.credentials_refused``).

Limits: the portal's leaky bucket (2 requests a second, bursts of 50; 5 and
250 on Enterprise plans) answers ``503 QUERY_LIMIT_EXCEEDED``, the time spent
in one method ``429 OPERATION_TIME_LIMIT`` (with ``time.operating_reset_at``).
Every client of one portal in the process shares one leaky bucket
(:data:`PER_SECOND`, :data:`BURST`: below Bitrix24's 50, since the portal's
other apps fill the same bucket); a ``QUERY_LIMIT_EXCEEDED`` is waited out
(:data:`QUERY_LIMIT_WAIT`) and retried, an ``OPERATION_TIME_LIMIT`` waited
until its reset when that is near, else raised as ``RateLimited`` with
``retry_after`` for the caller to come back later. Nothing is dropped: a
failure raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from jalon.connector.plugin import (
    BadResponse,
    CredentialsChanged,
    IntegrationView,
    NoCredentialStore,
    NotFound,
    PermanentFailure,
    QueryTokenAuth,
    RateLimited,
    RemoteError,
    RestClient,
    Unauthorized,
)

# the pace of every client of one portal in the process: Bitrix24's bucket drains 2 a second and
# holds 50 (Enterprise: 5 and 250); the portal's other apps and webhooks fill it too, so leave room
PER_SECOND = 2.0
BURST = 40
# after QUERY_LIMIT_EXCEEDED: the bucket drains two a second, so one second frees room for the retry
QUERY_LIMIT_WAIT = 1.0
# OPERATION_TIME_LIMIT counts a method's time over ten one-minute baskets: no reset is further away
OPERATING_RESET_CAP = 600.0
# an OPERATION_TIME_LIMIT without a readable reset: come back in a minute
OPERATING_DEFAULT_WAIT = 60.0
PAGE_SIZE = 50  # Bitrix24's page, for lists and elapsed time alike
BATCH_SIZE = 50  # subqueries in one `batch` call
MAX_PAGES = 200
# an access token this close to its expiry is refreshed before the call
EXPIRY_MARGIN_SECONDS = 60.0
OAUTH_URL = "https://oauth.bitrix.info/oauth/token/"
REFUSED = "the Bitrix24 app's refresh token was refused: reconnect the app"

TASK_FIELDS = ("ID", "TITLE", "STATUS", "GROUP_ID", "RESPONSIBLE_ID", "CLOSED_BY", "CLOSED_DATE", "CHANGED_BY",
               "CHANGED_DATE", "STATUS_CHANGED_BY", "STATUS_CHANGED_DATE", "TIME_SPENT_IN_LOGS", "TASK_CONTROL",
               "TAGS")
ELAPSED_FIELDS = ("ID", "TASK_ID", "USER_ID", "SECONDS", "CREATED_DATE", "DATE_START", "DATE_STOP", "COMMENT_TEXT")

WEBHOOK_URL = re.compile(r"^(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+(?::\d{1,5})?)/rest/(?P<user>\d+)/(?P<code>[A-Za-z0-9_]+)/?$")
METHOD = re.compile(r"^[a-z][a-z0-9_.]*$")
HOST = re.compile(r"^[A-Za-z0-9.-]+(?::\d{1,5})?$")
# Bitrix24's error codes that say the limit was hit, or that the thing asked for is not there
LIMIT_CODES = frozenset({"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT"})
DENIED_CODES = frozenset({"ACCESS_DENIED", "INSUFFICIENT_SCOPE", "INVALID_TOKEN", "EXPIRED_TOKEN", "NO_AUTH_FOUND",
                          "INVALID_CREDENTIALS", "WRONG_AUTH_TYPE", "AUTHORIZATION_ERROR"})


def error_of(response: Any) -> tuple[str, str, Mapping[str, Any]]:
    """Bitrix24's ``{"error": code, "error_description": text}`` of an answer: (code, text, body)."""
    try:
        body = response.json() if response is not None else None
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        return "", "", {}
    return str(body.get("error") or ""), str(body.get("error_description") or ""), body


def throttle(response: Any, now: float) -> float | None:
    """The seconds Bitrix24 asks to wait, read from an error's body (the
    kit's ``throttle``): ``QUERY_LIMIT_EXCEEDED`` (the portal's bucket is full)
    or ``OPERATION_TIME_LIMIT`` (until ``time.operating_reset_at``, a Unix
    time, at most :data:`OPERATING_RESET_CAP`); None for any other answer."""
    code, _text, body = error_of(response)
    if code == "QUERY_LIMIT_EXCEEDED":
        return QUERY_LIMIT_WAIT
    if code != "OPERATION_TIME_LIMIT":
        return None
    timing = body.get("time") if isinstance(body.get("time"), Mapping) else {}
    try:
        reset_at = float(timing.get("operating_reset_at"))
    except (TypeError, ValueError):
        return OPERATING_DEFAULT_WAIT
    return min(OPERATING_RESET_CAP, max(1.0, reset_at - now))


def php_query(params: Mapping[str, Any]) -> str:
    """Parameters as PHP's ``http_build_query`` writes them (``filter[GROUP_ID]=12&select[0]=ID``):
    how a ``batch`` subquery is given. Empty lists and mappings vanish, as in PHP."""
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]" if prefix else str(key), item)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        elif value is None:
            pairs.append((prefix, ""))
        elif isinstance(value, bool):
            pairs.append((prefix, "Y" if value else "N"))
        else:
            pairs.append((prefix, str(value)))

    walk("", params)
    return urlencode(pairs)


def webhook_base(url: str, *, allow_http: bool = False) -> str:
    """A checked inbound webhook URL, ending with ``/``; PermanentFailure
    (without the URL, which is a secret) when it is not one. Plain ``http``
    only for a portal on the company's own network (``allow_http``: the
    integration's ``allow_private_network``, an on-premise Bitrix24 without
    TLS): elsewhere the webhook's code would travel in clear."""
    match = WEBHOOK_URL.match(str(url or "").strip())
    if match is None or (match["scheme"] == "http" and not allow_http):
        raise PermanentFailure("credentials.webhook_url is not a Bitrix24 inbound webhook URL "
                               "(https://<portal>/rest/<user id>/<code>/; http only with allow_private_network)")
    return f"{match['scheme']}://{match['host']}/rest/{match['user']}/{match['code']}/"


def expiry(value: Any) -> float | None:
    """``expires_at`` as a Unix time: a number (seconds) or an ISO 8601 date; None when unreadable."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None


def secrets_of(integration: IntegrationView) -> tuple[str, ...]:
    """What never goes into a message: the credentials' values, the webhook's code."""
    credentials = integration.credentials or {}
    values = [str(v) for v in credentials.values() if isinstance(v, str) and len(v) > 3]
    match = WEBHOOK_URL.match(str(credentials.get("webhook_url") or "").strip())
    if match is not None:
        values.append(match["code"])
    return tuple(values)


def _hide(text: str, hidden: Sequence[str]) -> str:
    for value in sorted(set(hidden), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


class Bitrix24Client:
    """One integration's Bitrix24 portal, through the connector's REST client."""

    def __init__(self, http: RestClient, integration: IntegrationView):
        self.base = http
        self.integration = integration
        self.credentials: dict[str, Any] = dict(integration.credentials or {})
        self.webhook = bool(str(self.credentials.get("webhook_url") or "").strip())
        self.oauth = not self.webhook and bool(self.credentials.get("access_token"))
        self.endpoint = self._endpoint()
        self.portal = urlsplit(self.endpoint).hostname if self.endpoint else None
        self.http = self._client()

    # --- where and how --------------------------------------------------------------------

    def _endpoint(self) -> str | None:
        private = self.integration.settings.get("allow_private_network") is True
        if self.webhook:
            return webhook_base(self.credentials["webhook_url"], allow_http=private)
        if not self.oauth:
            return None
        endpoint = str(self.credentials.get("client_endpoint") or "").strip()
        if endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("https", "http" if private else "https") or not parts.hostname or not parts.path.endswith("/rest/"):
                raise PermanentFailure("credentials.client_endpoint is not a Bitrix24 REST address "
                                       "(https://<portal>/rest/)")
            return endpoint
        domain = str(self.integration.settings.get("domain") or "").strip() or (
            urlsplit(self.integration.base_url or "").netloc)
        if not domain or not HOST.match(domain):
            raise PermanentFailure(f"integration {self.integration.key}: the Bitrix24 portal is unknown "
                                   "(settings.domain, e.g. atelier.bitrix24.eu)")
        return f"https://{domain}/rest/"

    def _client(self) -> RestClient:
        auth = QueryTokenAuth("auth", str(self.credentials["access_token"])) if self.oauth else None
        return self.base.using(auth, per_second=PER_SECOND, burst=BURST,
                               shared_by=f"bitrix24:{self.portal or self.integration.key}", throttle=throttle)

    @property
    def can_call(self) -> bool:
        return self.endpoint is not None

    def _url(self, method: str) -> str:
        if not METHOD.match(method):
            raise ValueError(f"not a Bitrix24 method name: {method!r}")
        if self.endpoint is None:
            raise PermanentFailure(f"integration {self.integration.key} has no Bitrix24 credentials: give an "
                                   "inbound webhook (--webhook-url https://<portal>/rest/<user>/<code>/) or an app's "
                                   "tokens")
        return f"{self.endpoint}{method}.json"

    # --- calling ---------------------------------------------------------------------------

    def envelope(self, method: str, params: Mapping[str, Any], *,
                 headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The whole answer of one method (``result``, ``next``, ``total``,
        ``time``), its errors mapped; the access token refreshed once when
        Bitrix24 says it expired."""
        url = self._url(method)
        if self.oauth and self._expired():
            self.refresh(self.credentials.get("access_token"))
        for attempt in (1, 2):
            try:
                response = self.http.request("POST", url, json=dict(params), headers=headers)
            except Unauthorized as error:
                code, _text, _body = error_of(error.response)
                if self.oauth and code.lower() == "expired_token" and attempt == 1:
                    self.refresh(self.credentials.get("access_token"))
                    continue
                raise self._mapped(error, method) from None
            except RemoteError as error:
                raise self._mapped(error, method) from None
            answer = self.http.json_of(response)
            if not isinstance(answer, Mapping):
                raise BadResponse(f"Bitrix24 {method}: the answer is not a JSON object", status=response.status_code)
            if answer.get("error"):
                raise self._subquery_error(method, answer)
            if "result" not in answer:
                raise BadResponse(f"Bitrix24 {method}: the answer has no result", status=response.status_code)
            return dict(answer)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, method: str, params: Mapping[str, Any], *, headers: Mapping[str, str] | None = None) -> Any:
        """One REST method's ``result``."""
        return self.envelope(method, params, headers=headers)["result"]

    def _mapped(self, error: RemoteError, method: str) -> RemoteError:
        """The kit's error, said with Bitrix24's code and words (never a token or the webhook's code)."""
        code, text, _body = error_of(error.response)
        message = f"Bitrix24 {method}: {error}" + (f" ({code}{': ' + text if text else ''})" if code else "")
        if isinstance(error, Unauthorized):
            message += (": the inbound webhook was refused (deleted, or its code changed): store the new one with "
                        "--webhook-url" if self.webhook else ": the app's token was refused")
        mapped = type(error)(_hide(message, secrets_of(self.integration)), status=error.status,
                             response=error.response, retry_after=error.retry_after)
        return mapped

    def _subquery_error(self, method: str, body: Mapping[str, Any], status: int | None = None) -> RemoteError:
        """An error Bitrix24 gave in a body (a ``batch`` subquery's, or a 200 saying ``error``)."""
        code = str(body.get("error") or "")
        text = str(body.get("error_description") or "")
        message = _hide(f"Bitrix24 {method}: {code}{': ' + text if text else ''}", secrets_of(self.integration))
        upper = code.upper()
        if upper in LIMIT_CODES:
            return RateLimited(message, status=status, retry_after=QUERY_LIMIT_WAIT)
        if upper in DENIED_CODES:
            return Unauthorized(message, status=status)
        if "NOT_FOUND" in upper or "not found" in text.lower():
            return NotFound(message, status=status)
        return RemoteError(message, status=status)

    # --- OAuth tokens ------------------------------------------------------------------------

    def _expired(self, credentials: Mapping[str, Any] | None = None) -> bool:
        at = expiry((credentials or self.credentials).get("expires_at"))
        return at is not None and self.base.clock() >= at - EXPIRY_MARGIN_SECONDS

    def _adopt(self, credentials: Mapping[str, Any]) -> None:
        self.credentials = dict(credentials)
        self.http = self._client()

    def refresh(self, used: Any) -> None:
        """New tokens for the app, stored before they are used. ``used`` is the
        access token found stale: when the store holds another, fresh one,
        another process refreshed first and that one is used instead."""
        try:
            stored = dict(self.base.stored_credentials())
        except NoCredentialStore:
            raise PermanentFailure("the Bitrix24 app's access token expired and this client cannot store a new "
                                   "one") from None
        if stored.get("access_token") and stored.get("access_token") != used and not self._expired(stored):
            self._adopt(stored)
            return
        refresh_token = str(stored.get("refresh_token") or self.credentials.get("refresh_token") or "")
        client_id = str(stored.get("client_id") or self.credentials.get("client_id") or "")
        client_secret = str(stored.get("client_secret") or self.credentials.get("client_secret") or "")
        if not (refresh_token and client_id and client_secret):
            reason = ("the Bitrix24 app's access token expired and the integration lacks a refresh_token, "
                      "client_id or client_secret to renew it: reconnect the app")
            self.base.credentials_refused(reason)
            raise PermanentFailure(reason)
        params = {"grant_type": "refresh_token", "client_id": client_id, "client_secret": client_secret,
                  "refresh_token": refresh_token}
        try:
            answer = self.base.using(None).get_json(OAUTH_URL, params=params)
        except RemoteError as error:
            if error.status is None or error.status == 429 or error.status >= 500:
                raise  # Bitrix24's OAuth server is away or busy: later, with the tokens as they are
            code, _text, _body = error_of(error.response)
            answer = {"error": code or f"HTTP {error.status}"}
        if not isinstance(answer, Mapping) or answer.get("error") or not answer.get("access_token"):
            code = str(answer.get("error") or "no token") if isinstance(answer, Mapping) else "unreadable answer"
            now_stored = dict(self.base.stored_credentials())
            if now_stored.get("refresh_token") and now_stored.get("refresh_token") != refresh_token:
                self._adopt(now_stored)  # another process refreshed with this very token first
                return
            reason = f"{REFUSED} ({_hide(code, (refresh_token, client_secret))})"
            self.base.credentials_refused(reason)
            raise PermanentFailure(reason)
        changes = self._tokens_of(answer)
        try:
            saved = self.base.save_credentials(changes, expected={"refresh_token": refresh_token})
        except CredentialsChanged as changed:  # another process stored its refresh first: use that one
            saved = changed.current
        self._adopt(saved)

    def _tokens_of(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(answer.get("refresh_token"), str) or not answer["refresh_token"]:
            raise BadResponse("Bitrix24's OAuth server gave an access token without a refresh token")
        now = self.base.clock()
        try:
            lifetime = float(answer.get("expires_in") or 3600)
        except (TypeError, ValueError):
            lifetime = 3600.0
        expires = expiry(answer.get("expires")) or now + lifetime
        changes: dict[str, Any] = {"access_token": str(answer["access_token"]),
                                   "refresh_token": answer["refresh_token"], "expires_at": int(expires)}
        endpoint = answer.get("client_endpoint")
        if isinstance(endpoint, str) and endpoint.startswith("https://") and endpoint.endswith("/rest/"):
            changes["client_endpoint"] = endpoint
        return changes

    # --- batches and pages ---------------------------------------------------------------------

    def batch(self, calls: Mapping[str, tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
        """Many methods in ``batch`` calls of at most :data:`BATCH_SIZE`
        subqueries (``halt=0``: one failing stops none): each key's
        ``result``, or the :class:`RemoteError` its subquery gave (the caller
        decides; nothing is silently dropped)."""
        results: dict[str, Any] = {}
        items = list(calls.items())
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start:start + BATCH_SIZE]
            for key, (method, _params) in chunk:
                self._url(method)  # a bad method name fails here, not inside Bitrix24
            cmd = {key: f"{method}?{php_query(params)}" for key, (method, params) in chunk}
            answer = self.call("batch", {"halt": 0, "cmd": cmd})
            if not isinstance(answer, Mapping):
                raise BadResponse("Bitrix24 batch: the result is not a JSON object")
            got = answer.get("result") if isinstance(answer.get("result"), Mapping) else {}
            errors = answer.get("result_error") if isinstance(answer.get("result_error"), Mapping) else {}
            for key, (method, _params) in chunk:
                if isinstance(errors.get(key), Mapping):
                    results[key] = self._subquery_error(method, errors[key])
                elif key in got:
                    results[key] = got[key]
                else:
                    results[key] = BadResponse(f"Bitrix24 batch: no answer for {method} ({key})")
        return results

    def _pages(self, method: str, params: Mapping[str, Any], items: str) -> Iterator[dict[str, Any]]:
        """Every item of a listing paged by ``start`` (Bitrix24 says ``next`` while there is more)."""
        start = 0
        for _ in range(MAX_PAGES):
            page = self.envelope(method, {**params, "start": start})
            result = page.get("result")
            listed = result.get(items) if isinstance(result, Mapping) else None
            if not isinstance(listed, list):
                raise BadResponse(f"Bitrix24 {method}: the answer has no list of {items!r}")
            for item in listed:
                if isinstance(item, Mapping):
                    yield dict(item)
            following = page.get("next")
            if following in (None, "") or not listed:
                return
            try:
                start = int(following)
            except (TypeError, ValueError):
                raise BadResponse(f"Bitrix24 {method}: unreadable next page {following!r}") from None
        raise BadResponse(f"Bitrix24 {method}: more than {MAX_PAGES} pages; stopped")

    # --- the methods ---------------------------------------------------------------------------

    def task(self, task_id: str) -> dict[str, Any] | None:
        """``tasks.task.get``: the task (camelCase keys), None when Bitrix24
        has none (deleted, or not visible to these credentials)."""
        try:
            result = self.call("tasks.task.get", {"taskId": str(task_id), "select": list(TASK_FIELDS)})
        except NotFound:
            return None
        except RemoteError as error:
            if error.status == 400 and "not found" in str(error).lower():
                return None
            raise
        task = result.get("task") if isinstance(result, Mapping) else None
        return dict(task) if isinstance(task, Mapping) and task else None

    def elapsed(self, task_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every elapsed-time item of each task (``task.elapseditem.getlist``,
        a page of 50 a subquery, 50 subqueries a ``batch``; a task with a full
        page is asked its next page in the next round). A subquery's error
        raises: a task's items are never reported half-read."""
        found: dict[str, list[dict[str, Any]]] = {str(task_id): [] for task_id in task_ids}
        pages = {task_id: 1 for task_id in found}
        while pages:
            answers = self.batch({f"t{task_id}": ("task.elapseditem.getlist", self._elapsed_query(task_id, page))
                                  for task_id, page in pages.items()})
            following: dict[str, int] = {}
            for task_id, page in pages.items():
                got = answers[f"t{task_id}"]
                if isinstance(got, RemoteError):
                    raise got
                if not isinstance(got, list):
                    raise BadResponse(f"Bitrix24 task.elapseditem.getlist: no list for task {task_id}")
                found[task_id].extend(dict(item) for item in got if isinstance(item, Mapping))
                if len(got) >= PAGE_SIZE:
                    if page >= MAX_PAGES:
                        raise BadResponse(f"Bitrix24 task.elapseditem.getlist: more than {MAX_PAGES} pages for "
                                          f"task {task_id}; stopped")
                    following[task_id] = page + 1
            pages = following
        return found

    @staticmethod
    def _elapsed_query(task_id: str, page: int) -> dict[str, Any]:
        # positional: TASKID, ORDER, FILTER, SELECT, PARAMS, in this order and none empty (PHP would drop it)
        return {"TASKID": task_id, "ORDER": {"ID": "asc"}, "FILTER": {">ID": 0}, "SELECT": list(ELAPSED_FIELDS),
                "PARAMS": {"NAV_PARAMS": {"nPageSize": PAGE_SIZE, "iNumPage": page}}}

    def tasks_changed(self, group_id: str, since: datetime) -> Iterator[dict[str, Any]]:
        """The tasks of a group (workgroup or project) changed since ``since``."""
        return self._pages("tasks.task.list", {
            "filter": {"GROUP_ID": str(group_id), ">=CHANGED_DATE": since.isoformat(timespec="seconds")},
            "select": list(TASK_FIELDS), "order": {"ID": "asc"}}, "tasks")

    def tasks_of_group(self, group_id: str) -> Iterator[dict[str, Any]]:
        """Every task of a group, open or closed (the time poll)."""
        return self._pages("tasks.task.list", {"filter": {"GROUP_ID": str(group_id)}, "select": list(TASK_FIELDS),
                                               "order": {"ID": "asc"}}, "tasks")

    def comment(self, task_id: str, text: str, *, idempotency_key: str) -> dict[str, Any]:
        """``task.commentitem.add`` -> ``{"id": <comment id>}``. The
        ``Idempotency-Key`` header makes a retry a replay where Bitrix24
        honours it (REST 3.0); elsewhere it is ignored."""
        result = self.call("task.commentitem.add", {"TASKID": str(task_id), "FIELDS": {"POST_MESSAGE": text}},
                           headers={"Idempotency-Key": idempotency_key})
        if isinstance(result, Mapping):
            return dict(result)
        return {"id": result}
