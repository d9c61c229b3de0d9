"""The one base client for outbound HTTP: PM-tool REST APIs, chat webhooks,
signed callbacks.

A default timeout on every call; retries with exponential backoff on 429, 502,
503, 504 and connection errors, honouring ``Retry-After`` (seconds or an HTTP
date) up to ``max_wait`` seconds in-process; beyond that, :class:`RateLimited`
carries ``retry_after`` so the caller reschedules instead of holding a thread.
Errors form a small hierarchy that callers map to their own decisions::

    RemoteError
      Unauthorized   401, 403
      NotFound       404
      RateLimited    429 (.retry_after)
      Unavailable    5xx, timeouts, connection errors, unresolvable hosts
      BadResponse    not the JSON that was expected

Every URL goes through the SSRF guard (:mod:`jalon.connector.net.ssrf`) unless
``allow_private_network`` is set. Error messages name the method, the host and
the status, never the path or query (a chat webhook's path is its secret).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from jalon.connector.net import ssrf

RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_MAX_WAIT = 30.0


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
        auth: Any = None,
        backoff_base: float = 0.5,
        max_wait: float = DEFAULT_MAX_WAIT,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.allow_private_network = allow_private_network
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        self.sleep = sleep
        self.session = session or requests.Session()
        if not allow_private_network:
            guarded = ssrf.GuardedAdapter()
            self.session.mount("http://", guarded)
            self.session.mount("https://", guarded)
        self.session.headers["User-Agent"] = "jalon"
        if headers:
            self.session.headers.update(headers)
        if auth is not None:
            self.session.auth = auth

    def __repr__(self) -> str:  # credentials may sit in the session: never shown
        return f"RestClient(base_url={self.base_url!r})"

    def url_for(self, path_or_url: str) -> str:
        if urlsplit(path_or_url).scheme:
            return path_or_url
        if self.base_url is None:
            raise ValueError("this client has no base URL: pass an absolute URL")
        return urljoin(self.base_url, path_or_url.lstrip("/"))

    def _backoff(self, attempt: int) -> float:
        return min(self.max_wait, self.backoff_base * (2**attempt))

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
        """Send a request; return the response when its status is below 400."""
        url = self.url_for(path_or_url)
        method = method.upper()
        where = f"{method} {urlsplit(url).hostname}"
        attempt = 0
        while True:
            try:
                ssrf.check_url(url, allow_private_network=self.allow_private_network)
            except ssrf.UrlNotAllowed:
                raise
            except (OSError, UnicodeError) as error:
                failure: RemoteError = Unavailable(f"{where}: cannot resolve the host ({type(error).__name__})")
                wait = self._backoff(attempt)
            else:
                try:
                    response = self.session.request(
                        method, url, headers=headers, json=json, params=params, data=data, timeout=self.timeout
                    )
                except requests.Timeout:
                    failure, wait = Unavailable(f"{where}: timed out after {self.timeout} s"), self._backoff(attempt)
                except requests.ConnectionError as error:
                    cause = type(error.__cause__ or error).__name__
                    failure, wait = Unavailable(f"{where}: connection failed ({cause})"), self._backoff(attempt)
                else:
                    status = response.status_code
                    if status < 400:
                        return response
                    failure = self._error(where, response)
                    if status not in RETRY_STATUSES:
                        raise failure
                    retry_after = failure.retry_after
                    if retry_after is not None and retry_after > self.max_wait:
                        raise failure  # too long to hold a thread: the caller reschedules
                    wait = retry_after if retry_after is not None else self._backoff(attempt)
            if attempt >= self.max_retries:
                raise failure
            attempt += 1
            self.sleep(wait)

    def _error(self, where: str, response: requests.Response) -> RemoteError:
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        message = f"{where}: HTTP {status}" + (f", retry after {retry_after:.0f} s" if retry_after is not None else "")
        kind: type[RemoteError] = RemoteError
        if status in (401, 403):
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
