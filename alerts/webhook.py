"""Webhook delivery: the signature a subscriber verifies, the allow-list that keeps webhooks
off loopback and private networks, and one bounded POST to a pinned address."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookFailed",
    "WebhookRefused",
    "post_webhook",
    "sign",
    "verify_signature",
    "webhook_target_allowed",
]

TIMESTAMP_HEADER = "X-Airwater-Timestamp"
SIGNATURE_HEADER = "X-Airwater-Signature"
EVENT_HEADER = "X-Airwater-Event"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookFailed(Exception):
    """One delivery attempt failed; the message is what ``last_error`` records."""


class WebhookRefused(WebhookFailed):
    """The target is not allowed (scheme, unresolvable host, or a non-public address)."""


# --- signature -----------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Airwater-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of
    ``f"{timestamp}.".encode() + body`` keyed with the subscription's secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: bytes,
    signature_header: str,
    tolerance_s: float = 300,
) -> bool:
    """True if a webhook request really comes from airwater and is recent.

    For a subscriber to copy (it needs only ``hashlib``, ``hmac`` and ``time``):

    - ``secret``: the subscription's ``webhook_secret``;
    - ``timestamp``: the ``X-Airwater-Timestamp`` header (Unix seconds);
    - ``body``: the raw request body, exactly the bytes received (before any JSON parsing);
    - ``signature_header``: the ``X-Airwater-Signature`` header, ``sha256=<hex>``;
    - ``tolerance_s``: the largest accepted difference, in seconds, between the timestamp and
      this machine's clock; it bounds replays of a captured request.

    The signed message is ``f"{timestamp}.".encode() + body``, the key is the secret, the MAC is
    HMAC-SHA256, compared in constant time. Redeliveries of one event carry the same
    ``Idempotency-Key`` header: deduplicate on it, not on the signature (a retry is signed with
    a new timestamp).
    """
    try:
        sent_at = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - sent_at) > tolerance_s:
        return False
    scheme, _, received = signature_header.strip().partition("=")
    if scheme != "sha256" or not received:
        return False
    expected = hmac.new(secret.encode(), f"{sent_at}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.lower())


# --- where a webhook may go ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allowance:
    """The parsed ``webhook_allow`` setting: networks and host names."""

    networks: tuple[IPNetwork, ...]
    hosts: frozenset[str]

    @classmethod
    def parse(cls, allow: list[str] | tuple[str, ...]) -> Allowance:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(_normal_host(entry))
        return cls(tuple(networks), frozenset(hosts))

    def covers(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def _normal_host(host: str) -> str:
    return host.lower().rstrip(".")


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_class(address: IPAddress) -> str | None:
    """Why an address is not a public one (``loopback``, ``private``…), or None if it is."""
    address = _unmapped(address)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "not globally routable"
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """A webhook URL whose host was resolved and found allowed; requests go to ``addresses``."""

    url: httpx.URL
    host: str
    addresses: tuple[str, ...]


def resolve_target(url: str, allow: Allowance) -> Target:
    """Resolve the URL's host and check every address it has; raises WebhookRefused.

    A host name in the allow-list passes whatever it resolves to; otherwise every address must
    be public or inside an allowed network (a name that resolves to one public and one private
    address is refused, so DNS cannot steer a request inwards)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused(f"webhook URL must be http:// or https://, got {url!r}")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise WebhookRefused(f"invalid webhook URL {url!r}: {exc}") from None
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise WebhookRefused(f"webhook URL {url!r} has no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookRefused(f"cannot resolve webhook host {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    if not addresses:
        raise WebhookRefused(f"webhook host {host!r} has no address")
    if _normal_host(host) not in allow.hosts:
        for text in addresses:
            address = _unmapped(ipaddress.ip_address(text))
            why = address_class(address)
            if why is None or allow.covers(address):
                continue
            where = (
                f"webhook address {text} is"
                if host == text
                else f"webhook host {host!r} resolves to {text},"
            )
            raise WebhookRefused(f"{where} a {why} address not in AIRWATER_WEBHOOK_ALLOW")
    return Target(parsed, host, tuple(addresses))


def webhook_target_allowed(url: str, allow: list[str] | tuple[str, ...]) -> tuple[bool, str]:
    """Whether a webhook may be sent to ``url`` under the ``webhook_allow`` setting.

    Returns ``(True, "")`` or ``(False, reason)``; the reason is a sentence for an API error or
    ``last_error``. Refused: schemes other than http/https, hosts that do not resolve, and hosts
    with any loopback, private, link-local, multicast, reserved or otherwise non-global address,
    unless the host name or a CIDR containing the address is in ``allow``. The host is resolved
    now (DNS is consulted); the delivery worker checks again at every attempt."""
    try:
        resolve_target(url, Allowance.parse(allow))
    except WebhookRefused as exc:
        return False, str(exc)
    return True, ""


# --- one POST --------------------------------------------------------------------------------


def make_http_client(timeout_s: float) -> httpx.Client:
    """The worker's HTTP client: no redirects, no proxies from the environment (they would
    bypass the allow-list), and no connection reuse, because requests go to a pinned address
    and a kept-alive TLS connection must not serve another host name on the same address."""
    return httpx.Client(
        follow_redirects=False,
        trust_env=False,
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
    )


def post_webhook(
    client: httpx.Client,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    timeout_s: float,
    max_response_bytes: int,
) -> int:
    """POST ``body`` to the checked addresses of ``target`` (in resolver order, the next one
    only if a connection cannot be made) and return the status code if it is 2xx; raises
    WebhookFailed otherwise. At most ``max_response_bytes`` of the response are read, and
    reading stops once ``timeout_s`` has passed since the request started."""
    host_header = target.url.netloc.decode("ascii")
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    deadline = time.monotonic() + timeout_s
    unreachable: list[str] = []
    for address in target.addresses:
        # Connect to the address that was checked, not to whatever DNS says a moment later.
        request = client.build_request(
            "POST",
            target.url.copy_with(host=address),
            content=body,
            headers={**headers, "Host": host_header},
            extensions=extensions,
        )
        try:
            response = client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            unreachable.append(f"{address}: {type(exc).__name__}: {_first_line(exc)}")
            if time.monotonic() >= deadline:
                break
            continue
        except httpx.TimeoutException as exc:
            raise WebhookFailed(f"timeout after {timeout_s:g} s ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise WebhookFailed(f"{type(exc).__name__}: {_first_line(exc)}") from None
        try:
            start_of_body = _read_bounded(response, max_response_bytes, deadline)
        finally:
            response.close()
        status = response.status_code
        if 200 <= status < 300:
            return status
        if 300 <= status < 400:
            raise WebhookFailed(f"HTTP {status} (redirects are not followed)")
        said = " ".join(start_of_body[:200].decode("utf-8", "replace").split())
        reason = f"HTTP {status} {response.reason_phrase}".rstrip()
        raise WebhookFailed(f"{reason}: {said}" if said else reason)
    raise WebhookFailed("cannot connect: " + "; ".join(unreachable))


def _read_bounded(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    """Up to ``max_bytes`` of the body, until the deadline; the status is already known, so a
    body that breaks off or drags on changes nothing."""
    received = bytearray()
    try:
        for chunk in response.iter_raw():
            received += chunk
            if len(received) >= max_bytes or time.monotonic() >= deadline:
                break
    except httpx.HTTPError:
        pass
    return bytes(received[:max_bytes])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
