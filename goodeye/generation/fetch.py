"""SSRF-safe fetching of provider image URLs.

A generator may answer with URLs instead of bytes; Goodeye fetches them to host
the images itself. Those URLs come from a third party, so every hop obeys:

- the scheme is http or https and the URL carries no user-info;
- the host is on the fetch allowlist (exact name, case-insensitive, and port);
- the name is resolved once, and every address it resolves to must be public
  (not loopback, private, link-local, unique-local, multicast, unspecified,
  reserved, shared/CGNAT, or an IPv4-mapped/6to4/Teredo/NAT64 form of those),
  unless the allowlist entry carries the private marker;
- the connection goes to the checked address itself (never a second lookup, so
  a DNS answer that changes between lookups cannot steer it), with the original
  Host header and, for https, TLS verified against the original host name;
- redirects are followed by hand, at most `MAX_REDIRECTS`, each hop re-checked;
- the body is streamed and abandoned as soon as it passes `max_bytes`, and the
  whole fetch (connects, redirects, body) is capped at `timeout_seconds`.

Allowlist syntax (`GOODEYE_FETCH_ALLOWLIST`, comma separated), one entry per host:

    images.example.com          https://images.example.com/..., default port only
    images.example.com:8443     that port only
    [2001:db8::1]:8080          IPv6 literals in brackets
    +127.0.0.1:8099             "+" = private marker: this exact host and port may
                                resolve to a loopback/private/link-local address

An entry without a port matches only the scheme's default port (80 for http,
443 for https). The marker applies only to its own entry; a redirect from a
marked host to any other host is checked like any other hop.

Limitation: name resolution itself (`getaddrinfo`) is not interruptible, so the
time cap starts to bind once the name is resolved.
"""

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from goodeye.parsing import whole_number

try:  # requests brings certifi; fall back to the system store without it.
    import certifi

    _DEFAULT_CA_CERTS = certifi.where()
except ImportError:  # pragma: no cover
    _DEFAULT_CA_CERTS = None

MAX_REDIRECTS = 3
PRIVATE_MARKER = "+"
_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK = 64 * 1024
_USER_AGENT = "Goodeye image fetcher"
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class FetchError(Exception):
    """A provider URL could not be fetched; the message is safe to log, never holds the URL's query."""


class FetchRefused(FetchError):
    """Policy said no: host not allowlisted, bad scheme, forbidden address, too many redirects."""


class FetchFailed(FetchError):
    """The fetch was allowed but did not succeed: network error, non-2xx, too large, too slow."""


@dataclass(frozen=True)
class AllowedHost:
    """One allowlist entry: a host name or IP literal, an optional port, and the private marker."""

    host: str
    port: int | None = None
    allow_private: bool = False

    def matches(self, host, port, scheme):
        """Whether this entry admits `host:port` fetched over `scheme`."""
        return self.host == host and port == (self.port or _DEFAULT_PORTS[scheme])


def parse_allowlist(entries):
    """Parse allowlist entries (`[+]host[:port]`) into AllowedHost; raise ValueError on a bad entry."""
    parsed = []
    for raw in entries:
        if isinstance(raw, AllowedHost):
            parsed.append(raw)
            continue
        entry = raw.strip()
        allow_private = entry.startswith(PRIVATE_MARKER)
        if allow_private:
            entry = entry[len(PRIVATE_MARKER) :].strip()
        if not entry or any(c in entry for c in "/?#@ \t"):
            raise ValueError(f"not a host or host:port: {raw!r}")
        try:
            parts = urlsplit("//" + entry)
            host, port = parts.hostname, parts.port
        except ValueError:
            raise ValueError(f"not a host or host:port: {raw!r}") from None
        if not host or port == 0:
            raise ValueError(f"not a host or host:port: {raw!r}")
        parsed.append(AllowedHost(_normalize_host(host), port, allow_private))
    return tuple(parsed)


def system_resolve(host, port):
    """Every address `host` resolves to, as strings (one getaddrinfo call)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def is_forbidden_address(address):
    """Whether an address is one a provider URL must not reach without the private marker."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if ip.version == 6:
        embedded = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(e is not None and is_forbidden_address(e) for e in embedded):
            return True
        if ip.is_site_local:
            return True
    return (
        not ip.is_global
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
    )


def fetch_image_bytes(url, *, allowlist, max_bytes, timeout_seconds, resolve=None, ca_certs=None):
    """Fetch a provider image URL under the SSRF rules above; return its body or raise FetchError."""
    entries = parse_allowlist(allowlist)
    resolve = resolve or system_resolve
    deadline = time.monotonic() + timeout_seconds
    redirects = 0
    while True:
        hop = _plan_hop(url, entries, resolve)
        pool, response = _request(hop, deadline, ca_certs)
        try:
            if response.status in _REDIRECT_STATUSES and response.headers.get("Location"):
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")
                url = urljoin(url, response.headers["Location"].strip())
                continue
            if not 200 <= response.status < 300:
                raise FetchFailed(f"{hop.host} answered HTTP {response.status}")
            return _read_body(response, hop, max_bytes, deadline)
        finally:
            response.close()
            pool.close()


