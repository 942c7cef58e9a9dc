"""Where a webhook may be sent: the URL's form at submission, and its addresses at delivery.

Server-side request forgery: a webhook URL is a request the server makes on a user's behalf, so by
default it may not reach the server's own network. A URL is refused when it is not https (http
only when the operator allows it, `GANSERVE_WEBHOOK_ALLOW_HTTP`), carries credentials, or names a
host whose addresses, as resolved at delivery time, include a loopback, private, link-local (the
cloud metadata address 169.254.169.254 among them), shared (100.64/10), multicast, reserved or
unspecified one. An operator allow-list (`GANSERVE_WEBHOOK_ALLOWED_HOSTS`: host names and CIDR
networks, comma-separated) lets chosen hosts or networks through; the tests use it for a local
receiver.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not public either


class TargetRefused(ValueError):
    """A webhook URL the server will not call; the message says why, for a person."""


@dataclass(frozen=True)
class AllowList:
    """The operator's exceptions: host names (exact, case-insensitive) and networks."""

    hosts: frozenset[str]
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts, networks = set(), []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower())
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IpAddress | None = None) -> bool:
        if host.lower() in self.hosts:
            return True
        return address is not None and any(address in network for network in self.networks)


def _public(address: IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in SHARED)
    )


def check_url(url: str, *, allow_http: bool, allowed: AllowList) -> tuple[str, int]:
    """The (host, port) of a webhook URL whose form is acceptable; `TargetRefused` otherwise.
    A literal address is checked here already; a name is checked at delivery (`check_addresses`)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise TargetRefused("The webhook must be an absolute https URL.")
    host = parts.hostname
    if parts.username or parts.password:
        raise TargetRefused("The webhook URL may not carry a user name or password.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise TargetRefused("The webhook URL has an invalid port.") from None
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if parts.scheme == "http" and not allow_http and not allowed.allows(host, literal):
        raise TargetRefused("The webhook must use https (this server does not send to http).")
    if literal is not None and not _public(literal) and not allowed.allows(host, literal):
        raise TargetRefused(f"The webhook address {literal} is not public.")
    return host, port


def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to (every family)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def check_addresses(
    host: str, port: int, allowed: AllowList, resolver: Resolver = resolve
) -> Sequence[str]:
    """The addresses of `host` when every one is public or allowed (at delivery time, after
    DNS); `TargetRefused` naming the first that is not, or when the name does not resolve."""
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        raise TargetRefused(f"The webhook host {host!r} does not resolve ({exc}).") from None
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        if not _public(address) and not allowed.allows(host, address):
            raise TargetRefused(f"The webhook host {host!r} resolves to {address}, not public.")
    return addresses
