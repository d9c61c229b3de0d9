"""The one base client for outbound HTTP: PM-tool REST APIs, chat webhooks,
signed callbacks.

A default timeout on every call; retries with exponential backoff on 429, 502,
503, 504 and connection errors, honouring ``Retry-After`` (seconds or an HTTP
date) or, without one, ``X-RateLimit-Reset`` (ClickUp: the Unix time the window
resets) up to ``max_wait`` seconds in-process; beyond that, :class:`RateLimited`
carries ``retry_after`` so the caller reschedules instead of holding a thread.
A client may also pace itself (:class:`RateBudget`, one per credentials in the
process: ``client.using(auth, per_minute=100)``) so that a long read never
bursts past the tool's quota; a tool that counts in a leaky bucket (Bitrix24:
two requests a second, bursts of 50) is paced by one (:class:`LeakyBucket`,
``client.using(auth, per_second=2, burst=40)``), and a tool that says "too
many" in its body rather than with a 429 is read by the vendor client's
``throttle`` (``using(..., throttle=fn)``). A connector-made client may also
store refreshed OAuth tokens (:meth:`RestClient.save_credentials`).
Errors form a small hierarchy that callers map to their own decisions::

    RemoteError
      Unauthorized   401, 403
      NotFound       404
      RateLimited    429 (.retry_after)
      Unavailable    5xx, timeouts, connection errors, unresolvable hosts
      BadResponse    not the JSON that was expected
      Redirected     a 3xx: redirects are never followed

A redirect is never followed, whatever the method: requests would turn a
POST answered 301/302/303 into a GET (the body lost, the write done nowhere),
and the new address would escape the name-based check of the SSRF guard. A
3xx is a failure naming where it pointed (its host only), for the admin to
correct the URL configured.

Every URL goes through the SSRF guard (:mod:`jalon.connector.net.ssrf`) unless
``allow_private_network`` is set; :func:`client_for` is the one place that
reads that policy from an integration, for the worker, the dispatcher,
``jalon integrations connect`` and every scheduled job alike. Error messages
name the method, the host and the status, never the path or query (a chat
webhook's path is its secret).

What every vendor client needs lives here, so that a plugin's client stays URL
constants and one-line methods: an auth object per integration
(:class:`BasicAuth`, :class:`BearerAuth`, :class:`QueryTokenAuth`), a TTL
cache for look-ups (:meth:`RestClient.get_cached`) and pagination
(:meth:`RestClient.paginate_offset`, :meth:`RestClient.paginate_cursor`).
Retries are tenacity's.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import cachetools
import requests
import tenacity
from requests.auth import AuthBase

from jalon.connector.net import ssrf

RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_MAX_WAIT = 30.0
# look-ups (an issue's project, a user's name) change seldom and are asked often
CACHE_TTL_SECONDS = 300.0
CACHE_MAX_ENTRIES = 4096
# a paginated read stops here, whatever the remote side says: no endless loop
DEFAULT_MAX_PAGES = 200
# the window of per-minute quotas (ClickUp: 100 requests a minute per token)
RATE_WINDOW_SECONDS = 60.0
# an X-RateLimit-Reset further away than this is misread (another unit, a wrong clock):
# quotas are per minute, so no wait it implies is longer
RATE_LIMIT_RESET_CAP = 60.0


class RemoteError(Exception):
    """A remote call failed. ``status`` is the HTTP status when there was one;
    ``retry_after`` the seconds the remote side asked to wait, if it did."""

    def __init__(self, message: str, *, status: int | None = None, response: requests.Response | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.response = response
        self.retry_after = retry_after


class Unauthorized(RemoteError):
    pass


class NotFound(RemoteError):
    pass


class RateLimited(RemoteError):
    pass


class Unavailable(RemoteError):
    pass


class BadResponse(RemoteError):
    pass


class Redirected(RemoteError):
    """A 3xx: the request was not repeated at the address it pointed to."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def parse_rate_limit_reset(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from an ``X-RateLimit-Reset`` header: the Unix time (in
    seconds, or milliseconds) the quota's window resets, read against ``now``
    (Unix seconds); a small number is taken as seconds left. Never negative,
    at most :data:`RATE_LIMIT_RESET_CAP`."""
    if not value:
        return None
    try:
        when = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(when) or when < 0:
        return None
    if when > 1e11:  # milliseconds
        when /= 1000.0
    left = when if when < 1e9 else when - now  # before 2001: a delay, not a date
    return min(RATE_LIMIT_RESET_CAP, max(0.0, left))


def _header_int(response: requests.Response, name: str) -> int | None:
    value = (response.headers.get(name) or "").strip()
    return int(value) if value.isdigit() else None


class RateBudget:
    """A request budget: at most ``per_minute`` requests in any minute, and
    spread out (at most ``burst`` requests, a quarter of the minute's by
    default, in the share of the minute they stand for), so that a long read
    (a reconciliation over many lists) never bursts past a tool's quota. When
    the tool says little is left (``X-RateLimit-Remaining`` at or below
    ``low``), what is left is spread over the time until its window resets.
    Thread-safe; one per credentials (:class:`RateBudgets`), since tools
    count per token. Requests wait their turn (``reserve``) before they go."""

    def __init__(self, per_minute: int, *, burst: int | None = None, low: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.burst = max(1, min(per_minute, burst if burst is not None else per_minute // 4))
        self.low = low if low is not None else max(1, per_minute // 20)
        self.clock = clock
        self._sent: deque[float] = deque(maxlen=per_minute)  # when the last requests went (or will go)
        self._not_before = -math.inf
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RateBudget(per_minute={self.per_minute}, burst={self.burst})"

    def reserve(self, *, max_wait: float = math.inf) -> float:
        """Book the next request and return the seconds to wait before sending
        it (0: at once). A wait longer than ``max_wait`` is returned without
        booking anything: the caller does not send."""
        with self._lock:
            now = self.clock()
            sent = self._sent
            at = max(now, self._not_before, sent[-1] if sent else now)
            if len(sent) >= self.burst:
                at = max(at, sent[-self.burst] + self.burst * RATE_WINDOW_SECONDS / self.per_minute)
            if len(sent) == self.per_minute:
                at = max(at, sent[0] + RATE_WINDOW_SECONDS)
            if at - now > max_wait:
                return at - now
            sent.append(at)
            return at - now

    def observe(self, remaining: int | None, reset_in: float | None) -> None:
        """What the tool said is left of its quota, and the seconds until its
        window resets: when little is left, the next request waits its share."""
        if remaining is None or reset_in is None or remaining > self.low:
            return
        with self._lock:
            self._not_before = max(self._not_before, self.clock() + reset_in / (remaining + 1))

    def throttled(self, seconds: float) -> None:
        """The tool refused a request as over its limit: nothing goes for ``seconds``."""
        with self._lock:
            self._not_before = max(self._not_before, self.clock() + max(0.0, seconds))


class RateBudgets:
    """Budgets, one per credentials and rate: two integrations sharing a
    token share its quota. The connector's clients share the process's
    (:data:`RATE_BUDGETS`, given by :func:`client_for`); a client made
    otherwise has its own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._items: dict[tuple[str, int], RateBudget] = {}
        self._buckets: dict[tuple[str, float, int], LeakyBucket] = {}
        self._lock = threading.Lock()

    def get(self, key: str, per_minute: int) -> RateBudget:
        with self._lock:
            budget = self._items.get((key, per_minute))
            if budget is None:
                budget = self._items[(key, per_minute)] = RateBudget(per_minute, clock=self.clock)
            return budget

    def bucket(self, key: str, per_second: float, burst: int) -> LeakyBucket:
        """The leaky bucket of ``key`` at this rate (:class:`LeakyBucket`)."""
        with self._lock:
            found = self._buckets.get((key, per_second, burst))
            if found is None:
                found = self._buckets[(key, per_second, burst)] = LeakyBucket(per_second, burst=burst,
                                                                              clock=self.clock)
            return found

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._buckets.clear()