@dataclass(frozen=True)
class _Hop:
    scheme: str
    host: str
    port: int
    target: str
    host_header: str
    addresses: tuple


def _normalize_host(host):
    host = host.lower().rstrip(".")
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _plan_hop(url, entries, resolve):
    """Apply every policy check to one URL; return where and how to connect."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise FetchRefused("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise FetchRefused("the URL cannot be parsed") from None
    if scheme not in _DEFAULT_PORTS:
        raise FetchRefused(f"scheme {scheme or '(none)'!r} is not http or https")
    if "@" in parts.netloc:
        raise FetchRefused("URLs with user-info are not fetched")
    if not host or port == 0:
        raise FetchRefused("the URL has no usable host")
    host = _normalize_host(host)
    port = port or _DEFAULT_PORTS[scheme]

    matching = [e for e in entries if e.matches(host, port, scheme)]
    if not matching:
        raise FetchRefused(f"host {host}:{port} is not on the fetch allowlist")
    allow_private = any(e.allow_private for e in matching)

    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            answers = resolve(host, port)
            addresses = [ipaddress.ip_address(str(a)) for a in answers]
        except (OSError, UnicodeError, ValueError) as exc:
            raise FetchFailed(f"could not resolve {host}: {exc}") from None
        if not addresses:
            raise FetchFailed(f"{host} resolved to no address")
    if not allow_private:
        # Every answer must be public: a mixed answer is how rebinding starts.
        for address in addresses:
            if is_forbidden_address(address):
                raise FetchRefused(f"{host} resolves to a non-public address ({address})")

    ipv6_literal = literal is not None and literal.version == 6
    shown = f"[{host}]" if ipv6_literal else host
    host_header = shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Hop(scheme, host, port, target, host_header, tuple(str(a) for a in addresses))


def _remaining(deadline, host):
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchFailed(f"fetching from {host} took longer than the time cap")
    return left


def _request(hop, deadline, ca_certs):
    """Send the GET to the checked addresses in order; return (pool, unread response)."""
    headers = {
        "Host": hop.host_header,
        "User-Agent": _USER_AGENT,
        "Accept": "image/*",
        "Accept-Encoding": "identity",
    }
    last_error = None
    for address in hop.addresses:
        left = _remaining(deadline, hop.host)
        timeout = urllib3.Timeout(connect=left, read=left)
        if hop.scheme == "https":
            pool = urllib3.HTTPSConnectionPool(
                address,
                hop.port,
                timeout=timeout,
                maxsize=1,
                retries=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=ca_certs or _DEFAULT_CA_CERTS,
                server_hostname=hop.host,
                assert_hostname=hop.host,
            )
        else:
            pool = urllib3.HTTPConnectionPool(address, hop.port, timeout=timeout, maxsize=1, retries=False)
        try:
            response = pool.urlopen(
                "GET",
                hop.target,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                release_conn=False,
                timeout=timeout,
            )
            return pool, response
        except (NewConnectionError, ConnectTimeoutError) as exc:
            # Could not connect to this address; the next checked one may work.
            last_error = exc
            pool.close()
        except (Urllib3Error, OSError, ValueError) as exc:
            pool.close()
            raise FetchFailed(f"fetching from {hop.host} failed: {_reason(exc)}") from None
    raise FetchFailed(f"could not connect to {hop.host}: {_reason(last_error)}")


def _read_body(response, hop, max_bytes, deadline):
    """Stream the body, giving up as soon as it passes max_bytes or the deadline."""
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        # Decoding would let a small body expand past max_bytes before we count it.
        raise FetchFailed(f"{hop.host} sent a {encoding!r}-encoded body")
    declared = whole_number(response.headers.get("Content-Length"))
    if declared is not None and declared > max_bytes:
        raise FetchFailed(f"{hop.host} declared {declared} bytes, over the {max_bytes}-byte cap")
    sock = getattr(response.connection, "sock", None)
    body = bytearray()
    try:
        while True:
            left = _remaining(deadline, hop.host)
            if sock is not None:
                # The socket timeout is re-armed before every read, so a body that
                # trickles in under a per-read timeout still stops at the deadline.
                sock.settimeout(left)
            chunk = response.read1(_CHUNK)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > max_bytes:
                raise FetchFailed(f"{hop.host} sent more than the {max_bytes}-byte cap")
    except (Urllib3Error, OSError, ValueError) as exc:
        raise FetchFailed(f"reading from {hop.host} failed: {_reason(exc)}") from None


def _reason(exc):
    if exc is None:
        return "no address"
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__
