"""The SSRF guard: outbound URLs that admins configure (chat webhooks, signed
callbacks, PM-tool base URLs) must not reach this machine or its network.

Checked twice:

* when an admin configures a channel or an integration's ``base_url`` (API,
  ``jalon config apply``, ``jalon integrations connect``), so a bad URL is
  refused at once with ``url_not_allowed`` (422, exit 1);
* again at send time, since DNS can change between the two: the host is
  resolved, every address it resolves to is checked, and only then does the
  request go out. The residual time-of-check/time-of-use gap (a DNS answer
  with a zero TTL that changes between our resolution and the connection's) is
  closed by :class:`GuardedAdapter`, which checks the address the socket
  actually connected to before a single byte is sent.

``allow_private_network`` lifts the guard explicitly (an intranet accounting
tool, a self-hosted Jira). Proxies configured in the environment are used as
requests uses them: the connection is then to the proxy, and only the
name-based check applies.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from jalon.core.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = ("http", "https")
# names that mean this machine whatever DNS says
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class UrlNotAllowed(Invalid):
    """An outbound URL the guard refuses (422 ``url_not_allowed``)."""

    def __init__(self, message: str, *, details: dict | None = None):
        super().__init__(message, code="url_not_allowed", details=details)


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6). Tests replace this."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0] for info in infos})


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally, in any form the C resolver accepts
    (``127.0.0.1``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``::1``), else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and any(c.isdigit() for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def refusal(address: IPAddress) -> str | None:
    """Why an address may not be reached, or None when it is a public one."""
    mapped = getattr(address, "ipv4_mapped", None) or getattr(address, "sixtofour", None)
    if mapped is not None:
        reason = refusal(mapped)
        return f"{reason} (embedded in {address})" if reason else None
    for flag in ("is_unspecified", "is_loopback", "is_link_local", "is_multicast", "is_private", "is_reserved"):
        if getattr(address, flag):
            return f"{address} is {flag[3:].replace('_', '-')}"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return f"{address} is site-local"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def check_address(address: str | IPAddress) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
    reason = refusal(ip)
    if reason:
        raise UrlNotAllowed(f"the URL leads to a non-public address: {reason}")


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable URL, or UrlNotAllowed."""
    if not isinstance(url, str) or not url.strip():
        raise UrlNotAllowed("a URL is required")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlNotAllowed("the URL is malformed") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UrlNotAllowed(f"only http and https URLs are allowed, not {scheme or 'a URL without scheme'}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UrlNotAllowed("credentials in a URL are not allowed: use the channel's secret")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UrlNotAllowed("the URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def check_url(
    url: str,
    *,
    allow_private_network: bool = False,
    resolve: bool = True,
    resolver: Callable[[str, int], Iterable[str]] | None = None,
) -> list[str]:
    """Refuse a URL that is not http(s), carries credentials, or leads to a
    non-public address; return the addresses checked.

    ``resolve=False`` (configuration time) checks literal addresses and local
    names but accepts a name that does not resolve: the send-time check, which
    resolves, has the last word."""
    scheme, host, port = parse(url)
    if allow_private_network:
        return []
    lowered = host.lower()
    if lowered in LOCAL_NAMES or lowered.endswith(".localhost"):
        raise UrlNotAllowed(f"the URL leads to this machine ({host})")
    literal = literal_ip(host)
    if literal is not None:
        check_address(literal)
        return [str(literal)]
    try:
        addresses = list((resolver or resolve_host)(host, port))
    except (OSError, UnicodeError):
        if not resolve:
            return []
        raise
    if not addresses:
        if not resolve:
            return []
        raise OSError(f"{host} resolves to no address")
    for address in addresses:
        check_address(address)
    return addresses


# --- the connection-time check ------------------------------------------------------------


class _PeerChecked:
    def _new_conn(self):  # type: ignore[no-untyped-def]
        sock = super()._new_conn()  # type: ignore[misc]
        try:
            peer = sock.getpeername()[0]
            check_address(peer)
        except BaseException:
            sock.close()
            raise
        return sock


class _GuardedHTTPConnection(_PeerChecked, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_PeerChecked, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections refuse a non-public peer after the
    TCP connect and before anything is sent (closes the DNS-rebinding gap)."""

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}