# the process's budgets, shared by every client that paces itself
RATE_BUDGETS = RateBudgets()


class LeakyBucket:
    """A leaky-bucket pace (Bitrix24's: each request fills the bucket by one,
    which drains ``per_second``; past ``burst`` the tool refuses): up to
    ``burst`` requests at once after a quiet spell, then one every
    ``1 / per_second`` seconds. Computed as a generic cell rate (the time the
    bucket would be empty), so it is deterministic on an injected clock.
    Thread-safe; the same ``reserve``/``observe``/``throttled`` as
    :class:`RateBudget`."""

    def __init__(self, per_second: float, *, burst: int = 1, clock: Callable[[], float] = time.monotonic):
        if per_second <= 0 or burst < 1:
            raise ValueError("per_second must be positive and burst at least 1")
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self._interval = 1.0 / per_second
        self._tolerance = (burst - 1) * self._interval
        self._empty_at = -math.inf  # when the bucket, with every booked request, has drained
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LeakyBucket(per_second={self.per_second}, burst={self.burst})"

    def reserve(self, *, max_wait: float = math.inf) -> float:
        """Book the next request; the seconds to wait before sending it. A
        wait longer than ``max_wait`` is returned without booking."""
        with self._lock:
            now = self.clock()
            empty_at = max(self._empty_at, now)
            at = max(now, empty_at - self._tolerance)
            if at - now > max_wait:
                return at - now
            self._empty_at = empty_at + self._interval
            return at - now

    def observe(self, remaining: int | None, reset_in: float | None) -> None:
        """A leaky bucket is told nothing by quota headers (Bitrix24 sends none)."""

    def throttled(self, seconds: float) -> None:
        """The tool refused a request as over its limit: the bucket is full,
        so the next request goes in ``seconds`` and the following at the drain rate."""
        with self._lock:
            self._empty_at = max(self._empty_at, self.clock() + max(0.0, seconds) + self._tolerance)


class NoCredentialStore(RuntimeError):
    """This client cannot store credentials: it was not made by the connector for an integration."""


class CredentialsChanged(Exception):
    """The integration's stored credentials are no longer those a change
    started from: another process (a second worker refreshing the same OAuth
    token) stored its own first. ``current`` holds them as now stored; use
    those rather than storing yours. Its ``repr`` never shows them."""

    def __init__(self, current: Mapping[str, Any]):
        super().__init__("the integration's credentials were changed by another process")
        self.current = dict(current)

    def __repr__(self) -> str:
        return "CredentialsChanged(...)"


class CredentialStore:
    """Where a client's integration keeps its credentials (sealed in the
    database): the connector gives one to the clients it makes
    (:func:`jalon.connector.runtime.Runtime.rest_client`). A plugin never sees
    it, only :meth:`RestClient.stored_credentials`,
    :meth:`RestClient.save_credentials` and :meth:`RestClient.credentials_refused`."""

    def load(self) -> Mapping[str, Any]:
        raise NotImplementedError

    def save(self, changes: Mapping[str, Any], *, expected: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        raise NotImplementedError

    def refused(self, reason: str) -> None:
        raise NotImplementedError


class Auth(AuthBase):
    """How a vendor client authenticates, set once per integration with
    :meth:`RestClient.using`. ``fingerprint`` tells two credentials apart in the
    look-up cache without keeping them; ``repr`` never shows them."""

    fingerprint: str = ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(...)"

    @staticmethod
    def _digest(*parts: str) -> str:
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


class BasicAuth(Auth):
    """``Authorization: Basic`` (Jira Cloud: e-mail and API token)."""

    def __init__(self, username: str, password: str):
        raw = f"{username}:{password}".encode()
        self._header = "Basic " + base64.b64encode(raw).decode("ascii")
        self.fingerprint = self._digest("basic", username, password)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request


class BearerAuth(Auth):
    """``Authorization: Bearer <token>`` (personal access tokens, OAuth tokens);
    ``scheme`` for tools that want another word (ClickUp sends the bare token: ``scheme=None``)."""

    def __init__(self, token: str, *, scheme: str | None = "Bearer"):
        self._header = f"{scheme} {token}" if scheme else token
        self.fingerprint = self._digest("bearer", self._header)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self._header
        return request


class QueryTokenAuth(Auth):
    """A token in the query string (Bitrix24's ``auth=``). Error messages never
    show a query, so the token stays out of logs."""

    def __init__(self, param: str, token: str):
        self.param = param
        self._token = token
        self.fingerprint = self._digest("query", param, token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.prepare_url(request.url, {self.param: self._token})
        return request


class LookupCache:
    """A process-wide, thread-safe TTL cache for REST look-ups, shared by the
    clients of every integration (each entry is scoped by the client's base
    URL, integration and credentials)."""

    def __init__(self, ttl: float = CACHE_TTL_SECONDS, max_entries: int = CACHE_MAX_ENTRIES,
                 timer: Callable[[], float] = time.monotonic):
        self._items: cachetools.TTLCache = cachetools.TTLCache(maxsize=max_entries, ttl=ttl, timer=timer)
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            return self._items.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _retryable(max_wait: float) -> Callable[[BaseException], bool]:
    def decide(error: BaseException) -> bool:
        if not isinstance(error, RemoteError):
            return False
        if error.retry_after is not None and error.retry_after > max_wait:
            return False  # too long to hold a thread: the caller reschedules
        if error.status is None:
            return isinstance(error, Unavailable)  # timeouts, connection errors, unresolvable hosts
        return error.status in RETRY_STATUSES or isinstance(error, RateLimited)  # a throttle read from a body

    return decide


class RestClient:
    """A small REST client for one base URL (or absolute URLs when None)."""

    def __init__(
        self,
        base_url: str | None,
        *,
        timeout: float,
        max_retries: int = 3,
        session: requests.Session | None = None,
        allow_private_network: bool = False,
        headers: Mapping[str, str] | None = None,
        auth: Auth | None = None,
        backoff_base: float = 0.5,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
        cache: LookupCache | None = None,
        cache_scope: str = "",
        clock: Callable[[], float] = time.time,
        budgets: RateBudgets | None = None,
        credentials: CredentialStore | None = None,
    ):
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.allow_private_network = allow_private_network
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        self.sleep = sleep
        self.clock = clock  # the wall clock, to read X-RateLimit-Reset
        self.budgets = budgets if budgets is not None else RateBudgets()
        self.budget: RateBudget | LeakyBucket | None = None  # set by using(..., per_minute= or per_second=)
        # reads an error's body: the seconds the tool asks to wait when it says "too many" there
        self.throttle: Callable[[requests.Response, float], float | None] | None = None
        self.credentials = credentials  # where the integration's credentials are stored, if the connector says
        self.auth = auth
        self.cache = cache
        self.cache_scope = cache_scope
        self.session = session or requests.Session()
        if not allow_private_network:
            guarded = ssrf.GuardedAdapter()
            self.session.mount("http://", guarded)
            self.session.mount("https://", guarded)
        self.session.headers["User-Agent"] = "jalon"
        if headers:
            self.session.headers.update(headers)

    def __repr__(self) -> str:  # credentials may sit in the session: never shown
        return f"RestClient(base_url={self.base_url!r})"

    def using(self, auth: Auth | None, *, per_minute: int | None = None, per_second: float | None = None,
              burst: int | None = None, shared_by: str | None = None,
              throttle: Callable[[requests.Response, float], float | None] | None = None) -> RestClient:
        """This client (same session, policy, retries and cache) authenticating
        with ``auth``; with ``per_minute``, paced by the budget those
        credentials share in the process (:class:`RateBudget`); with
        ``per_second`` (and ``burst``), by a leaky bucket (:class:`LeakyBucket`).
        ``shared_by`` names what the tool counts by when it is not the
        credentials (Bitrix24 counts per portal). ``throttle(response, now)``
        reads an error's body: the seconds to wait when the tool says there
        that it is over its limit (the error is then :class:`RateLimited`,
        retried after that wait, and the pace slowed), ``None`` otherwise."""
        twin = copy.copy(self)
        twin.auth = auth
        twin.budget = None
        twin.throttle = throttle
        key = shared_by or (auth.fingerprint if auth is not None and auth.fingerprint
                            else f"{self.cache_scope}|{self.base_url}")
        if per_second is not None:
            twin.budget = self.budgets.bucket(key, per_second, burst or 1)
        elif per_minute is not None:
            twin.budget = self.budgets.get(key, per_minute)
        return twin

    # --- the integration's credentials, for a tool whose tokens expire (OAuth refresh) -----

    def _store(self) -> CredentialStore:
        if self.credentials is None:
            raise NoCredentialStore("this client cannot store credentials (it was not made by the connector "
                                    "for an integration)")
        return self.credentials

    def stored_credentials(self) -> Mapping[str, Any]:
        """The integration's credentials as stored now (another process may
        have refreshed a token since the integration was read)."""
        return self._store().load()

    def save_credentials(self, changes: Mapping[str, Any], *,
                         expected: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """Store ``changes`` (new tokens) into the integration's sealed
        credentials, at once and atomically, when the stored ones still hold
        ``expected`` (the keys and values the refresh started from); returns
        the credentials as now stored. :class:`CredentialsChanged` (with
        ``current``) when another process stored its own first."""
        return self._store().save(changes, expected=expected)

    def credentials_refused(self, reason: str) -> None:
        """Record, where an admin sees it (the audit trail), that the tool
        refused the integration's credentials for good (a refresh token
        revoked or expired). Never the credentials themselves."""
        self._store().refused(reason)

    def close(self) -> None:
        self.session.close()

    def url_for(self, path_or_url: str) -> str:
        if urlsplit(path_or_url).scheme:
            return path_or_url
        if self.base_url is None:
            raise ValueError("this client has no base URL: pass an absolute URL")
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def _backoff(self, attempt: int) -> float:
        return min(self.max_wait, self.backoff_base * (2**attempt))

    def _wait(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(error, "retry_after", None)
        return retry_after if retry_after is not None else self._backoff(state.attempt_number - 1)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
    ) -> requests.Response:
        """Send a request; return the response when its status is below 400.
        429, 502, 503, 504, timeouts and connection errors are tried again
        (``max_retries`` times, with backoff or the ``Retry-After`` asked)."""
        url = self.url_for(path_or_url)
        method = method.upper()
        where = f"{method} {urlsplit(url).hostname}"
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            retry=tenacity.retry_if_exception(_retryable(self.max_wait)),
            wait=self._wait,
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(self._attempt, method, url, where, headers=headers, json=json, params=params, data=data)

    def _attempt(self, method: str, url: str, where: str, **kwargs: Any) -> requests.Response:
        try:
            ssrf.check_url(url, allow_private_network=self.allow_private_network)
        except ssrf.UrlNotAllowed:
            raise
        except (OSError, UnicodeError) as error:
            raise Unavailable(f"{where}: cannot resolve the host ({type(error).__name__})") from None
        if self.budget is not None:
            self._pace(where)
        try:
            response = self.session.request(method, url, timeout=self.timeout, auth=self.auth,
                                            allow_redirects=False, **kwargs)
        except requests.Timeout:
            raise Unavailable(f"{where}: timed out after {self.timeout} s") from None
        except requests.ConnectionError as error:
            cause = type(error.__cause__ or error).__name__
            raise Unavailable(f"{where}: connection failed ({cause})") from None
        if self.budget is not None:
            self.budget.observe(_header_int(response, "X-RateLimit-Remaining"),
                                parse_rate_limit_reset(response.headers.get("X-RateLimit-Reset"), now=self.clock()))
        if response.status_code >= 400:
            raise self._error(where, response)
        if 300 <= response.status_code < 400:
            raise self._redirected(where, url, response)
        return response

    def _pace(self, where: str) -> None:
        """Wait for this request's turn in the budget; a turn further away than
        ``max_wait`` is not waited for in-process: :class:`RateLimited`."""
        assert self.budget is not None
        wait = self.budget.reserve(max_wait=self.max_wait)
        if wait > self.max_wait:
            raise RateLimited(f"{where}: request budget spent, retry after {wait:.0f} s", retry_after=wait)
        if wait > 0:
            self.sleep(wait)

    @staticmethod
    def _redirected(where: str, url: str, response: requests.Response) -> Redirected:
        status, location = response.status_code, response.headers.get("Location")
        if not location:
            return Redirected(f"{where}: HTTP {status} without a Location, not followed", status=status,
                              response=response)
        try:  # the host only: a webhook's path or a query may be its secret
            target = urlsplit(urljoin(url, location)).hostname
        except ValueError:
            target = None
        return Redirected(f"{where}: HTTP {status} redirect to {target or 'an unreadable address'} not followed "
                          "(configure the address it points to)", status=status, response=response)

    def _error(self, where: str, response: requests.Response) -> RemoteError:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None and status == 429:
            retry_after = parse_rate_limit_reset(response.headers.get("X-RateLimit-Reset"), now=self.clock())
        asked = self.throttle(response, self.clock()) if self.throttle is not None else None
        if asked is not None:  # the tool said in its body that it is over its limit
            retry_after = max(0.0, asked)
            if self.budget is not None:
                self.budget.throttled(retry_after)
        message = f"{where}: HTTP {status}" + (", over the tool's rate limit" if asked is not None else "") + (
            f", retry after {retry_after:.0f} s" if retry_after is not None else "")
        kind: type[RemoteError] = RemoteError
        if asked is not None:
            kind = RateLimited
        elif status in (401, 403):
            kind = Unauthorized
        elif status == 404:
            kind = NotFound
        elif status == 429:
            kind = RateLimited
        elif status >= 500:
            kind = Unavailable
        return kind(message, status=status, response=response, retry_after=retry_after)

    def get_json(self, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> Any:
        response = self.request("GET", path_or_url, params=params, headers=headers)
        return self.json_of(response)

    def post_json(self, path_or_url: str, json: Any, *, headers: Mapping[str, str] | None = None) -> Any:
        response = self.request("POST", path_or_url, json=json, headers=headers)
        return self.json_of(response) if response.content else None

    @staticmethod
    def json_of(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            host = urlsplit(response.url or "").hostname
            raise BadResponse(f"{response.request.method if response.request else 'GET'} {host}: "
                              f"the answer is not valid JSON", status=response.status_code,
                              response=response) from None

    # --- look-ups and pages: what every vendor client would otherwise write ---------------

    def get_cached(self, path_or_url: str, *, params: Mapping[str, Any] | None = None,
                   parse: Callable[[Any], Any] | None = None) -> Any:
        """``get_json``, then ``parse`` of the answer, remembered for a few
        minutes (the connector's look-up cache) per base URL, integration,
        credentials, URL and parameters. Errors, including ``parse``'s, are
        not remembered. Callers get their own copy."""
        if self.cache is None:
            answer = self.get_json(path_or_url, params=params)
            return parse(answer) if parse is not None else answer
        key = (self.cache_scope, getattr(self.auth, "fingerprint", ""), self.url_for(path_or_url),
               tuple(sorted((str(k), str(v)) for k, v in (params or {}).items())),
               getattr(parse, "__qualname__", None))
        found = self.cache.get(key)
        if found is None:
            answer = self.get_json(path_or_url, params=params)
            found = parse(answer) if parse is not None else answer
            self.cache.put(key, found)
        return copy.deepcopy(found)

    def paginate_offset(self, path_or_url: str, *, items: str, params: Mapping[str, Any] | None = None,
                        start_param: str = "startAt", limit_param: str | None = "maxResults", page_size: int = 100,
                        total: str | None = "total", first: int = 0,
                        max_pages: int = DEFAULT_MAX_PAGES) -> Iterator[Any]:
        """Every item of an offset/limit listing (Jira's ``startAt``/``maxResults``,
        ClickUp's ``page``, Bitrix24's ``start``): pages are asked until one is
        short or empty, or ``total`` (when the answer says it) is reached.
        ``items`` names the list in each page."""
        offset = first
        seen = 0
        for _ in range(max_pages):
            query = {**(params or {}), start_param: offset}
            if limit_param:
                query[limit_param] = page_size
            page = self.get_json(path_or_url, params=query)
            batch = _items_of(page, items)
            yield from batch
            seen += len(batch)
            known_total = page.get(total) if total and isinstance(page, Mapping) else None
            if not batch or len(batch) < page_size or (isinstance(known_total, int) and seen >= known_total):
                return
            offset += len(batch) if start_param != "page" else 1
        raise BadResponse(f"GET {urlsplit(self.url_for(path_or_url)).hostname}: "
                          f"more than {max_pages} pages; stopped")

    def paginate_cursor(self, path_or_url: str, *, items: str, params: Mapping[str, Any] | None = None,
                        next_page: Callable[[Mapping[str, Any]], Mapping[str, Any] | str | None],
                        max_pages: int = DEFAULT_MAX_PAGES) -> Iterator[Any]:
        """Every item of a cursor listing. ``next_page(page)`` says what comes
        next: parameters to merge (``{"nextPageToken": ...}``), an absolute URL
        (a ``nextPage`` link), or None when this page was the last."""
        url, query = path_or_url, dict(params or {})
        for _ in range(max_pages):
            page = self.get_json(url, params=query)
            yield from _items_of(page, items)
            following = next_page(page)
            if following is None:
                return
            if isinstance(following, str):
                url, query = following, {}
            else:
                query = {**query, **following}
        raise BadResponse(f"GET {urlsplit(self.url_for(path_or_url)).hostname}: "
                          f"more than {max_pages} pages; stopped")


def _items_of(page: Any, items: str) -> list[Any]:
    if not isinstance(page, Mapping) or not isinstance(page.get(items), list):
        raise BadResponse(f"the page has no list of {items!r}")
    return page[items]


def allows_private_network(integration: Any) -> bool:
    """The one reading of an integration's SSRF policy: ``allow_private_network``
    in its settings (a PM tool on the company's own network, such as Jira Data
    Center on an intranet)."""
    settings = getattr(integration, "settings", None) or {}
    return settings.get("allow_private_network") is True


def client_for(integration: Any, *, timeout: float, cache: LookupCache | None = None, max_retries: int = 3,
               max_wait: float = DEFAULT_MAX_WAIT, budgets: RateBudgets | None = None,
               credentials: CredentialStore | None = None) -> RestClient:
    """The REST client for an integration's tool, bound to its ``base_url``,
    with the integration's SSRF policy and the process's request budgets
    (unless given others), and where its credentials are stored (for a
    refreshed OAuth token): the one way the worker, the dispatcher, ``jalon
    integrations connect`` and the scheduled jobs build one."""
    return RestClient(integration.base_url, timeout=timeout, max_retries=max_retries, max_wait=max_wait,
                      allow_private_network=allows_private_network(integration), cache=cache,
                      cache_scope=f"{integration.key}|{integration.base_url or ''}",
                      budgets=budgets if budgets is not None else RATE_BUDGETS, credentials=credentials)
